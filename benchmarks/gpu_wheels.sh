#!/usr/bin/env bash
# Download here, into benchmarks/wheels/ (gitignored), the wheels that benchmarks/gpu.sh needs and
# the GPU machine lacks; that machine has no network, so they travel with the working tree.
#
#   bash benchmarks/gpu_wheels.sh            # then carry benchmarks/wheels to the GPU machine
#
# The GPU image has a CUDA torch and numpy, scipy, pyarrow, pyyaml, typer, tqdm, psutil, requests,
# fsspec, sentence-transformers, pytest and hypothesis, but not:
#   polars (+ its runtime)  every parquet read and write of the pipeline
#   dvclive and what its import pulls in (dvc, scmrepo, dulwich, ...)  the train stage's per-epoch curves
#   pytest, pluggy, iniconfig  only a fall-back: gpu.sh installs a carried wheel only where the
#                              machine lacks that distribution, so the machine's own always win
# faiss is not carried (faiss-gpu needs CUDA 12 runtime wheels of hundreds of MB; the machine has
# CUDA 13): there the kNN search is the exact torch search (pipeline/neighbors/knn.py), and
# the sentence model's weights package (~80 MB) neither: gpu.sh uses the benchmark's hashed text encoder.
#
# Versions are requirements.lock's (the CPU install's pins), for the GPU machine's Python
# (GPU_PYTHON, default 3.12: its python3 is 3.12). Prints each wheel's size and the total, and
# fails if the wheels and the working tree together pass 64 MiB (what travels at once).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
GPU_PYTHON="${GPU_PYTHON:-3.12}"
DEST=benchmarks/wheels
LIMIT_MIB=64

NEEDED=(
  polars polars-runtime-32
  dvclive dvc dvc-data dvc-objects dvc-http dvc-render dvc-studio-client scmrepo dulwich
  atpublic configobj diskcache dpath flatten-dict flufl.lock funcy orjson platformdirs pygtrie
  ruamel.yaml sqltrie voluptuous wcwidth zc.lockfile
  pytest pluggy iniconfig
)

pins=()
for name in "${NEEDED[@]}"; do
  line=$(grep -i -E "^${name//./\\.}==" requirements.lock || true)
  [ -n "$line" ] || { echo "gpu_wheels.sh: $name has no pin in requirements.lock" >&2; exit 2; }
  pins+=("$line")
done

rm -rf "$DEST"
mkdir -p "$DEST"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$GPU_PYTHON" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "${pins[@]}"

n=$(ls "$DEST"/*.whl | wc -l)
[ "$n" -eq "${#NEEDED[@]}" ] || { echo "gpu_wheels.sh: expected ${#NEEDED[@]} wheels, got $n" >&2; exit 1; }
ls -l "$DEST"/*.whl | awk '{printf "  %8.2f MiB  %s\n", $5 / 1048576, $9}'
wheels=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
awk -v w="$wheels" -v t="$tree" -v lim="$LIMIT_MIB" 'BEGIN {
  printf "gpu_wheels.sh: %d wheels, %.1f MiB; with the working tree (%.1f MiB): %.1f MiB of the %d MiB that travel\n",
         ARGV[1], w / 1048576, t / 1048576, (w + t) / 1048576, lim
  exit (w + t > lim * 1048576) }' "$n" || { echo "gpu_wheels.sh: over $LIMIT_MIB MiB" >&2; exit 1; }
