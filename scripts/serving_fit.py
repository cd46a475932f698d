"""Fit the serving cost terms on the cal-serving sweep (decode costs frozen), score them on the held-out
validation sweeps, and ship what holds out better, with its provenance.

    PYTHONPATH=. python3 scripts/serving_fit.py [--write attnsim/profiles/h200.json] \
        [--same-die attnsim/profiles/h100.json]

Reads results/h200/cal_serving.csv (the fitted rows: 47 workloads x fa2, flashdecoding, streamk, auto),
results/h200/bench_{paged,fp8,qlen}.csv (held out: their feature rows, 47 workloads x 4 each) and
results/h200/bench.csv (the standard sweep). attnsim/validation/serving_fit.py has the rules: the
per-family fit of the SERVING fields only, the held-out test of each term. Prints the held-out MAPE
per sweep x strategy asked for with the terms at their defaults and fitted, and the standard sweep's
MAPE per strategy before and after (it has no serving row: it must not move).

--write stores, in the H200 profile: the kept terms' fields in gpu.cost (the others at their defaults),
gpu.serving_terms (each term's status and basis; the serving regimes' error bands from the held-out
residuals of the profile as shipped) and fit.serving (the split, the fits, both MAPE tables).
--same-die stores in the H100 profile (same GH100 die, same kernels) the H200's fit of each term where
the H100's own measured serving rows (--same-die-results, default results/h100: cal_serving.csv and
bench_{paged,fp8,qlen}.csv, none fitted) predict better with it than at its default
(validation/serving_transfer.py): the fields, their provenance (`transferred`, or `default` and why) and
the regimes' bands from those rows' residuals. Starting from the profiles' terms reset to their defaults,
the script gives the same result whether or not it was run before.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from attnsim.fileio import write_json, write_text
from attnsim.profiles import resolve_gpu
from attnsim.simulator.terms import TERMS
from attnsim.validation import serving_fit as sf
from attnsim.validation import serving_transfer as st
from attnsim.validation.compare import error_metrics, predict_measurements
from attnsim.validation.measurements import load_measurements
from attnsim.validation.serving_bands import regime_note


def run(results: Path, gpu: str = "h200") -> dict:
    """Everything the script prints and writes, as plain data."""
    shipped = resolve_gpu(gpu)
    families = sf.fitted_families(sf.load_rows(results, shipped))
    base = sf.at_defaults(shipped, families)
    rows = sf.load_rows(results, base)
    own = sf.fit_families(rows, base, families)
    fits = sf.carry_terms(rows, sf.with_fits(base, own), own)
    fitted = sf.with_fits(base, fits)
    standard = load_measurements(results / "bench.csv")
    return {"rows": rows, "base": base, "fitted": fitted, "fits": fits, "split": sf.split_text(rows),
            "held_out": sf.mape_table(rows, base, fitted),
            "standard": {"before": standard_mape(standard, base), "after": standard_mape(standard, fitted)}}


def standard_mape(frame: pd.DataFrame, spec) -> dict[str, float]:
    """MAPE % per strategy on the standard sweep, as `attnsim validate` scores it."""
    return {s: round(m["mape"], 3) for s, m in error_metrics(predict_measurements(frame, spec)).items()}


def fit_record(out: dict) -> dict:
    """fit.serving of the profile: how the shipped serving fields were obtained and how they score."""
    return {"split": out["split"], "script": "scripts/serving_fit.py",
            "families": {f.family: {"terms": list(f.terms), "carried": f.carried, "dropped": f.dropped,
                                    "iterations": f.iterations,
                                    "fields": {n: round(getattr(f.params, n), 6) for t in (*f.terms, *f.carried)
                                               for n in TERMS[t].fields}} for f in out["fits"]},
            "held_out_mape_pct": out["held_out"].to_dict("records"),
            "standard_sweep_mape_pct": out["standard"]}


def write_profile(path: Path, out: dict) -> None:
    doc = json.loads(path.read_text())
    for fit in out["fits"]:
        params = {n: getattr(fit.params, n) for t in TERMS for n in TERMS[t].fields}
        doc["gpu"]["cost"][fit.family].update({n: round(v, 6) for n, v in params.items()})
    bands = sf.regime_bands(out["rows"], out["fitted"])
    basis = f"held-out residuals of the shipped serving terms on the H200 serving sweeps: {out['split']}"
    bands, basis = with_other_regimes(doc, bands, basis)
    doc["gpu"]["serving_terms"] = sf.serving_table(out["fits"], bands, out["split"], basis)
    doc["fit"]["serving"] = fit_record(out)
    write_json(path, doc, indent=1)


def with_other_regimes(doc: dict, bands: dict, basis: str) -> tuple[dict, str]:
    """`bands` and `basis` plus the profile's bands of regimes this script does not measure (mla:
    scripts/mla_fit.py's) and their notes."""
    previous = doc["gpu"].get("serving_terms", {}).get("bands", {})
    kept = {r: rows for r, rows in previous.get("regimes", {}).items() if r not in bands}
    return {**bands, **kept}, basis + "".join(regime_note(previous.get("basis", ""), r)[1] for r in kept)


