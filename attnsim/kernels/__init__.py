"""Triton decode kernels for the three partitionings, their launchers and a float64 reference.

Contract (shared by the kernels, `attnsim bench` and calibration):

    launcher = prepare(strategy, workload, gpu, config=None, device="cuda")   # attnsim.kernels.launch
    launcher.schedule      # the simulator's Schedule it launches (one plan, two consumers)
    launcher.resources     # CtaResources of the compiled attention kernel (threads, regs, smem)
    launcher.meta          # dict: num_warps, num_stages, n_regs, n_spills, smem_bytes, grid, splits, kv_tile
    out = launcher.run(q, k_cache, v_cache, out=None)   # q [batch, q_heads, head_dim];
                                                         # k/v [batch, kv_heads, max_context, head_dim];
                                                         # lengths come from workload.contexts

Nothing here touches the GPU at import time.
"""
