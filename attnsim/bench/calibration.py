"""`attnsim calibrate` on the GPU: microbenchmarks and kernel timings for the fit.

Measures, in one pass (within the --budget of GPU seconds, 180 by default):
1. HBM read bandwidth vs number of streaming CTAs, for 4 and 8 warps (membw.py) -> knee, peak;
2. launch overhead: an empty kernel under the same timer; the floor (a pure streaming read under the bench's
   timer) of reads of 0.5 MiB .. 4 GiB, which the profile's floor model is fitted on (simulator/floor.py);
3. the points of the calibration set (our kernels, their option variants, PyTorch's flash and cuDNN
   backends; `calibration_sweep` x `calibration_specs`, which share no point with the benchmark
   sweep that validation uses) that validation/point_selection.py chose by information per GPU
   second, each with its own timer (validation/point_cost.py);
4. each compiled kernel's resources, cross-checked against the driver's occupancy answer
   (cuOccupancyMaxActiveBlocksPerMultiprocessor through cuda-python): a mismatch is an error.
"""

from __future__ import annotations

from attnsim import strategies
from attnsim.bench.sweep import padded_kv_bytes, ragged_contexts
from attnsim.simulator.workload import DecodeWorkload

# None is in the benchmark sweep. 400000 tokens: long contexts at few outputs, the regime where split
# heuristics launch ~2 CTAs per SM (missing from the first H200 calibration: FlashDecoding was 4-5%
# slow there on the sweep); MQA (8, 1): one kv-head for a batch's outputs.
CAL_CONTEXTS = (768, 3000, 12000, 48000, 192000, 400000)
CAL_BATCHES = (1, 3, 12, 24)
CAL_HEADS = ((32, 32), (32, 8), (64, 8), (96, 96), (8, 1))
CAL_HEAD_DIMS = (64, 128)
# (batch, seed) of ragged batches with lengths log-uniform in 1k..200k; benchmark seeds are 0-2
CAL_RAGGED = ((5, 100), (12, 101), (3, 102), (6, 103), (10, 104), (16, 105), (24, 106))
CAL_MAX_KV_BYTES = 10e9
BANDWIDTH_CTAS = (1, 2, 4, 8, 16, 32, 66, 100, 132, 200, 264, 396, 528, 1056)
BANDWIDTH_WARPS = (4, 8)
FLOOR_BYTES = tuple((1 << 19) << k for k in range(14))  # 0.5 MiB .. 4 GiB: the floors the profile's model is fitted on


def calibrated_names() -> tuple[str, ...]:
    """What calibration times: the registry's entries marked `calibrate` (ours and modelled baselines)."""
    return strategies.names(lambda s: s.calibrate)


# The part of the calibration set that also times each strategy's calibration_options (registry):
# few outputs at long contexts, d 128, where a plan's CTA count decides its time.
VARIANT_BATCHES, VARIANT_CONTEXTS, VARIANT_HEAD_DIM = (1, 3), (12000, 48000, 192000, 400000), 128


def calibration_specs(workload: DecodeWorkload) -> list[str]:
    """Plan specs timed on a calibration workload: every calibrated strategy, plus option variants
    on the small-output workloads."""
    specs = list(calibrated_names())
    if (workload.batch in VARIANT_BATCHES and workload.max_context in VARIANT_CONTEXTS and not workload.is_ragged
            and workload.head_dim == VARIANT_HEAD_DIM):
        specs += [f"{name}:{option}" for name in calibrated_names()
                  for option in strategies.get(name).calibration_options]
    return specs


def calibration_sweep(dtype: str = "float16") -> list[DecodeWorkload]:
    points = [DecodeWorkload.build(b, qh, kvh, d, c, dtype=dtype)
              for d in CAL_HEAD_DIMS for qh, kvh in CAL_HEADS for b in CAL_BATCHES for c in CAL_CONTEXTS]
    points += [DecodeWorkload.build(b, qh, kvh, d, ragged_contexts(b, seed, 1000, 200000), dtype=dtype)
               for b, seed in CAL_RAGGED for qh, kvh, d in ((32, 8, 128), (64, 8, 64))]
    return [w for w in points if padded_kv_bytes(w) <= CAL_MAX_KV_BYTES]


def measure_bandwidth_curve(timer, progress=None) -> list[dict]:
    """Read GB/s vs CTAs for 4 and 8 warps (2048 / 4096 fp16 elements per load step), one buffer."""
    import torch

    from attnsim.kernels import membw

    buffer = membw.make_buffer()
    rows = []
    try:
        for warps in BANDWIDTH_WARPS:
            for ctas in BANDWIDTH_CTAS:
                rows += membw.read_bandwidth_curve([ctas], warps, 512 * warps, buffer=buffer, timer=timer)
                if progress:
                    progress()
    finally:
        del buffer
        torch.cuda.empty_cache()
    return rows


def measure_floors(progress=None) -> list[dict]:
    """The floor of each FLOOR_BYTES read: membw.ReadFloor under the bench's own timer (the floor its rows are
    judged against), [{read_bytes, floor_us}]; simulator/floor.py fits its model to them."""
    from attnsim.kernels.membw import ReadFloor

    floor, rows = ReadFloor(), []
    for read_bytes in FLOOR_BYTES:
        rows.append({"read_bytes": read_bytes, "floor_us": round(floor.us(read_bytes), 3)})
        if progress:
            progress()
    return rows


