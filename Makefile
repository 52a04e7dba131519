# Two entry points for a fresh machine (Linux, Python 3.11, no GPU):
#   make run    create .venv, install, and run the whole DVC pipeline dataset by dataset, smallest first (its data
#               stages and studies, its training runs RUN_JOBS at a time, its report), with one progress line
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

# DVC runs one stage at a time and every stage of a kind before the next kind; run-all goes dataset by dataset
# (the smallest's report first) and runs the training runs RUN_JOBS at a time (one thread each), recording them
# in dvc.lock as dvc repro would (pipeline/repro/runall.py). Steps log to logs/run/.
RUN_JOBS ?= 2
run: $(STAMP)
	$(BIN)/simgr run-all --jobs $(RUN_JOBS)

test: $(STAMP)
	$(BIN)/pytest

# The reproducibility contract (docs/reproducibility.md): rebuild the committed HEAD in a temporary
# clone, compare every output with the committed one by the rule of its kind, fail only when the
# contract is broken. Prints what it rebuilt, what it trusted, and one table of what moved.
# REPRO_BUDGET=<minutes>: no training run starts, and those running stop, that long after the check began;
# the sampled runs left out are trusted and listed (CI sets it from its own time limit).
REPRO_BUDGET ?=
repro-check: $(STAMP)
	$(BIN)/python -m stages.repro_check $(if $(REPRO_BUDGET),--budget-minutes $(REPRO_BUDGET))

clean-venv:
	rm -rf $(VENV)
