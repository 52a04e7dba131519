# Two entry points for a fresh machine (Linux, Python 3.11, no GPU):
#   make run    create .venv, install, and run the whole DVC pipeline (the data stages and studies, the
#               training runs RUN_JOBS at a time, then dvc repro for evaluation and reports)
#   make test   create .venv, install, and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test repro-check clean-venv

# dvc.yaml runs `python -m stages.<name>`: the venv must come first on PATH (as after `source .venv/bin/activate`).
export PATH := $(abspath $(BIN)):$(PATH)
# OpenMP threads that spin while waiting make torch 10x slower on a shared 2-core machine.
export OMP_WAIT_POLICY ?= PASSIVE

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is pinned to the CPU build in pyproject.toml; requirements.lock pins everything else.
	# faiss comes from the `cpu` extra (faiss-cpu); a CUDA machine installs `.[gpu]` instead (README "On a GPU").
	$(BIN)/pip install --quiet -c requirements.lock -e '.[cpu,test]'
	touch $(STAMP)

# DVC runs one stage at a time; the training runs are independent, so train-all runs them RUN_JOBS at a
# time (one thread each) and records them in dvc.lock, as dvc repro would.
RUN_JOBS ?= 2
run: $(STAMP)
	$(BIN)/dvc repro graph tune_cf tune_mm
	$(BIN)/simgr train-all --jobs $(RUN_JOBS)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/pytest

# The reproducibility contract (docs/reproducibility.md): rebuild the committed HEAD in a temporary
# clone, compare every output with the committed one by the rule of its kind, fail only when the
# contract is broken. Prints what it rebuilt, what it trusted, and one table of what moved.
repro-check: $(STAMP)
	$(BIN)/python -m stages.repro_check

clean-venv:
	rm -rf $(VENV)
