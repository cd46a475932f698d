"""CTAs per SM by the CUDA occupancy rules (DOMAIN.md §1), with every answer derived by hand.

Preset limits used below (hardware.py, DOMAIN.md §1):
  h100-sxm  cc 9.0: 64 warps, 32 CTAs, 64 K regs (4 sub-partitions x 16384), carve-out 228 KB =
            233472 B, opt-in 227 KB = 232448 B
  a100-80gb cc 8.0: 64 warps, 32 CTAs, 64 K regs, carve-out 164 KB = 167936 B, opt-in 163 KB = 166912 B
  l40s      cc 8.9: 48 warps, 24 CTAs, 64 K regs, carve-out 100 KB = 102400 B, opt-in 99 KB = 101376 B
All: registers per warp rounded up to 256; shared memory per CTA = roundup(smem + 1024, 128);
at most 1024 threads, 255 registers per thread and 64 K registers per CTA.
"""

from __future__ import annotations

import pytest

from attnsim.simulator.hardware import PRESETS
from attnsim.simulator.occupancy import CtaResources, occupancy, resident_capacity

H100, A100, L40S = PRESETS["h100-sxm"], PRESETS["a100-80gb"], PRESETS["l40s"]

# (gpu, threads, regs, smem) -> (blocks, limiter, (warps, registers, shared_memory, blocks) limits)
CASES = [
    # ---- h100 (cc 9.0) ----
    # Driver answer: 4 warps; 96*32 = 3072 regs/warp -> 16384 // 3072 = 5 warps per sub-partition
    # -> 20 warps -> 20 // 4 = 5. smem 40960 + 1024 = 41984 (= 328*128) -> 233472 // 41984 = 5.
    # Registers and shared memory tie at 5; ties are reported in LIMITERS order (registers first).
    pytest.param(H100, 128, 96, 40960, 5, "registers", (16, 5, 5, 32), id="h100-driver-128t-96r-40KB"),
    # Driver answer: 8 warps; 128*32 = 4096 -> 16384 // 4096 = 4 per sub -> 16 warps -> 16 // 8 = 2.
    pytest.param(H100, 256, 128, 0, 2, "registers", (8, 2, 228, 32), id="h100-driver-256t-128r"),
    # 32 warps -> 64 // 32 = 2; 16*32 = 512 -> 32 per sub -> 128 warps -> 4; smem 1024 -> 228.
    pytest.param(H100, 1024, 16, 0, 2, "warps", (2, 4, 228, 32), id="h100-warps"),
    # Granularity: 33*32 = 1056 -> 1280 regs/warp; 16384 // 1280 = 12 per sub -> 48 warps -> 12.
    # (Without the 256-register rounding: 16384 // 1056 = 15 -> 15 CTAs.)
    pytest.param(H100, 128, 33, 0, 12, "registers", (16, 12, 228, 32), id="h100-reg-granularity"),
    # Sub-partitions: 3 warps x 3072 regs; 16384 // 3072 = 5 per sub -> 20 warps -> 20 // 3 = 6.
    # (Pooling the SM's 65536 registers instead: 21 warps -> 7 CTAs.)
    pytest.param(H100, 96, 96, 0, 6, "registers", (21, 6, 228, 32), id="h100-reg-subpartitions"),
    # 49152 + 1024 = 50176 (= 392*128) -> 233472 // 50176 = 4; 32 regs -> 1024/warp -> 16 CTAs.
    pytest.param(H100, 128, 32, 49152, 4, "shared_memory", (16, 16, 4, 32), id="h100-smem"),
    # 1 KB reserve: 58368 = 233472 / 4 would fit 4; + 1024 = 59392 -> 233472 // 59392 = 3.
    pytest.param(H100, 128, 32, 58368, 3, "shared_memory", (16, 16, 3, 32), id="h100-smem-reserve"),
    # 128 B rounding: 32276 + 1024 = 33300 -> 33408 (= 261*128) -> 233472 // 33408 = 6
    # (unrounded 233472 // 33300 = 7).
    pytest.param(H100, 128, 32, 32276, 6, "shared_memory", (16, 16, 6, 32), id="h100-smem-rounding"),
    # 1 warp -> 64; 16 regs -> 512/warp -> 32 per sub -> 128; smem 228; the CTA limit 32 binds.
    pytest.param(H100, 32, 16, 0, 32, "blocks", (64, 128, 228, 32), id="h100-blocks"),
    # 1024 threads x 64 regs = 2048/warp x 32 warps = 65536 = the per-CTA maximum: fits, 8 warps
    # per sub -> 32 warps -> 1 CTA.
    pytest.param(H100, 1024, 64, 0, 1, "registers", (2, 1, 228, 32), id="h100-regs-per-cta-boundary"),
    # 232448 B (the opt-in maximum) + 1024 = 233472 = the whole carve-out: exactly one CTA.
    pytest.param(H100, 128, 32, 232448, 1, "shared_memory", (16, 16, 1, 32), id="h100-smem-optin-boundary"),
    # ---- a100 (cc 8.0) ----
    pytest.param(A100, 1024, 16, 0, 2, "warps", (2, 4, 164, 32), id="a100-warps"),
    pytest.param(A100, 256, 128, 0, 2, "registers", (8, 2, 164, 32), id="a100-registers"),
    # 49152 + 1024 = 50176 -> 167936 // 50176 = 3.
    pytest.param(A100, 128, 32, 49152, 3, "shared_memory", (16, 16, 3, 32), id="a100-smem"),
    # 41984 = 167936 / 4 would fit 4; + 1024 = 43008 (= 336*128) -> 167936 // 43008 = 3.
    pytest.param(A100, 128, 32, 41984, 3, "shared_memory", (16, 16, 3, 32), id="a100-smem-reserve"),
    # smem 1024 -> 167936 // 1024 = 164; the CTA limit 32 binds.
    pytest.param(A100, 32, 16, 0, 32, "blocks", (64, 128, 164, 32), id="a100-blocks"),
    # 166912 + 1024 = 167936: exactly one CTA.
    pytest.param(A100, 128, 32, 166912, 1, "shared_memory", (16, 16, 1, 32), id="a100-smem-optin-boundary"),
    # ---- l40s (cc 8.9) ----
    # 16 warps -> 48 // 16 = 3; 1024 regs/warp -> 16 per sub -> 64 warps -> 4; smem 102400 // 1024 = 100.
    pytest.param(L40S, 512, 32, 0, 3, "warps", (3, 4, 100, 24), id="l40s-warps"),
    # 8 warps -> 6; 4096 regs/warp -> 4 per sub -> 16 warps -> 2.
    pytest.param(L40S, 256, 128, 0, 2, "registers", (6, 2, 100, 24), id="l40s-registers"),
    # 32768 + 1024 = 33792 (= 264*128) -> 102400 // 33792 = 3.
    pytest.param(L40S, 128, 32, 32768, 3, "shared_memory", (12, 16, 3, 24), id="l40s-smem"),
    # 25600 = 102400 / 4 would fit 4; + 1024 = 26624 -> 102400 // 26624 = 3.
    pytest.param(L40S, 128, 32, 25600, 3, "shared_memory", (12, 16, 3, 24), id="l40s-smem-reserve"),
    # 48 warps, 128 (regs), 100 (smem): the CTA limit 24 binds.
    pytest.param(L40S, 32, 16, 0, 24, "blocks", (48, 128, 100, 24), id="l40s-blocks"),
    # 101376 + 1024 = 102400: exactly one CTA.
    pytest.param(L40S, 128, 32, 101376, 1, "shared_memory", (12, 16, 1, 24), id="l40s-smem-optin-boundary"),
]


