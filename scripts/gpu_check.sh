#!/usr/bin/env bash
# The GPU check (issue 11, section 3): one prepared run on an NVIDIA GPU machine with PyTorch and
# JAX, without TensorFlow and without network, in at most 8 minutes. Prepare first, on a CPU:
#   scripts/gpu_check_prepare.sh      # fills .whl/ (wheels) and .gpu_faces/ (d3, d6 faces)
# then, on the GPU machine, from the repository root:
#   scripts/gpu_check.sh
# Stages, each with its own budget in seconds (override by these variables) and a hard timeout:
#   1. throughput on PyTorch (GPU_CHECK_TORCH_S=130) and 2. on JAX (GPU_CHECK_JAX_S=100): faces/s
#      of original and residual128 at batch 64, 128, 256, float32 and mixed, jit on and off, with
#      the share of the GPU's dense bf16 peak;
#   3. time to a loss of 0.05, 0.03, 0.02 with the fastest original setting (GPU_CHECK_TARGET_S=90
#      of training); the model is saved in GPU_CHECK_MODEL_DIR (default /tmp/gpu_check_model).
# Writes throughput.jsonl, target.json, gpu_check.json, gpu_check.txt (the table), gpu_check.log,
# and the model's preview.png and loss.png under $OUT (else out/gpu_check). GPU_CHECK_TINY=1: lite,
# batch 8, 2 steps a setting, seconds-long budgets, to test the script on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
out=${OUT:-out/gpu_check}
mkdir -p "$out"
exec > >(tee -a "$out/gpu_check.log") 2>&1
if [ "${GPU_CHECK_TINY:-}" = 1 ]; then
    torch_s=${GPU_CHECK_TORCH_S:-60} jax_s=${GPU_CHECK_JAX_S:-40} target_s=${GPU_CHECK_TARGET_S:-5} slack=240
else
    torch_s=${GPU_CHECK_TORCH_S:-130} jax_s=${GPU_CHECK_JAX_S:-100} target_s=${GPU_CHECK_TARGET_S:-90} slack=30
fi
model_dir=${GPU_CHECK_MODEL_DIR:-/tmp/gpu_check_model}
python=${PYTHON:-python3}
[ -f .gpu_faces/d3/alignments.json ] && [ -f .gpu_faces/d6/alignments.json ] && [ -d .whl ] || {
    echo "gpu_check: .whl/ or .gpu_faces/ missing: run scripts/gpu_check_prepare.sh on a CPU first" >&2
    exit 2
}

# What the machine lacks, from the wheels (optree is compiled: the one for this Python).
site=${GPU_CHECK_SITE:-/tmp/gpu_check_site}
cp=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    .whl/*.whl .whl/"$cp"/*.whl || { echo "gpu_check: the wheels did not install (Python $cp)" >&2; exit 2; }
export PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$python" -c 'import importlib.metadata as m, torch, jax
print("torch", torch.__version__, "cuda:", torch.cuda.is_available(), "| jax", jax.__version__, jax.devices(), "| keras", m.version("keras"))'

results=$out/throughput.jsonl
rm -f "$results" "$out/target.json" && rm -rf "$model_dir"
for stage in "torch $torch_s" "jax $jax_s"; do
    set -- $stage
    echo "== throughput on $1 (budget $2 s, at $((SECONDS - started)) s)"
    timeout -k 5 $(($2 + slack)) "$python" scripts/gpu_check.py throughput --backend "$1" --budget "$2" --out "$results" \
        || echo "gpu_check: the $1 stage stopped (exit $?); its finished settings are kept"
done
echo "== time to target (budget $target_s s of training, at $((SECONDS - started)) s)"
timeout -k 5 $((target_s + slack + 40)) "$python" scripts/gpu_check.py target --results "$results" \
    --budget "$target_s" --model-dir "$model_dir" --out "$out/target.json" \
    || echo "gpu_check: the time-to-target stage stopped (exit $?)"
for picture in preview.png loss.png; do [ -f "$model_dir/$picture" ] && cp "$model_dir/$picture" "$out/"; done
echo "== report ($((SECONDS - started)) s in all)"
"$python" scripts/gpu_check.py report --results "$results" --target "$out/target.json" --out "$out/gpu_check.json"
cat <<EOM

Identity transfer: with the model folder $model_dir on a CPU machine with faceswap installed
(dlib, ffmpeg; the model folder is about 1 GB with Adam's state, so it does not fit in \$OUT), run
  faceswap convert ../shared/data/video/d3.mp4 -m $model_dir -a .gpu_faces/d3/alignments.json -o out/gpu_check_swap.mp4
  faceswap score ../shared/data/video/d3.mp4 out/gpu_check_swap.mp4 --target .gpu_faces/d6 -m $model_dir --json out/gpu_check_score.json
EOM
