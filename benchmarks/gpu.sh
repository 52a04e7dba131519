#!/usr/bin/env bash
# The GPU run (issue 14): the CUDA tests, the Baby-size benchmark and SiMGR from raw files to
# metrics, on a CUDA machine as it is: its python3 with a CUDA torch, no network.
#
#   here, with network:   bash benchmarks/gpu_wheels.sh   # the wheels that machine lacks -> benchmarks/wheels/
#   on the GPU machine:   bash benchmarks/gpu.sh          # benchmarks/wheels travels with the tree
#
# Results: benchmarks/results/gpu-<kind>.json and .md (<kind>: the GPU's name, e.g. nvidia-h200);
# scratch (logs, the benchmark's own results, test report) in benchmarks/work/gpu/. Python:
# $PYTHON, else .venv/bin/python3 where there is one, else python3 (never a bare `python`).
#
#  1. the device (nvidia-smi, torch). Without a CUDA device: "no GPU present", exit 0, nothing written;
#  2. the carried wheels whose distribution this python lacks, into a temporary folder on
#     PYTHONPATH (pip --no-index, or unzipped where there is no pip); the machine's own packages win;
#  3. the CUDA tests: pytest -k cuda over the device-parametrised test modules;
#  4. benchmarks/gpu_check.sh: kNN and APFI candidates at Baby size on the CPU and on the GPU, compared;
#  5. benchmarks/run.py --device cuda at Baby size (19,445 users, 7,050 items, 160,792 ratings,
#     4096-d images + 384-d text; the hashed text encoder: the sentence model's weights are not on
#     that machine): the stages, the kNN search alone, epochs of lightgcn and simgr, and SiMGR from
#     raw files to metrics (train stage with early stopping, then the evaluate stage);
#  6. the other models' epochs, if time is left;
#  7. benchmarks/gpu_report.py: each target of the issue with the measured value, the CPU figure
#     (benchmarks/results/cpu-2core.*) and the ratio, peak CUDA memory, the tests' outcome.
# Every step has a time limit and the whole stays within GPU_SH_BUDGET seconds (default 480).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  PY=python3
  [ -x .venv/bin/python3 ] && PY=.venv/bin/python3
fi
BUDGET="${GPU_SH_BUDGET:-480}"

if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "gpu.sh: $PY cannot import torch; set PYTHON to a python with (CUDA) torch" >&2
  exit 2
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  SMI=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true)
  echo "gpu.sh: nvidia-smi: $SMI"
else
  SMI="no nvidia-smi"
fi
if ! KIND=$("$PY" - <<'EOF'
import re, sys
import torch
print(f"gpu.sh: torch {torch.__version__} (CUDA {torch.version.cuda}), python {sys.version.split()[0]}, "
      f"CUDA available: {torch.cuda.is_available()}", file=sys.stderr)
if not torch.cuda.is_available():
    sys.exit(1)
name = torch.cuda.get_device_name(0)
print(f"gpu.sh: device 0: {name}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB", file=sys.stderr)
print(re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))
EOF
); then
  echo "gpu.sh: no GPU present (torch sees no CUDA device): nothing run, nothing written"
  exit 0
fi

WORK="$ROOT/benchmarks/work/gpu"
rm -rf "$WORK"
mkdir -p "$WORK"
echo "$SMI" >"$WORK/nvidia-smi.txt"
: >"$WORK/phases.tsv"
left() { echo $(( BUDGET - SECONDS )); }
# phase NAME LIMIT_S CMD...: runs CMD under `timeout` (at most what is left of the budget), logs to $WORK/NAME.log
phase() {
  local name=$1 limit=$2
  shift 2
  local cap=$(( $(left) - 20 ))  # keep 20 s for the report
  [ "$limit" -gt "$cap" ] && limit=$cap
  if [ "$limit" -lt 30 ]; then
    echo "gpu.sh: $name skipped: the time budget ($BUDGET s) is spent"
    printf '%s\t%s\t%s\t%s\n' "$name" skipped 0 0 >>"$WORK/phases.tsv"
    return 0
  fi
  echo "gpu.sh: $name (at most $limit s) ..."
  local t0=$SECONDS rc=0
  PYTHONUNBUFFERED=1 timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.log" 2>&1 || rc=$?
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && echo "gpu.sh: $name ran past its $limit s and was stopped"
  tail -n 4 "$WORK/$name.log" | sed "s/^/  [$name] /"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" $(( SECONDS - t0 )) "$limit" >>"$WORK/phases.tsv"
  return 0
}

# -- 2. the carried wheels this python lacks ------------------------------------------------------
SITE=$(mktemp -d /tmp/simgr-site.XXXXXX)
"$PY" - "$SITE" <<'EOF'
import importlib.metadata as md
import re
import subprocess
import sys
import zipfile
from pathlib import Path

site = sys.argv[1]
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
wheels = sorted(Path("benchmarks/wheels").glob("*.whl"))
have = {norm(d.metadata["Name"]) for d in md.distributions() if d.metadata["Name"]}
missing = [w for w in wheels if norm(w.name.split("-")[0]) not in have]
print(f"gpu.sh: {len(wheels)} carried wheels; {len(missing)} not on this machine: "
      + (", ".join(norm(w.name.split("-")[0]) for w in missing) or "none"))
if missing:
    try:
        import pip  # noqa: F401
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--target", site, *map(str, missing)], check=True)
    except ImportError:
        for w in missing:  # a wheel is a zip of what goes on sys.path
            zipfile.ZipFile(w).extractall(site)
EOF
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import polars, dvclive, pytest" 2>"$WORK/imports.log"; then
  echo "gpu.sh: cannot import polars, dvclive or pytest ($(tail -n 1 "$WORK/imports.log")): run" \
       "'bash benchmarks/gpu_wheels.sh' on a machine with network and carry benchmarks/wheels" >&2
  exit 2
fi

# -- 3. the CUDA tests ---------------------------------------------------------------------------
mapfile -t TESTS < <(grep -lE 'RecommenderTestMixin|def test_[a-z0-9_]*\(.*\bdevice\b' tests/test_*.py)
phase tests 180 "$PY" -m pytest -q -p no:cacheprovider -k cuda --continue-on-collection-errors \
  --junitxml "$WORK/tests.xml" "${TESTS[@]}"

# -- 4. CPU vs GPU lists at Baby size ------------------------------------------------------------
GPU_CHECK_OUT="$WORK/gpu_check.json" PYTHON="$PY" phase gpu_check 120 bash benchmarks/gpu_check.sh

# -- 5, 6. the Baby-size benchmark and SiMGR from raw files to metrics -----------------------------
BENCH=("$PY" benchmarks/run.py --scale 1 --device cuda --text-encoder hashed --out "$WORK/results" --machine "$KIND")
phase bench 300 "${BENCH[@]}" --epochs 3 --models lightgcn,simgr --fit simgr --step-timeout 200
phase bench_more 150 "${BENCH[@]}" --skip-stages --epochs 2 --models mf,siren,freedom,lgmrec,simgr_bf16 --step-timeout 60

# -- 7. the report -------------------------------------------------------------------------------
"$PY" benchmarks/gpu_report.py --work "$WORK" --kind "$KIND" --out benchmarks/results
status=$?
rm -rf "$SITE"
echo "gpu.sh: done in $SECONDS s"
failed=$(awk -F'\t' '$2 != "0" && $2 != "skipped" {print $1}' "$WORK/phases.tsv" | tr '\n' ' ')
[ -z "$failed" ] || { echo "gpu.sh: did not pass: $failed(logs in $WORK)"; status=1; }
exit $status