@pytest.mark.parametrize("gpu, threads, regs, smem, blocks, limiter, limits", CASES)
def test_blocks_per_sm_and_limiter(gpu, threads, regs, smem, blocks, limiter, limits):
    occ = occupancy(gpu, CtaResources(threads, regs, smem))
    assert occ.blocks_per_sm == blocks
    assert occ.limiter == limiter
    assert (occ.warps_limit, occ.registers_limit, occ.shared_memory_limit, occ.blocks_limit) == limits
    assert resident_capacity(gpu, CtaResources(threads, regs, smem)) == blocks * gpu.sm_count


@pytest.mark.parametrize("regs, regs_per_warp", [(1, 256), (8, 256), (9, 512), (33, 1280), (96, 3072), (255, 8192)])
def test_registers_are_allocated_per_warp_in_units_of_256(regs, regs_per_warp):
    # regs x 32 rounded up to 256: 1 -> 32 -> 256, 9 -> 288 -> 512, 255 -> 8160 -> 8192.
    assert occupancy(H100, CtaResources(32, regs, 0)).regs_per_warp == regs_per_warp


@pytest.mark.parametrize("smem, per_cta", [(0, 1024), (1, 1152), (40960, 41984), (32276, 33408), (40000, 41088)])
def test_shared_memory_per_cta_adds_1kb_and_rounds_to_128(smem, per_cta):
    # 1 + 1024 = 1025 -> 1152; 40000 + 1024 = 41024 -> 41088 (= 321*128).
    assert occupancy(H100, CtaResources(128, 32, smem)).smem_per_cta_bytes == per_cta


