# Two commands: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.genesplice-installed
TORCH  ?= torch==2.13.0

.PHONY: demo test install clean-venv benchmark

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first, pinned to the CPU wheel on disk; an unpinned torch pulls a multi-GB CUDA build
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/genesplice demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=15 tests

benchmark: $(STAMP)
	$(PY) benchmarks/build_graph.py
	$(PY) benchmarks/sequence_encoder.py
	$(PY) benchmarks/embed_throughput.py

clean-venv:
	rm -rf $(VENV)
