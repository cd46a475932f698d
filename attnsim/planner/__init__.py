"""The planner: the model chooses the plan, the kernel runs it.

    result = search(workload, gpu)            # every candidate plan of our kernels, simulated
    result.chosen.spec                        # 'streamk:grid=198': what `auto` resolves to

- candidates.py: the candidate set per registry entry (its `search` axes), bounded and deduplicated;
- bounds.py: a cheap lower bound on a candidate's time, to skip the ones that cannot tie the best;
- heuristics.py: what production systems' rules would choose (registry HEURISTICS);
- tieband.py: how close to the best counts as a tie (the profile's expected error);
- search.py: evaluate, rank, report; `choose_plan` is the registry's `auto` resolution;
- report.py: the result as JSON-ready data and as text (`attnsim plan`).
"""