CANNOT_LAUNCH = [
    (1025, 32, 0, "threads"),  # more than 1024 threads per CTA
    (128, 256, 0, "registers per thread"),  # more than 255 registers per thread
    # 65 regs -> 2080 -> 2304 per warp x 32 warps = 73728 > 65536 registers per CTA.
    (1024, 65, 0, "per CTA"),
    # 25 warps x 80 regs: 2560 per warp; the hardware check rounds the warps up to the 4
    # sub-partitions: 2560 x 28 = 71680 > 65536 (2560 x 25 = 64000 alone would fit).
    (800, 80, 0, "per CTA"),
]


@pytest.mark.parametrize("gpu", [H100, A100, L40S], ids=["h100", "a100", "l40s"])
@pytest.mark.parametrize("threads, regs, smem, why", CANNOT_LAUNCH)
def test_cta_that_cannot_launch_gets_zero_blocks(gpu, threads, regs, smem, why):
    occ = occupancy(gpu, CtaResources(threads, regs, smem))
    assert occ.blocks_per_sm == 0
    assert occ.limiter.startswith("cannot_launch") and why in occ.limiter
    assert resident_capacity(gpu, CtaResources(threads, regs, smem)) == 0


@pytest.mark.parametrize("gpu", [H100, A100, L40S], ids=["h100", "a100", "l40s"])
def test_shared_memory_above_the_optin_maximum_cannot_launch(gpu):
    optin = gpu.smem_per_cta_optin_bytes  # 227 / 163 / 99 KB
    assert occupancy(gpu, CtaResources(128, 32, optin)).blocks_per_sm == 1
    occ = occupancy(gpu, CtaResources(128, 32, optin + 1))
    assert occ.blocks_per_sm == 0 and occ.limiter.startswith("cannot_launch") and "shared memory" in occ.limiter


def test_a_kernel_without_registers_has_no_register_limit():
    occ = occupancy(H100, CtaResources(32, 0, 0))
    assert occ.blocks_per_sm == 32 and occ.limiter == "blocks"


@pytest.mark.parametrize("preferred, blocks", [
    (None, 5),  # the query's assumption: the largest carve-out, 228 KB -> 233472 // 41984 = 5
    (102400, 2),  # exactly the 100 KB step -> 102400 // 41984 = 2
    (50000, 1),  # rounds up to the 64 KB step -> 65536 // 41984 = 1
    # Too small for one CTA: the driver ignores the preference and takes the smallest step that
    # holds one CTA (cuda_occupancy.h, "used as long as ... at least one CTA can be launched"),
    # 64 KB -> 1. A preference never stops a kernel that fits from launching.
    (8192, 1),
])
def test_preferred_carveout_rounds_up_to_a_supported_step(preferred, blocks):
    occ = occupancy(H100, CtaResources(128, 32, 40960), preferred)  # 41984 B per CTA
    assert occ.blocks_per_sm == blocks
    assert occ.limiter == "shared_memory"


@pytest.mark.parametrize("res", [CtaResources(0, 32, 0), CtaResources(128, -1, 0), CtaResources(128, 32, -1)])
def test_invalid_resources_are_refused(res):
    with pytest.raises(ValueError):
        occupancy(H100, res)


def test_specs_differing_only_in_costs_share_one_cached_answer():
    # Every step of a calibration fit builds a new spec of the same GPU with other costs; keyed on the
    # spec, each lookup compared whole specs against every cached one of that GPU (issue 21: the fit
    # spent most of its time there). The answer depends on the chip's limits only.
    from dataclasses import replace

    from attnsim.simulator import occupancy as occ_module
    from attnsim.simulator.hardware import CostParams

    res = CtaResources(128, 77, 12345)
    occupancy(H100, res)
    before = occ_module._occupancy.cache_info()
    for rate in (1.0, 2.0, 3.0):
        other = replace(H100, cost={"fa2": CostParams(cta_stream_gbps_per_warp=rate)})
        assert resident_capacity(other, res) == resident_capacity(H100, res)
    after = occ_module._occupancy.cache_info()
    assert after.misses == before.misses
