"""Triton decode kernels for the three partitionings, their launchers and a float64 reference.

Contract (shared by the kernels, `attnsim bench` and calibration):

    launcher = prepare(plan, device="cuda")     # attnsim.kernels.launch; plan: attnsim.planner.make_plan(...)
    launcher = launcher_for(spec, workload, gpu, config=None, device="cuda")   # the same, planning first
    launcher.schedule      # the plan's Schedule it launches (one plan, two consumers)
    launcher.resources     # CtaResources the plan was made with (meta: the compiled kernel's)
    launcher.meta          # dict: plan (its spec), requested, num_warps, num_stages, n_regs, n_spills, smem_bytes,
                           # grid, splits, kv_tile
    out = launcher.run(q, k_cache, v_cache, out=None)   # q [batch, q_heads, head_dim];
                                                         # k/v [batch, kv_heads, max_context, head_dim];
                                                         # lengths come from workload.contexts
    out = launcher.run(q, k_pool, v_pool, block_table=bt, k_scale=ks, v_scale=vs)
        # serving: q [batch, q_heads, q_len, head_dim]; pools [num_pages, page_size, kv_heads, head_dim]
        # (kv_cache.py builds them); fp8 scales [kv_heads] (launch_inputs.py checks every input)

Nothing here touches the GPU at import time.
"""
