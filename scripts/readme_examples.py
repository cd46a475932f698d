"""The README's generated parts: commands with the output the current code prints, and the numbers
quoted from them. A part sits between `<!-- readme_examples:NAME -->` and
`<!-- /readme_examples:NAME -->`; everything outside the markers is prose a person writes.

    PYTHONPATH=. python scripts/readme_examples.py           # exit 1 with a diff when the README is stale
    PYTHONPATH=. python scripts/readme_examples.py --write   # rewrite the generated parts in place

tests/test_readme.py runs the check, so the README's numbers change only when the code does. Where
a part's words make a claim (fp8 saves more at long contexts, one stream-K CTA per SM), `render`
checks the claim against the numbers and stops with ClaimBroken instead of printing a false one:
rewrite the template below, then regenerate.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
REGENERATE = "PYTHONPATH=. python scripts/readme_examples.py --write"
MARKED = re.compile(r"(<!-- readme_examples:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /readme_examples:(?P=name) -->)",
                    re.S)
WRAP_AT = 100  # columns of a shown command line before it continues on the next

SERVING = ["predict", "--gpu", "h200", "--model", "meta-llama/Llama-3.1-70B", "--tp", "8", "--batch", "16",
           "--block-size", "16", "--dtype", "bfloat16"]
SWEEP = ["--context", "8k,32k,128k", "--strategy", "flashdecoding,streamk"]
KV_DTYPES = {"bf16": ["--kv-dtype", "bfloat16"], "fp8": ["--kv-dtype", "fp8"]}
VERIFY = ["--kv-dtype", "fp8", "--q-len", "4", "--context", "32k", "--strategy", "flashdecoding,streamk"]
JSON_EXAMPLE = ["predict", "--gpu", "h200", "--q-heads", "8", "--kv-heads", "1", "--contexts", "1000,3000",
                "--strategy", "auto", "--format", "json"]
H100_VALIDATE = ["validate", "--gpu", "h100", "--measurements", "results/h100/bench.csv"]
MLA_VALIDATE = ["validate", "--gpu", "h200", "--measurements", "results/h200/bench_mla.csv", "--rows", "mla"]
MLA = ["predict", "--gpu", "h200", "--model", "deepseek-ai/DeepSeek-V3", "--tp", "8", "--batch", "16",
       "--block-size", "64", "--context", "8k,32k,128k", "--strategy", "flashdecoding,streamk,flashmla,auto"]


class ClaimBroken(RuntimeError):
    """The prose around the numbers says something the numbers no longer support."""


def claim(holds: bool, what: str) -> None:
    if not holds:
        raise ClaimBroken(f"README claim no longer holds: {what}; rewrite it in {Path(__file__).name}")


def run(args: list[str]) -> str:
    """stdout of `attnsim ARGS`, in-process (as the user would see it, without the trailing newline)."""
    from click.testing import CliRunner

    from attnsim.cli import register_commands

    result = CliRunner().invoke(register_commands(), args, catch_exceptions=False)
    if result.exit_code:
        raise RuntimeError(f"attnsim {' '.join(args)} exited {result.exit_code}: {result.output}")
    return result.stdout.rstrip("\n")


def records(args: list[str]) -> list[dict]:
    import json

    return json.loads(run([*args, "--format", "json"]))["predictions"]


def shown(args: list[str]) -> str:
    """'$ attnsim ARGS' wrapped as a shell continues a line (an option stays with its value), then
    what it prints."""
    units = []
    for arg in args:
        if units and units[-1].startswith("--") and " " not in units[-1] and not arg.startswith("--"):
            units[-1] += " " + arg
        else:
            units.append(arg)
    lines, line = [], "$ attnsim"
    for arg in units:
        if len(line) + 1 + len(arg) > WRAP_AT:
            lines.append(line + " \\")
            line = "     "
        line += " " + arg
    return "\n".join([*lines, line, run(args)])


def by(rows: list[dict], strategy: str, context: int) -> dict:
    return next(r for r in rows if r["strategy"] == strategy and r["contexts"][0] == context)


def serving_predict(data) -> str:
    parts = [shown([*SERVING, *KV_DTYPES[k], *SWEEP]) for k in KV_DTYPES]
    return "```\n" + "\n\n".join(parts) + "\n```\n"


def best(rows: list[dict], context: int) -> dict:
    """The fastest record at `context` (per-step attention)."""
    return min((r for r in rows if r["contexts"][0] == context), key=lambda r: r["token_attention_us"])


def contexts(data) -> list[int]:
    return sorted({r["contexts"][0] for r in data["bf16"]})


def saving_pct(data, context: int) -> float:
    return 100 * (1 - best(data["fp8"], context)["token_attention_us"] / best(data["bf16"], context)["token_attention_us"])


def serving_table(data) -> str:
    from attnsim.reports.style import format_tokens

    layers = data["bf16"][0]["layers"]
    lines = [f"| context | bf16 KV, attention per step ({layers} layers) | fp8 KV | fp8 saves |",
             "|---:|---:|---:|---:|"]
    for c in contexts(data):
        cells = [f"{best(data[k], c)['token_attention_us']:.1f} µs ({best(data[k], c)['strategy']})" for k in KV_DTYPES]
        lines.append(f"| {format_tokens(c)} | {cells[0]} | {cells[1]} | {saving_pct(data, c):.0f}% |")
    return "\n".join(lines) + "\n"


def kv_mb(record: dict) -> float:
    """K+V bytes one layer reads (MB): 2 x tokens x kv_heads x head_dim x bytes per element."""
    element = 1 if record["kv_dtype"] == "float8_e4m3fn" else 2
    return 2 * sum(record["contexts"]) * record["kv_heads"] * record["head_dim"] * element / 1e6


def serving_notes(data) -> str:
    short, long = contexts(data)[0], contexts(data)[-1]
    first = by(data["bf16"], "streamk", short)
    savings = [saving_pct(data, c) for c in contexts(data)]
    claim(0 < min(savings) and max(savings) < 45, "fp8 saves at every context, less than half")
    long_fp8 = [r for r in data["fp8"] if r["contexts"][0] == long]
    claim(all(r["bound"] == "compute" for r in long_fp8), "every fp8 row at the longest context is held back by its tile math")
    claim(all(r["bound"] == "memory" for r in data["bf16"]), "every bf16 row is memory-bound")
    claim(first["time_us"] > 1.2 * first["floor_us"], f"at {short} a pure read of the bytes is well below the time")
    rows = data["bf16"] + data["fp8"]
    gaps = [abs(by(d, "streamk", c)["time_us"] / by(d, "flashdecoding", c)["time_us"] - 1)
            for d in (data["bf16"], data["fp8"]) for c in contexts(data)]
    splits = [r["splits"] for r in rows if r["strategy"] == "flashdecoding"]
    fa2 = [r["speedup_vs_fa2"] for r in rows]
    outputs = first["batch"] * first["kv_heads"]
    sms, regs, warps = data["sms"], data["fp8_regs"], data["fp8_warps"]
    grids = {k: by(data[k], "streamk", short)["grid"] for k in KV_DTYPES}
    claim(grids["fp8"] == grids["bf16"] == 2 * sms, "fp8 and bf16 stream-K both run two CTAs per SM")
    fractions = {k: [r["bw_fraction"] for r in data[k] if r["contexts"][0] == long] for k in KV_DTYPES}
    claim(max(fractions["fp8"]) < min(fractions["bf16"]), "fp8 streams a smaller share of the bandwidth at 128k")
    bandwidth_us = kv_mb(first) / data["read_gbps"] * 1e3  # the bytes alone at the floor's read rate
    decode, verify = by(data["fp8"], "streamk", 32768), data["verify"]
    extra = 100 * (verify["time_us"] / decode["time_us"] - 1)
    claim(extra > 0 and verify["bound"] == "compute", "a verify block costs more than decode, held back by tile math")
    return f"""- fp8 halves the KV bytes; the kernels convert each fp8 tile to fp16 before the dots ({regs} registers
  for stream-K: two {warps}-warp CTAs per SM, grid {grids['fp8']} as for bf16; docs/kernels.md). The H200 profile's
  conversion and tile-math rates are fitted on the `cal-serving` sweep measured on those kernels
  (stream-K's fp8 rows still at 8 warps; `scripts/serving_fit.py`, scored on the held-out serving
  sweeps; docs/serving.md). So fp8 saves
  {min(savings):.0f}-{max(savings):.0f}% here ({_tokens(short)}: {savings[0]:.0f}%, {_tokens(long)}: {savings[-1]:.0f}%), not the 50% its bytes \
