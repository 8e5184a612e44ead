#!/usr/bin/env bash
# The checks that need a CUDA GPU, as one short script (a GPU machine is lent only now and then).
#
#   bash benchmarks/gpu_check.sh            # logs and JSON under $OUT (default: ./gpu-out)
#
# Installs bfly in place without touching the machine's torch, runs the CUDA tests (which skip on
# a machine without a GPU), the whole suite, then the gradient learner and `bfly bench` on cuda,
# with the same learner runs on the CPU of the same machine beside them for comparison.
# SKIP_SUITE=1 leaves out the whole suite, SKIP_BENCH=1 the bench.
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
step() { echo; echo "== $*"; }

step "install (no dependencies: the machine's torch, numpy, scipy, h5py, typer, rich are used)"
$PY -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -3
$PY - <<'EOF' | tee "$OUT/device.txt"
import torch, bfly_cli
from bfly_cli import kernel
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
print("bfly", bfly_cli.__version__, "compiled kernel", kernel.available())
EOF

step "CUDA tests"
$PY -m pytest -q -rs -p no:cacheprovider -k cuda tests/test_torch_butterfly.py tests/test_gradient.py \
    tests/test_bench.py 2>&1 | tee "$OUT/cuda-tests.log"

if [ -z "${SKIP_SUITE:-}" ]; then
    step "whole suite with a GPU present"
    XDIST=$($PY -c "import xdist" 2>/dev/null && echo "-n 8")
    timeout 300 $PY -m pytest -q -p no:cacheprovider $XDIST 2>&1 | tail -15 | tee "$OUT/suite.log"
fi

step "gradient learner: cuda vs this machine's cpu (seconds, rel_error, restarts)"
# name, N, model, devices; override with LEARN_SPECS="dct 256 BPP cuda;..."
IFS=';' read -ra SPECS <<< "${LEARN_SPECS:-dft 256 BP cuda,cpu;dct 64 BPP cuda,cpu;hartley 128 BP cuda}"
for spec in "${SPECS[@]}"; do
    set -- $spec
    for dev in ${4//,/ }; do
        start=$(date +%s.%N)
        timeout 150 bfly learn "$1" --n "$2" --solver gradient --model "$3" --device "$dev" --seed 0 \
            --json --force -o "$OUT/$1-$2-$dev.h5" > "$OUT/learn-$1-$2-$dev.json"
        rc=$?
        $PY - "$OUT/learn-$1-$2-$dev.json" "$1" "$2" "$dev" "$rc" "$start" <<'EOF'
import json, sys, time
path, name, n, dev, rc, start = sys.argv[1:]
try:
    doc = json.load(open(path))
    print(f"{name:9} {n:>4} {dev:4} rc={rc} rel_error={doc['rel_error']:.1e} restarts={doc.get('restarts_used')} "
          f"fitted={doc['solver_log'][-1].get('fitted')} wall={time.time() - float(start):.1f}s")
except Exception as exc:  # a timeout or a crash leaves no JSON
    print(f"{name:9} {n:>4} {dev:4} rc={rc} no result ({exc.__class__.__name__})")
EOF
    done
done | tee "$OUT/learn.txt"

[ -n "${SKIP_BENCH:-}" ] && exit 0
step "bfly bench --device cuda"
bfly learn dct --n 512 -q --force -o "$OUT/dct-512.h5"
bfly learn dft --n 4096 -q --force -o "$OUT/dft-4096.h5"
for f in dct-512 dft-4096; do
    bfly bench "$OUT/$f.h5" --device cuda --batch 1,256 --repeat 20 2>&1 | tee "$OUT/bench-$f-cuda.txt"
done
