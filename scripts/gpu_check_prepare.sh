#!/usr/bin/env bash
# Prepare what scripts/gpu_check.sh needs on a GPU machine without network, here on a CPU:
#   .whl/         wheels of the pure-Python packages such a machine lacks (keras and its namex and
#                 optree, ffmpeg-python and its future), optree once per CPython 3.11-3.13 in .whl/cpXY/
#   .gpu_faces/   d18 and d19 faces of ../shared/data/video, extracted at 128 px and split as
#                 bench_quality.py splits them (d18/train, d18/validation, ...; about 13 MB), and
#                 swap_inputs.npz: the faces convert feeds the default CPU model for d18.mp4
#                 (bench_quality.py --record-inputs), which the curve stage decodes
# Both folders are git-ignored: name them in the device tool's carry, or copy them along.
# The train path needs neither dlib nor TensorFlow, so neither travels. Prints the travelling size
# (tracked files + both folders), which must stay under 64 MiB.
#
#   scripts/gpu_check_prepare.sh            # GPU_CHECK_FACE_SIZE=PX for another crop size
set -euo pipefail
cd "$(dirname "$0")/.."
size=${GPU_CHECK_FACE_SIZE:-128}
python=${PYTHON:-python3}
version() { "$python" -c "import importlib.metadata as m; print(m.version('$1'))"; }

mkdir -p .whl
for package in keras namex ffmpeg-python future; do
    [ -n "$(ls .whl/ | grep -i "^${package//-/_}-" || true)" ] || \
        "$python" -m pip download -q --no-deps -d .whl "$package==$(version "$package")"
done
optree=$(version optree)
for cp in 311 312 313; do
    ls ".whl/cp$cp"/optree-*.whl >/dev/null 2>&1 || \
        "$python" -m pip download -q --no-deps --only-binary=:all: --python-version "${cp:0:1}.${cp:1}" \
            --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 -d ".whl/cp$cp" "optree==$optree"
done

videos=../shared/data/video
for clip in d18 d19; do
    if [ ! -d ".gpu_faces/$clip/train" ]; then
        rm -rf ".gpu_faces/$clip" ".gpu_faces/${clip}_all"
        nice -n 19 "$python" -m faceswap extract "$videos/$clip.mp4" -o ".gpu_faces/${clip}_all" --size "$size" -q
        "$python" -c "from faceswap.train.split import write_split as w
w('.gpu_faces/${clip}_all', '.gpu_faces/$clip/train', '.gpu_faces/$clip/validation', 10, 5)"
        rm -rf ".gpu_faces/${clip}_all"  # the split's hard links keep the files
    fi
done
if [ ! -f .gpu_faces/swap_inputs.npz ]; then
    scratch=$(mktemp -d)
    "$python" scripts/bench_quality.py --record-inputs .gpu_faces/swap_inputs.npz --work "${GPU_CHECK_WORK:-$scratch}" \
        --out "$scratch/out"
    rm -rf "$scratch"
fi
tracked=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
extra=$(du -sb .whl .gpu_faces | awk '{s += $1} END {print s}')
echo "wheels: $(du -sh .whl | cut -f1); faces: $(ls .gpu_faces/d18/train | wc -l) + $(ls .gpu_faces/d19/train | wc -l) files," \
     "$(du -sh .gpu_faces | cut -f1); travelling in all: $(( (tracked + extra) / 1048576 )) MiB of 64"
