"""Data shared by the report tests: the measurements file and a small scenario's TOML text."""

from pathlib import Path

DATA = Path(__file__).parent.parent / "data"
SMALL_TOML = '''title = "small"
models = ["llama-3.1-8b"]
batches = [1]
contexts = ["1k", "8k", "64k"]
gpus = ["h100"]
whatif_gpus = ["h100", "l40s"]
[[ragged]]
name = "mix"
batch = 3
seed = 1
'''
