# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13.0 is a CPU build on local disk here (an unpinned torch may pull a multi-GB CUDA build);
# triton 3.6.0 matches the lent H100's and its interpreter runs on the CPU.
PINS := torch==2.13.0 triton==3.6.0

.PHONY: demo test install clean

$(BIN)/attnsim: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(PINS) numpy pandas matplotlib click pytest hypothesis pytest-xdist
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(BIN)/attnsim

demo: install
	$(BIN)/attnsim predict --gpu h100 --model llama-3.1-8b --batch 1 --context 1k,4k,16k,64k,128k,256k,512k --plot out/demo_speedup.png
	$(BIN)/attnsim report --scenario default --out out/report --measurements results/h100/bench.csv

test: install
	TRITON_INTERPRET=1 $(BIN)/python -m pytest -q -n 2 -p no:cacheprovider

clean:
	rm -rf $(VENV) out
