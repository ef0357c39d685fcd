#!/usr/bin/env bash
# The GPU check: one prepared run on an NVIDIA GPU machine with PyTorch and JAX, without TensorFlow,
# dlib, ffmpeg or network, in about 8 minutes. Prepare first, on a CPU with faceswap installed:
#   scripts/gpu_check_prepare.sh      # fills .whl/ (wheels) and .gpu_faces/ (d18, d19 faces)
# then, on the GPU machine, from the repository root:
#   scripts/gpu_check.sh
# and back on the CPU, with what it wrote under $OUT in DIR:
#   python scripts/bench_quality.py --replay DIR --inputs .gpu_faces/swap_inputs.npz
# Stages, each with its own budget in seconds (override by these variables) and a hard timeout:
#   1. the quality curve (GPU_CHECK_CURVE_S=240 of training, GPU_CHECK_CURVE_BACKEND=jax): the CPU's
#      default recipe (lite, batch 16, float32) on d18/d19, decoding d18's recorded faces with B's
#      decoder at 1000, 2000, 4000, ... iterations (see scripts/bench_quality_replay.py);
#   2. throughput on PyTorch (GPU_CHECK_TORCH_S=50) and 3. on JAX (GPU_CHECK_JAX_S=50): faces/s of
#      original and residual128 at batch 64, 128, 256, mixed and float32, jit on and off, with the
#      share of the GPU's dense bf16 peak;
#   4. time to a loss of 0.05, 0.03, 0.02 with the fastest original setting (GPU_CHECK_TARGET_S, 0:
#      skipped); the model is saved in GPU_CHECK_MODEL_DIR (default /tmp/gpu_check_model).
# Writes under $OUT (else out/gpu_check), at most 8 files as a GPU machine's $OUT allows:
# gpu_check.log, gpu_check.json (every stage), curve.json, at most 4 curve_<iteration>.npz and the
# curve model's preview.png. GPU_CHECK_TINY=1: lite, batch 8, 2 steps a setting, seconds-long
# budgets, to test the script on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
out=${OUT:-out/gpu_check}
mkdir -p "$out"
exec > >(tee -a "$out/gpu_check.log") 2>&1
if [ "${GPU_CHECK_TINY:-}" = 1 ]; then
    curve_s=${GPU_CHECK_CURVE_S:-20} first=5 torch_s=${GPU_CHECK_TORCH_S:-60} jax_s=${GPU_CHECK_JAX_S:-40}
    target_s=${GPU_CHECK_TARGET_S:-5} slack=240
else
    curve_s=${GPU_CHECK_CURVE_S:-240} first=1000 torch_s=${GPU_CHECK_TORCH_S:-50} jax_s=${GPU_CHECK_JAX_S:-50}
    target_s=${GPU_CHECK_TARGET_S:-0} slack=40
fi
model_dir=${GPU_CHECK_MODEL_DIR:-/tmp/gpu_check_model}
work=${GPU_CHECK_WORK:-/tmp/gpu_check_work}
python=${PYTHON:-python3}
[ -d .gpu_faces/d18/train ] && [ -d .gpu_faces/d19/train ] && [ -f .gpu_faces/swap_inputs.npz ] && [ -d .whl ] || {
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

results=$work/throughput.jsonl
rm -rf "$work" "$model_dir" "$model_dir-curve" && mkdir -p "$work"
echo "== quality curve on ${GPU_CHECK_CURVE_BACKEND:-jax} (budget $curve_s s, at $((SECONDS - started)) s)"
timeout -k 5 $((curve_s + slack + 60)) "$python" scripts/gpu_check.py curve --backend "${GPU_CHECK_CURVE_BACKEND:-jax}" \
    --budget "$curve_s" --first "$first" --inputs .gpu_faces/swap_inputs.npz --model-dir "$model_dir-curve" \
    --max-files 4 --out "$out" || echo "gpu_check: the curve stage stopped (exit $?); its finished points are kept"
if [ ! -f "$out/curve.json" ] && [ "${GPU_CHECK_CURVE_BACKEND:-jax}" = jax ]; then
    echo "== quality curve on torch instead (budget $((curve_s / 2)) s, at $((SECONDS - started)) s)"
    rm -rf "$model_dir-curve"
    timeout -k 5 $((curve_s / 2 + slack + 60)) "$python" scripts/gpu_check.py curve --backend torch \
        --budget $((curve_s / 2)) --first "$first" --inputs .gpu_faces/swap_inputs.npz --model-dir "$model_dir-curve" \
        --max-files 4 --out "$out" || echo "gpu_check: the torch curve stopped (exit $?); its finished points are kept"
fi
[ -f "$model_dir-curve/preview.png" ] && cp "$model_dir-curve/preview.png" "$out/"
for stage in "torch $torch_s" "jax $jax_s"; do
    set -- $stage
    echo "== throughput on $1 (budget $2 s, at $((SECONDS - started)) s)"
    timeout -k 5 $(($2 + slack)) "$python" scripts/gpu_check.py throughput --backend "$1" --budget "$2" --out "$results" \
        || echo "gpu_check: the $1 stage stopped (exit $?); its finished settings are kept"
done
if [ "$target_s" != 0 ]; then
    echo "== time to target (budget $target_s s of training, at $((SECONDS - started)) s)"
    timeout -k 5 $((target_s + slack + 40)) "$python" scripts/gpu_check.py target --results "$results" \
        --budget "$target_s" --model-dir "$model_dir" --out "$work/target.json" \
        || echo "gpu_check: the time-to-target stage stopped (exit $?)"
fi
echo "== report ($((SECONDS - started)) s in all)"
"$python" scripts/gpu_check.py report --results "$results" --target "$work/target.json" --curve "$out/curve.json" \
    --out "$out/gpu_check.json"
cat <<EOM

The swap of each curve point: copy what came back under \$OUT to a folder DIR on a CPU machine with
faceswap installed (dlib, ffmpeg, ../shared/data) and run
  python scripts/bench_quality.py --replay DIR --inputs .gpu_faces/swap_inputs.npz
EOM
