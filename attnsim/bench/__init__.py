"""`attnsim bench`: sweeps (sweep.py), inputs and the float64 check (inputs.py), the timing loop
(harness.py), CSV rows (results.py: the concrete plan each row ran), the GPU run (run.py) and the
calibration microbenchmarks (calibration.py). Torch and Triton are imported only where a run needs them.
"""