would:
  at {_tokens(long)} the fp8 rows are `compute`-bound and stream {min(fractions['fp8']):.2f}-{max(fractions['fp8']):.2f} of \
the read bandwidth
  against {min(fractions['bf16']):.2f}-{max(fractions['bf16']):.2f} for bf16; at {_tokens(short)} launch, ramp-up and \
merging dominate (a layer
  reads {kv_mb(first):.0f} MB of bf16 KV in ~{first['time_us']:.0f} µs, {first['vs_floor']:.2f}x its floor: \
a pure read of the same bytes under
  the bench's timer, {first['floor_us']:.0f} µs, of which the bandwidth is {bandwidth_us:.0f} and the call and the \
flush's write-back the rest).
- Stream-K and FlashDecoding are within {100 * max(gaps):.0f}% of each other here ({first['batch']} sequences x \
{first['kv_heads']} KV head = {outputs}
  outputs, split {min(splits)}-{max(splits)} ways by FA2's heuristic); FA2's one CTA per output leaves \
{sms - outputs} of {sms} SMs
  idle and is {min(fa2):.1f}-{max(fa2):.1f}x slower (`speedup_vs_fa2`).
- Speculative decoding verifies several tokens per step: `--q-len 4` packs the 4 positions x 8 heads
  into one 32-row query tile, so the KV is still read once, but the step costs {extra:.0f}% more than decode
  here (streamk {verify['time_us']:.3f} µs per layer against {decode['time_us']:.3f} at 32k, fp8):
  `attnsim {' '.join([*SERVING, *VERIFY])}`.
  The model caps each SM's stream by its tile math (`bound` column when that binds), so it says
  when a verify block stops being memory-bound.
- A `†` on `likely_us` marks a row whose plan uses a serving cost term not fitted on this GPU, or
  a head dim that is not a power of two (the footnote names it, `profile_source` and `terms` in
  CSV/JSON too): its band is the error measured on the sweeps of its regime, not the decode band.
"""


def _tokens(context: int) -> str:
    from attnsim.reports.style import format_tokens

    return format_tokens(context)


def json_example(data) -> str:
    return "```\n" + shown(JSON_EXAMPLE) + "\n```\n"


ENGINE_EXAMPLE = ["plan", "--gpu", "h200", "--model", "meta-llama/Llama-3.1-70B", "--tp", "8", "--batch", "16",
                  "--page-size", "16", "--dtype", "bfloat16", "--context", "32k", "--engine", "sglang"]
TABLE_EXAMPLE = ["plan", "--gpu", "h200", "--model", "meta-llama/Llama-3.1-70B", "--tp", "8", "--page-size", "16",
                 "--dtype", "bfloat16", "--kv-dtype", "bf16,fp8", "--table", "llama70b-tp8-h200.json"]
TABLE_LOOKUPS = (("table.lookup(16, 32768, page_size=16, kv_dtype=\"fp8\")", lambda t: t.lookup(16, 32768, 16, "fp8")),
                 ("table.lookup(3, [500, 9000, 1200], page_size=16, kv_dtype=\"bf16\")",
                  lambda t: t.lookup(3, [500, 9000, 1200], 16, "bf16")))


def engine_example(data) -> str:
    """The plan's head (choice, why, band), then the engine's block, as `plan --engine` prints them."""
    out = run(ENGINE_EXAMPLE).splitlines()
    head = out[:next(i for i, line in enumerate(out) if line.startswith("tie band:")) + 1]
    block = out[next(i for i, line in enumerate(out) if line.startswith("engine ")):]
    claim(any(line.startswith("  set: ") for line in block), "the engine block ends with what to set")
    command = shown(ENGINE_EXAMPLE).splitlines()[:-len(out)]
    return "```\n" + "\n".join([*command, *head, "...", *block]) + "\n```\n"


def table_example(data) -> str:
    """`plan --table` run in a scratch folder, then the loader's look-ups on the file it wrote."""
    import os
    import tempfile

    from attnsim import plantable

    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            text = shown(TABLE_EXAMPLE)
            table = plantable.load(TABLE_EXAMPLE[-1])
            lookups = [f">>> {text}\n{call(table)!r}" for text, call in TABLE_LOOKUPS]
        finally:
            os.chdir(here)
    python = [">>> from attnsim import plantable", f">>> table = plantable.load(\"{TABLE_EXAMPLE[-1]}\")", *lookups]
    return "```\n" + text + "\n```\n```\n" + "\n".join(python) + "\n```\n"


def mla_predict(data) -> str:
    return "```\n" + shown(MLA) + "\n```\n"


def validated(args: list[str], within_pct: float, what: str):
    """The part showing `attnsim validate ARGS` down to its table of MAPE per strategy; its prose claims every
    strategy's MAPE is within `within_pct` (`what`)."""
    def part(_data) -> str:
        import os

        here = os.getcwd()
        os.chdir(README.parent)  # the command names the sweep as a user in the repository would
        try:
            out = shown(args).splitlines()
        finally:
            os.chdir(here)
        table = next(i for i, line in enumerate(out) if line.startswith("strategy "))
        end = next(i for i in range(table, len(out)) if not out[i].strip())
        worst = max(float(line.split()[2]) for line in out[table + 1:end])
        claim(worst <= within_pct, what)
        return "```\n" + "\n".join(out[:end]) + "\n```\n"
    return part


def measured(gpu: str):
    """The part quoting results/<gpu>/bench.csv: scripts/bench_table.py's tables of the committed sweep."""
    def part(_data) -> str:
        import pandas as pd

        scripts = str(README.parent / "scripts")
        if scripts not in sys.path:
            sys.path.insert(0, scripts)
        import bench_table

        csv = README.parent / "results" / gpu / "bench.csv"
        return bench_table.markdown(pd.read_csv(csv, dtype={"contexts": str, "options": str}))
    return part


PARTS = {"serving-predict": serving_predict, "serving-table": serving_table, "serving-notes": serving_notes,
         "json-example": json_example, "engine-example": engine_example, "table-example": table_example,
         "mla-predict": mla_predict,
         "mla-validate": validated(MLA_VALIDATE, 5.0, "every MLA strategy's held-out MAPE is within 5%"),
         "h100-validate": validated(H100_VALIDATE, 4.0, "every H100 strategy's MAPE on its sweep is within 4%"), "h200-bench": measured("h200"), "h100-bench": measured("h100")}


def serving_data() -> dict:
    """What the serving parts quote: records per KV dtype, the verify record, the GPU's SMs and the
    fp8 stream-K kernel's registers (from the plan the model makes, as the launcher would)."""
    from attnsim.planner.choose import make_plan
    from attnsim.profiles import resolve_gpu
    from attnsim.simulator import floor
    from attnsim.simulator.workload import DecodeWorkload

    data = {k: records([*SERVING, *flags, *SWEEP]) for k, flags in KV_DTYPES.items()}
    data["verify"] = by(records([*SERVING, *VERIFY]), "streamk", 32768)
    gpu = resolve_gpu("h200", None)
    r = data["fp8"][0]
    workload = DecodeWorkload.build(r["batch"], r["q_heads"], r["kv_heads"], r["head_dim"], r["contexts"], 1, r["dtype"],
                                    r["page_size"] or 0, r["kv_dtype"], r["layers"], tp=r["tp"])
    data["sms"] = gpu.sm_count
    data["read_gbps"] = floor.of_gpu(gpu).read_gbps  # the floor's read rate (simulator/floor.py)
    plan = make_plan("streamk", workload, gpu)
    data["fp8_regs"], data["fp8_warps"] = plan.resources.regs_per_thread, plan.resources.warps
    return data


def render(text: str) -> str:
    """`text` (the README) with every marked part regenerated; an unknown part name is an error."""
    names = [m.group("name") for m in MARKED.finditer(text)]
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        raise KeyError(f"README marks parts this script does not know: {', '.join(unknown)}")
    data = serving_data() if any(n.startswith("serving") for n in names) else {}
    return MARKED.sub(lambda m: m.group(1) + PARTS[m.group("name")](data) + m.group(4), text)


def stale_diff(path: Path = README) -> str:
    """A unified diff from the README to what it should say ('' when it is current)."""
    old = path.read_text()
    new = render(old)
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path), "regenerated"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the README's generated parts")
    args = parser.parse_args(argv)
    if args.write:
        from attnsim.fileio import write_text

        write_text(README, render(README.read_text()))
        print(f"wrote {README}")
        return 0
    diff = stale_diff()
    if diff:
        sys.stdout.write(diff + f"\nThe README is stale: {REGENERATE}\n")
        return 1
    print("README is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
