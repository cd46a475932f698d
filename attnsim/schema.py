"""The JSON documents `attnsim predict --format json` and `attnsim plan --format json` print.

Version 2 (SCHEMA_VERSION; the unversioned output before it was version 1):

- A document is an object: {"schema_version": 2, "kind": "predictions", "predictions": [record, ...]}
  or {"schema_version": 2, "kind": "plans", "plans": [plan result, ...]}; the list is a list even
  for one item, so a reader never branches on the type.
- `contexts` is the context length of every sequence of the batch (batch entries; a uniform batch
  repeats one length), always a list.
- null, never 0, where a field does not apply: `splits` of a plan without one split count per
  output (stream-K, hybrid, balanced: each output is cut its own way), `page_size` of a contiguous
  cache, `layers` and `token_attention_us` of a workload that is not a model's,
  `profile_date` of a profile that was not calibrated, `terms` of a decode prediction (it uses no
  serving cost term: simulator/provenance.py), `kv_lora_rank` of a layer that is not MLA.
- The plan that runs is an object {"strategy": "streamk", "options": {"grid": 264}} next to its
  spec string (`plan_spec` in a record, `spec` in a plan result): `attnsim.plans.spec.parse_plan_spec`
  reads the string back into the same strategy and options.
- A plan result says `why` its plan runs and which was the `fastest` predicted (the choice is the
  simplest within the tie band: attnsim/planner/canonical.py); `plan --engine` adds `engines`, a list.
  A plan table (`plan --table`) is its own document, `kind` "plan-table": attnsim/plantable.py.

CSV (`predict --format csv`, a report's predictions.csv) keeps flat columns, one scalar per cell
(`flat`): `context` is the length of a uniform batch or 'a;b;c' for a ragged one, `plan` the spec
string, `terms` as 'term=status;...', and a null is an empty cell.
"""

from __future__ import annotations

import json

import pandas as pd

from attnsim.fileio import json_text
from attnsim.plans.spec import parse_plan_spec

SCHEMA_VERSION = 2
NULLABLE_INTEGERS = ("splits", "page_size", "layers", "kv_lora_rank")  # integer fields that may be null


def document(kind: str, items: list) -> dict:
    """The versioned envelope around a list of records or plan results."""
    return {"schema_version": SCHEMA_VERSION, "kind": kind, kind: list(items)}


def plan_object(spec: str) -> dict:
    """'hybrid:grid=128,dp_outputs=0' -> {"strategy": "hybrid", "options": {"grid": 128, "dp_outputs": 0}}."""
    strategy, options = parse_plan_spec(spec)
    return {"strategy": strategy.name, "options": options.set()}


def context_label(contexts) -> str | int:
    """The CSV convention: the length of a uniform batch, 'a;b;c' for a ragged one."""
    return contexts[0] if len(set(contexts)) == 1 else ";".join(map(str, contexts))


def flat(record: dict) -> dict:
    """A record with one scalar per cell: `context` for `contexts`, `plan` as its spec string."""
    out = {}
    for key, value in record.items():
        if key == "contexts":
            out["context"] = context_label(value)
        elif key == "plan":
            out["plan"] = record.get("plan_spec", value)
        elif key == "terms":  # {term: status} of the serving terms the plan uses -> 'paging=default;...'
            out[key] = ";".join(f"{t}={status}" for t, status in value.items()) if value else None
        elif key != "plan_spec":
            out[key] = value
    return out


def flat_frame(rows: list[dict]) -> pd.DataFrame:
    """Flat rows as a DataFrame whose nullable integer columns stay integers (16, not 16.0, in CSV)."""
    frame = pd.DataFrame(rows)
    return frame.astype({c: "Int64" for c in NULLABLE_INTEGERS if c in frame.columns})


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Records as the flat frame tables, CSV and figures read."""
    return flat_frame([flat(r) for r in records])


def _number_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def document_text(data: dict) -> str:
    """JSON indented by 2, with lists of numbers on one line: a batch of 4,096 sequences is one
    line of `contexts` per record, not 4,096. NaN or infinity is a ValueError (fileio.json_text)."""
    inline: dict[str, str] = {}

    def mark(value):
        if _number_list(value):
            key = f"\x00inline{len(inline)}\x00"  # no record text holds a NUL
            inline[key] = json.dumps(value, allow_nan=False)
            return key
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json_text(mark(data))
    for key, compact in inline.items():
        text = text.replace(json.dumps(key), compact, 1)
    return text
