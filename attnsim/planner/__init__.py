"""The planner: the model chooses the plan, the kernel runs it.

    result = search(workload, gpu)            # every candidate plan of our kernels, simulated
    result.chosen.spec                        # 'streamk:grid=198': what `auto` resolves to
    plan = make_plan("auto", workload, gpu)   # choose.py: any strategy's concrete Plan, `auto` too

- candidates.py: the candidate set per registry entry (its `search` axes), bounded and deduplicated;
- bounds.py: a cheap lower bound on a candidate's time, to skip the ones that cannot tie the best;
- heuristics.py: what production systems' rules would choose (registry HEURISTICS);
- tieband.py: how close to the best counts as a tie (the profile's measured error bands);
- canonical.py: one name per concrete plan, and the simplest plan within the tie band;
- search.py: evaluate, rank and choose;
- choose.py: make_plan, the one entry point from a strategy or plan spec to the Plan that runs;
- engines.py: what to set in vLLM / SGLang / FlashInfer / FA3, from their own rules;
- table.py: the planner's choices over batch x context buckets, for attnsim/plantable.py.
The result as text and JSON is attnsim/reports/plan_report.py.
"""
