"""`attnsim plan --engine`: what to set in a serving engine (planner/engines.py) as JSON-ready data and
as text. Times in µs (one layer, our kernels running the engine's split decision); `vs_choice_pct`:
percent over the planner's choice."""

from __future__ import annotations

from attnsim.planner.engines import Advice, Setting

SETTING_WIDTH = 30  # columns for the plan spec before the (long) setting text


def _over(setting: Setting, advice: Advice) -> float:
    return 100.0 * (setting.plan.time_us / advice.best_plan.time_us - 1.0)


def setting_data(setting: Setting, advice: Advice) -> dict:
    p = setting.plan
    return {"set": setting.text, "knobs": dict(setting.knobs), "default": setting.default, "invariant": setting.invariant,
            "strategy": p.strategy, "options": dict(p.options), "spec": p.spec, "time_us": round(p.time_us, 3),
            "vs_choice_pct": round(_over(setting, advice), 2)}


def verdict(advice: Advice) -> str:
    d, r = advice.default, advice.recommended
    if advice.keep_default:
        return (f"keep the default: no setting is predicted faster than it ({d.plan.time_us:.2f} µs) beyond the "
                f"{advice.tie_band_pct:.1f}% tie band")
    pct = 100.0 * (1.0 - r.plan.time_us / d.plan.time_us)
    return f"{r.text}: predicted {pct:.1f}% faster than the default ({d.plan.time_us:.2f} µs)"


def advice_data(advice: Advice) -> dict:
    return {"engine": advice.engine, "label": advice.label,
            "choice": {"spec": advice.best_plan.spec, "time_us": round(advice.best_plan.time_us, 3)},
            "tie_band_pct": round(advice.tie_band_pct, 2),
            "default": setting_data(advice.default, advice), "recommended": setting_data(advice.recommended, advice),
            "keep_default": advice.keep_default, "verdict": verdict(advice),
            "settings": [setting_data(s, advice) for s in advice.settings], "notes": list(advice.notes)}


def _row(setting: Setting, advice: Advice) -> str:
    tags = [t for t, on in (("default", setting.default), ("determinism mode, for its cost", setting.invariant)) if on]
    label = setting.text + (f"  [{'; '.join(tags)}]" if tags else "")
    return f"  {setting.plan.time_us:>9.2f} {_over(setting, advice):>+9.1f}%  {setting.plan.spec:<{SETTING_WIDTH}} {label}"


def advice_text(advice: Advice) -> str:
    c = advice.best_plan
    lines = [f"engine {advice.engine}: {advice.label}",
             f"  against the planner's choice {c.spec} ({c.time_us:.2f} µs, our kernels; no engine runs it as such)",
             f"  {'µs':>9} {'vs choice':>10}  {'plan on our kernels':<{SETTING_WIDTH}} setting",
             *(_row(s, advice) for s in advice.settings),
             f"  set: {verdict(advice)}"]
    lines += [f"  note: {n}" for n in advice.notes]
    return "\n".join(lines)
