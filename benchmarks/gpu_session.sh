#!/usr/bin/env bash
# One prepared device check (~9 minutes on one H100/H200), for a session lent a GPU: the CUDA test
# tier (Triton kernels included), then train_throughput.py with the fused readout in float32 and
# bf16 and with torch.compile. Results land in $OUT (JSON) for benchmarks/RESULTS.md.
#
# The device machine has a CUDA torch but no network: carry wheels of georecall's other
# dependencies in .whl/ (pip download click tqdm safetensors pytest pluggy iniconfig packaging pygments
# --no-deps -d .whl), e.g. run(command="bash benchmarks/gpu_session.sh", carry=[".whl"]).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
python -m pip install --quiet --no-deps .whl/*.whl 2>/dev/null
python -m pip install --quiet --no-deps -e . || exit 1
python - <<'PY' | tee "$OUT/env.txt"
import torch
print(torch.__version__, torch.cuda.get_device_name(0))
try:
    import triton; print("triton", triton.__version__)
except ImportError:
    print("triton missing: the Triton path falls back to the chunked torch path")
PY
timeout 150 python -m pytest -q -m gpu tests/gpu 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"
# fused on: Triton kernels when triton imports (else the chunked torch path); float32 then bf16
# operands (tensor cores), then the launch-bound config with torch.compile.
run() { name=$1; shift; timeout 140 python benchmarks/train_throughput.py --device cuda --steps 20 \
          --baseline-models 2 --check-steps 0 --json "$@" > "$OUT/$name.json"; echo "$name rc=$?"; }
run fused_fp32 --fused on --ensembles 1,32,512
run fused_bf16 --fused on --readout-dtype bfloat16 --ensembles 32,512
run compiled --configs launch-bound --fused on --compile --ensembles 32,512
