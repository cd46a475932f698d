"""Issue 14: every bad command-line option is refused before any work — exit 2, one line naming the
option, no traceback, no file written. GPU commands (bench, calibrate, validate without a CSV)
refuse bad input on this CPU-only machine before they ask for the GPU."""

import pytest

from reliability_helpers import assert_refused

LONG_NAME = "a" * 5000
BIG_SWEEP = ",".join(f"{k}k" for k in range(1, 41))  # 40 workloads of 2^19 outputs each

# (command, regular expression the error line must match: the option, and the limit where one applies)
BAD_OPTIONS = {
    "predict": [
        ("predict --batch ² --out {out}/p.csv", "batch: '²' is not"),
        ("predict --batch 1000000000000 --out {out}/p.csv", "batch: .*limit of 4,096"),
        ("predict --context 999999999999999999999999999999 --out {out}/p.csv", "context: .*limit of 33,554,432"),
        ("predict --contexts 1000,,3000 --out {out}/p.csv", "contexts: item 2 .* is empty"),
        ("predict --context 1k, --out {out}/p.csv", "context: item 2 .* is empty"),
        ("predict --contexts 1000,50000,4294967296000", "contexts: .*limit of 33,554,432"),
        ("predict --q-heads 2048 --kv-heads 8", "q-heads: .*limit of 1,024"),
        ("predict --q-len 100000", "q-len: .*limit of 16"),
        ("predict --batch 4096 --q-heads 512 --kv-heads 512", "batch: .*outputs.*limit of 524,288"),
        ("predict --strategy , --out {out}/p.csv", "strategy: ','"),
        ("predict --strategy fa2,,streamk", "strategy"),
        ("predict --strategy flashdecoding --splits 1000 --out {out}/p.csv", "splits: 1000 splits .* 64 KV tiles"),
        ("predict --splits 100000000", "splits: .*limit of 1,024"),
        ("predict --strategy streamk --grid ²", "grid: '²'"),
        ("predict --kv-tile 100000", "kv-tile: .*limit of 4,096"),
        ("predict --context 1k:8M:1k", "context: 24,576 simulations .*limit of 8,192"),  # the work, not the count
        (f"predict --batch 4096 --q-heads 128 --kv-heads 128 --context {BIG_SWEEP}", "workload: .*limit of 16,777,216"),
        (f"predict --gpu {LONG_NAME}", "gpu: unknown GPU"),
        (f"predict --gpu /tmp/{LONG_NAME}.json", "gpu: cannot read"),
        ("predict --gpu {sdpa}", "gpu: .*not valid JSON"),
        ("predict --calibration {sdpa}", "calibration: .*not valid JSON"),
        ("predict --format yaml --out {out}/p.csv", "format"),
    ],
    "plan": [
        ("plan --splits ²", "splits: '²'"),
        ("plan --grid 99999999", "grid: .*limit of 524,288"),
        ("plan --chunk 0", "chunk: must be positive"),
        ("plan --kv-tile 100000", "kv-tile: .*limit of 4,096"),
        ("plan --strategy ,", "strategy: ','"),
        ("plan --contexts 1000,,3000", "contexts: item 2"),
        ("plan --format csv", "format"),
        ("plan --batch 4096 --q-heads 128 --kv-heads 128 --context 1k,2k", "workload: .*limit of 16,777,216"),
    ],
    "schedule": [
        ("schedule --max-ctas -5", "max-ctas"),
        ("schedule --strategy fa2 --batch 2048 --q-heads 128 --kv-heads 128 --plot {out}/g.png",
         "plot: .*CTAs to draw.*limit of 65,536"),
        ("schedule --kv-tile 0", "kv-tile: must be positive"),
        ("schedule --strategy , --plot {out}/g.png", "strategy"),
        ("schedule --batch ²", "batch"),
    ],
    "occupancy": [
        ("occupancy --threads 128 --regs ²", "regs: '²'"),
        ("occupancy --threads 99999999999 --regs 32", "threads: .*limit of 65,536"),
        ("occupancy --threads 128 --regs 32 --smem -1", "smem: '-1'"),
        ("occupancy --threads 128 --regs 32 --carveout 1.5", "carveout: '1.5'"),
        ("occupancy --threads 0 --regs 32", "threads: must be positive"),
    ],
    "plot": [
        ("plot", "attnsim plot: give a command: occupancy, speedup"),
        ("plot whatif --gpu h100,,a100 --out {out}/w.png", "gpu: 'h100,,a100'"),
        ("plot timeline --strategy fa2 --batch 2048 --q-heads 128 --kv-heads 128 --out {out}/t.png",
         "workload: .*CTAs to draw"),
        ("plot timeline --context 1k,2k --out {out}/t.png", "context: a timeline shows one workload"),
        ("plot speedup --gpu h100,a100,h200,l40s,b200,h100,a100,h200,l40s --out {out}/s.png", "gpu: 9 GPUs .*limit of 8"),
        ("plot occupancy --gpu , --out {out}/o.png", "gpu: ','"),
        ("plot timeline --q-len ² --out {out}/t.png", "q-len"),
    ],
    "bench": [
        ("bench --warmup-ms inf --out {out}/b.csv", "warmup-ms: must be a finite number"),
        ("bench --rep-ms nan --out {out}/b.csv", "rep-ms: must be a finite number"),
        ("bench --rep-ms 1e9 --out {out}/b.csv", "rep-ms: .*limit of 60000"),
        ("bench --peak-gbps -1 --out {out}/b.csv", "peak-gbps: must be positive"),
        ("bench --limit ² --out {out}/b.csv", "limit: '²'"),
        ("bench --strategies , --out {out}/b.csv", "strategies: ','"),
        ("bench --strategies 'streamk:grid=²' --out {out}/b.csv", "strategies"),
        ("bench --strategies 'streamk:grid=99999999' --out {out}/b.csv", "strategies: .*limit of 524,288"),
        ("bench --max-kv-gb 1e30 --out {out}/b.csv", "max-kv-gb: .*limit of"),
        ("bench --strategies auto:batch_invariant=5 --out {out}/b.csv", "strategies: 5 batch_invariant is above the limit of 1"),
        ("bench --out {out}/b.txt", "out: .*CSV files end in .csv"),
        ("bench --gpu rtx9999 --out {out}/b.csv", "gpu: unknown GPU"),
    ],
    "calibrate": [
        ("calibrate --out {out}/p.txt", "out: .*profile files end in .json"),
        ("calibrate --out {out}/p.json --rep-ms -1", "rep-ms: must be positive"),
        ("calibrate --out {out}/p.json --rep-ms inf", "rep-ms: must be a finite number"),
        ("calibrate --out {out}/p.json --budget -1", "budget: must be positive"),
        ("calibrate --out {out}/p.json --budget 1e9", "budget: .*limit of 3600"),
        ("calibrate --out {out}/p.json --budget abc", "budget"),
        ("calibrate --gpu h200 --out {out}/p.json --budget 2 --plan-only", "budget: 2 s is below the run's fixed"),
        ("calibrate --out {out}/p.json --budget 60 --from-data {h100}", "budget: applies to the full calibration"),
        ("calibrate --gpu h200 --out {out}/p.json --budget 60 --quick", "budget: .*not with --quick"),
        ("calibrate --out {out}/p.json --plan-only --transfer-from h100", "plan-only: .*--transfer-from"),
        ("calibrate --out {out}/p.json --plan-only --measure-only", "plan-only: stops before measuring"),
        ("calibrate --gpu rtx9999 --out {out}/p.json", "gpu: unknown GPU"),
        ("calibrate --out {out}/p.json --measure-only --from-data {h100}", "measure-only"),
        ("calibrate --transfer-from nonsense --gpu h200 --out {out}/p.json", "transfer-from: unknown GPU"),
        ("calibrate --transfer-from {sdpa} --gpu h200 --out {out}/p.json", "transfer-from: .*not valid JSON"),
    ],
    "validate": [
        ("validate --measurements {sdpa} --format xml", "format"),
        ("validate --measurements {sdpa} --gpu a100", "measurements.gpu: sdpa_small.csv line 2 .* a100-80gb"),
        ("validate --measurements {sdpa} --gpu rtx9999 --out-dir {out}/v", "gpu: unknown GPU"),
        ("validate --quick --format csv --out-dir {out}/v", "format"),
    ],
    "report": [
        ("report --scenario nope --out {out}/r", "scenario: no file 'nope'"),
        ("report --scenario default --gpu h100,, --out {out}/r", "gpu: 'h100,,'"),
        ("report --scenario default --figures jpg --out {out}/r", "figures"),
        (f"report --scenario default --gpu {LONG_NAME} --out {{out}}/r", "gpu: unknown GPU"),
        ("report --scenario default --calibration {h100} --gpu h100,a100 --out {out}/r", "calibration"),
    ],
    "scenarios": [
        ("scenarios --check nope", "scenario: no file 'nope'"),
        (f"scenarios --check /tmp/{LONG_NAME}.toml", "scenario"),
    ],
}
CASES = [(command, field) for cases in BAD_OPTIONS.values() for command, field in cases]


@pytest.mark.parametrize("command, field", CASES, ids=[c[:60] for c, _ in CASES])
def test_bad_option_is_refused_before_any_work(command, field, tmp_path, capsys):
    assert_refused(command, field, tmp_path, capsys)


def test_every_command_has_bad_inputs_covered():
    from attnsim.cli import COMMANDS

    assert {module for module, _ in COMMANDS} <= set(BAD_OPTIONS) | {"report"}
    assert len(set(CASES)) == len(CASES)
