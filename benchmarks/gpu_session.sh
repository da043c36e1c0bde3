#!/usr/bin/env bash
# One prepared device check (~8 minutes on one H100/H200), for a session lent a GPU: the CUDA test
# tier (Triton kernels included), then train_throughput.py on both configs with the plain, chunked
# torch and Triton loss paths. Results land in $OUT (JSON) for benchmarks/RESULTS.md.
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
# fused off = plain logits; on = Triton when importable (else chunked torch)
for fused in off on; do
  timeout 150 python benchmarks/train_throughput.py --device cuda --fused $fused --ensembles 1,32,512 \
      --steps 20 --baseline-models 2 --check-steps 0 --json > "$OUT/throughput_fused_$fused.json"
  echo "fused=$fused rc=$?"
done