def same_die(out: dict, results: Path, profile: Path) -> dict:
    """The H200's serving fit carried to the GPU of `profile` (same die) where `results` (its measured serving
    sweeps) say it predicts better, for the families the profile holds (the others it takes from the H200
    when loaded): {"spec", "table", "rows", "mape": sweep x strategy at defaults, carried}."""
    owned = json.loads(profile.read_text())["gpu"]["cost"]
    families = [f.family for f in out["fits"] if f.family in owned]
    base = sf.at_defaults(resolve_gpu(str(profile)), families)
    rows = st.load_rows(results, base)
    spec, table = st.carry_to_same_die(rows, base, [f for f in out["fits"] if f.family in families], "the H200")
    return {"spec": spec, "table": table, "rows": rows, "mape": sf.mape_table(rows, base, spec)}


def write_same_die(path: Path, carried: dict) -> None:
    doc = json.loads(path.read_text())
    spec, table = carried["spec"], carried["table"]
    for family in table["terms"]:
        params = spec.cost_for(family)
        doc["gpu"]["cost"][family].update({n: round(getattr(params, n), 6) for t in TERMS for n in TERMS[t].fields})
    bands, basis = with_other_regimes(doc, table["bands"]["regimes"], table["bands"]["basis"])
    doc["gpu"]["serving_terms"] = {"terms": table["terms"], "bands": {"basis": basis, "regimes": bands}}
    # json.dumps, not fileio.write_json: the H100 profile predates missing_as_null and keeps its NaN cells
    write_text(path, json.dumps(doc, indent=1) + "\n")


def markdown(out: dict) -> str:
    held = out["held_out"]
    lines = mape_rows(held, "| sweep | strategy | held-out points | terms at defaults | fitted |")
    lines += ["", "| standard sweep | before | after |", "|---|---:|---:|"]
    lines += [f"| {s} | {out['standard']['before'][s]:.2f}% | {out['standard']['after'][s]:.2f}% |"
              for s in out["standard"]["before"]]
    return "\n".join(lines)


def mape_rows(table: pd.DataFrame, header: str) -> list[str]:
    """A markdown table of sf.mape_table's rows (sweep, strategy, points, MAPE before and after) under `header`."""
    return [header, "|---|---|---:|---:|---:|"] + [
        f"| {r.sweep} | {r.strategy} | {r.points} | {r.before:.2f}% | {r.after:.2f}% |" for r in table.itertuples()]


def same_die_markdown(table: pd.DataFrame) -> str:
    return "\n".join(mape_rows(table, "| H100 rows | strategy | points | terms at defaults | H200 terms carried |"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results/h200"))
    ap.add_argument("--write", type=Path, help="the H200 profile to store the fit in")
    ap.add_argument("--same-die", type=Path, help="the H100 profile to carry the H200's terms into")
    ap.add_argument("--same-die-results", type=Path, default=Path("results/h100"),
                    help="the H100's measured serving sweeps (the carried terms' check)")
    args = ap.parse_args()
    out = run(args.results)
    print(out["split"])
    for fit in out["fits"]:
        fields = {n: round(getattr(fit.params, n), 4) for t in fit.terms for n in TERMS[t].fields}
        print(f"{fit.family}: kept {', '.join(fit.terms) or 'nothing'} {fields}")
        for term, why in fit.dropped.items():
            print(f"  {term} stays at its default: {why}")
    print(markdown(out))
    pooled = out["held_out"].groupby("sweep", sort=False)[["before", "after"]].mean()
    print("mean over strategies:", pooled.round(2).to_dict("index"))
    if args.write:
        write_profile(args.write, out)
        print(f"wrote the serving terms into {args.write}")
    if args.same_die:
        carried = same_die(out, args.same_die_results, args.same_die)
        for family, terms in carried["table"]["terms"].items():
            print(f"{args.same_die.name} {family}: " + "; ".join(f"{t} {e['status']}" for t, e in terms.items()))
        print(same_die_markdown(carried["mape"]))
        write_same_die(args.same_die, carried)
        print(f"wrote the carried serving terms into {args.same_die}")


if __name__ == "__main__":
    main()
