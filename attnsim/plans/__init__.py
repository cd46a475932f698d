"""Plans: the one resources resolver (resources.py), plan specs (spec.py) and the Plan value (plan.py).

A Plan is made once — by `attnsim.planner.make_plan` for any strategy, `auto` included — and handed
over: the engine simulates its Schedule, the launcher uploads it, a bench row records its spec,
validate reads that spec back. Nothing here imports the planner, the kernels or anything above.
"""
