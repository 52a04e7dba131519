# Two entry points for a fresh machine (Linux, Python 3.11, no GPU):
#   make run    create .venv, install, and run the whole DVC pipeline (dvc repro)
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
	# torch is pinned to the CPU build in pyproject.toml; requirements.lock pins everything else
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/pytest

# The reproducibility promise: from a clean clone, `dvc repro` rebuilds every output with the
# hashes recorded in the committed dvc.lock, and the committed metrics do not move.
repro-check: $(STAMP)
	$(BIN)/dvc repro
	@if ! git diff --quiet -- dvc.lock; then \
	  echo "repro-check: outputs differ from the committed dvc.lock:"; git --no-pager diff --stat -- dvc.lock; \
	  $(BIN)/dvc metrics diff HEAD --all || true; exit 1; fi
	@if [ -n "$$(git status --porcelain --untracked-files=no)" ]; then \
	  echo "repro-check: tracked files changed by dvc repro:"; git status --porcelain --untracked-files=no; \
	  $(BIN)/dvc metrics diff HEAD || true; exit 1; fi
	$(BIN)/dvc status --quiet || { echo "repro-check: dvc status is not clean"; $(BIN)/dvc status; exit 1; }
	@echo "repro-check: dvc repro reproduced every output of the committed dvc.lock exactly"

clean-venv:
	rm -rf $(VENV)