def measure_launch_overhead_us(timer) -> float:
    """do_bench time of a one-CTA kernel that loads and stores one float: launch + event overhead."""
    import torch

    from attnsim.kernels.empty_kernel import touch_one
    from attnsim.kernels.timing import replayable, time_us

    x = torch.zeros(1, device="cuda")
    touch_one[(1,)](x)  # compile
    fn = replayable(lambda: touch_one[(1,)](x)) if timer.replay else (lambda: touch_one[(1,)](x))
    return time_us(fn, timer)


def driver_blocks_per_sm(compiled, threads: int, smem_bytes: int) -> int:
    """The driver's occupancy answer for a compiled Triton kernel (cuda-python)."""
    try:
        from cuda.bindings import driver
    except ImportError:  # older cuda-python layout
        from cuda import cuda as driver
    compiled._init_handles()
    err, blocks = driver.cuOccupancyMaxActiveBlocksPerMultiprocessor(
        driver.CUfunction(compiled.function), threads, smem_bytes)
    if err != driver.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"cuOccupancyMaxActiveBlocksPerMultiprocessor failed: {err}")
    return int(blocks)


def crosscheck_occupancy(gpu, launcher) -> dict:
    """Our occupancy calculator vs the driver for a launcher's compiled kernel; raises on mismatch."""
    from attnsim.simulator.occupancy import occupancy

    from attnsim.kernels.launch import compile_attention

    res = launcher.resources
    ours = occupancy(gpu, res).blocks_per_sm
    schedule = launcher.schedule  # Triton caches the compile: this returns the kernel that ran
    device = launcher.tables.flags.device
    compiled = compile_attention(launcher.kernel, schedule.workload, launcher.shape, device)
    theirs = driver_blocks_per_sm(compiled, res.threads, res.smem_bytes)
    if theirs != ours:
        raise RuntimeError(f"occupancy mismatch for {launcher.schedule.strategy} {res}: "
                           f"attnsim says {ours} blocks/SM, the driver {theirs}")
    return {"ours": ours, "driver": theirs}


def measure_kernel_points(gpu, plan, device_name: str, peak_gbps: float, progress=None):
    """Time each planned (workload, plan spec, timer) with the benchmark's own harness (same inputs and
    correctness check; each row its own timer, no floor read: the fit does not use it), in `plan`'s
    order grouped by workload. Returns (rows, kernel configs by key, occupancy cross-checks)."""
    from attnsim.bench.harness import BenchConfig, run_sweep
    from attnsim.bench.results import point_key
    from attnsim.kernels.launch import launcher_for
    from attnsim.plans.spec import spec_strategy

    workloads = list({_workload_key(w): w for w, _, _ in plan}.values())
    specs = {}
    for w, spec, _ in plan:
        specs.setdefault(_workload_key(w), []).append(spec)
    timers = {point_key(spec, w): timer for w, spec, timer in plan}
    config = BenchConfig(strategies=calibrated_names(), gpu=gpu, device_name=device_name, peak_read_gbps=peak_gbps)
    frame = run_sweep(workloads, config, progress=(lambda done, total, label: progress(label)) if progress else None,
                      candidates=lambda w: specs[_workload_key(w)], floor=lambda nbytes: None,
                      timer_for=lambda spec, w: timers[point_key(spec, w)])
    kernels, checks = {}, []
    for w, spec, _ in plan:
        name = spec_strategy(spec)
        if not strategies.get(name).kernel or resolved_key(name, w, gpu) in kernels:
            continue  # one compiled shape serves many workloads: prepare (and cross-check) it once
        launcher = launcher_for(name, w, gpu)
        key = launcher_key(launcher)
        kernels[key] = resources_record(launcher.resources)
        checks.append({"kernel": key, **crosscheck_occupancy(gpu, launcher)})
    return frame.to_dict("records"), kernels, checks


def _workload_key(w: DecodeWorkload) -> tuple:
    return (w.batch, w.q_heads, w.kv_heads, w.head_dim, w.context_label, w.dtype)


def resolved_key(name: str, workload: DecodeWorkload, gpu) -> str:
    """The kernel-variant key the resources resolver gives `name` on `workload`, before anything is compiled."""
    from attnsim.plans import resources
    from attnsim.plans.plan import plan_config, options_for

    strategy = strategies.get(name)
    config, _ = plan_config(strategy, workload, gpu, options_for(strategy, None))
    return resources.variant(strategy.kernel.name, workload, config.kv_tile_tokens, config.num_warps,
                             config.num_stages).key


def launcher_key(launcher) -> str:
    """The resolver's key of the kernel variant a launcher compiled (attnsim.plans.resources.Variant)."""
    from attnsim.plans import resources

    shape = launcher.shape
    return resources.variant(launcher.kernel.name, launcher.schedule.workload, shape.block_n, shape.num_warps,
                             shape.num_stages).key


def resources_record(res) -> dict:
    return {"threads": res.threads, "regs_per_thread": res.regs_per_thread, "smem_bytes": res.smem_bytes}


def device_info() -> dict:
    import platform

    import torch
    import triton

    props = torch.cuda.get_device_properties(0)
    info = {"name": props.name, "sm_count": props.multi_processor_count,
            "memory_gb": round(props.total_memory / 1e9, 1), "torch": torch.__version__,
            "triton": triton.__version__, "cuda": torch.version.cuda, "python": platform.python_version()}
    try:
        from cuda.bindings import driver
        err, version = driver.cuDriverGetVersion()
        info["driver_cuda_version"] = int(version)
    except Exception:  # cuda-python missing or too old: the rest of the record still stands
        pass
    return info
