#!/usr/bin/env bash
# The Baby-size benchmark on a GPU machine (issue 7, item 4), a few minutes end to end.
#
#   bash benchmarks/gpu.sh [extra benchmarks/run.py options]
#
# Uses the CUDA build of torch and faiss-gpu when they are installed (pip install -e '.[gpu]'
# with a CUDA torch wheel); on a machine without a GPU it runs the same benchmark on the CPU and
# says so. Text features use the hashed stand-in encoder (the sentence model's time is measured
# by the full CPU benchmark); everything else is the pipeline's own code. Results:
# benchmarks/results/<gpu name>.json and .md (or cpu-<n>core.* without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "gpu.sh: no nvidia-smi on this machine: the benchmark runs on the CPU"
fi
"$PY" - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}"
      + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
try:
    import faiss
    n = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    print(f"faiss {faiss.__version__}, GPUs visible to faiss: {n}" + ("" if n else " (neighbors stage runs on the CPU)"))
except ImportError:
    print("faiss is not installed")
EOF

start=$(date +%s)
status=0
"$PY" benchmarks/run.py --scale 1 --device auto --text-encoder hashed --epochs 3 "$@" || status=$?
echo "gpu.sh: benchmark finished in $(( $(date +%s) - start )) s (status $status)"
exit $status
