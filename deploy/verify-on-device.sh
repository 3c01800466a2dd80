#!/bin/sh
# Run on a Jetson (JetPack 5.1+ / 6 / 7) by its owner: build the detector and generator TensorRT engines
# (INT8 from the QDQ model, and FP16), then compare each engine with ONNX Runtime running the ONNX model it
# was built from, on real photos, with Polygraphy (export/quantization/engine_check.py), and print one table. Nothing here
# can run on a machine without an NVIDIA GPU and TensorRT.
#
#   deploy/verify-on-device.sh [--models DIR] [--images DIR] [--out DIR] [--limit N] [--opt-size WxH]
#
#   --models   folder with detector.onnx, detector.fp16.onnx, detector.int8-trt.onnx (+ generator ones),
#              as written by `python -m export all --out DIR` on the host       (default: models)
#   --images   folder of real photos with faces, e.g. ../shared/data/wider-train (default: that folder)
#   --out      where engines and device-report.json go                          (default: out/device-check)
#   --limit    photos to compare on                                             (default: 20)
#   --opt-size the camera frame size the detector engine is tuned for            (default: 1280x720)
#
# Needs: TensorRT (JetPack), cuda-python (requirements-jetson.txt), Polygraphy (pip install polygraphy).
# Exit status: 0 every engine passed, 1 an engine failed its check, 2 setup problem (no TensorRT, no models).
set -eu

cd "$(dirname "$0")/.."
PYTHON=${EDGEANON_PYTHON:-}
if [ -z "$PYTHON" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
MODELS=models
IMAGES=${EDGEANON_DATA:-../shared/data}/wider-train
OUT=out/device-check
LIMIT=20
OPT_SIZE=1280x720

die() { printf 'verify-on-device: %s\n' "$*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --models) MODELS=${2:?}; shift 2 ;;
        --images) IMAGES=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        --limit) LIMIT=${2:?}; shift 2 ;;
        --opt-size) OPT_SIZE=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

TRT=$("$PYTHON" -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null) \
    || die "TensorRT does not import in $PYTHON: run this on the Jetson (JetPack ships TensorRT)"
"$PYTHON" -c 'import edgeanon.inference.trt as t; raise SystemExit(0 if t.tensorrt_available() else 1)' \
    || die "TensorRT imports but cuda-python or the GPU is missing: pip install -r requirements-jetson.txt"
"$PYTHON" -c 'import polygraphy' 2>/dev/null \
    || die "Polygraphy does not import in $PYTHON: pip install polygraphy (it compares the engines)"
[ -f "$MODELS/detector.onnx" ] || die "$MODELS/detector.onnx not found (copy the host's 'python -m export all' output)"
[ -d "$IMAGES" ] || die "$IMAGES: no such image folder (pass --images DIR)"

printf 'device: %s\n' "$(tr -d '\0' < /proc/device-tree/model 2>/dev/null || uname -m)"
printf 'L4T: %s\n' "$(head -n 1 /etc/nv_tegra_release 2>/dev/null || echo none)"
printf 'TensorRT: %s\n\n' "$TRT"

MODEL_LIST=detector
if [ -f "$MODELS/generator.onnx" ]; then MODEL_LIST=detector,generator; fi

ENGINE_DIRS=""
for precision in int8 fp16; do
    dir="$OUT/$precision"
    mkdir -p "$dir"
    printf '== building %s engines (%s) into %s\n' "$precision" "$MODEL_LIST" "$dir"
    start=$(date +%s)
    "$PYTHON" -m edgeanon engines --model "$MODEL_LIST" --precision "$precision" --models "$MODELS" \
        --out "$dir" --opt-size "$OPT_SIZE" >"$dir/build.json" \
        || die "building the $precision engines failed (log above; $dir/build.json)"
    printf '   built in %s s\n' "$(( $(date +%s) - start ))"
    ENGINE_DIRS="$ENGINE_DIRS $dir"
done

printf '\n== Polygraphy: each engine vs ONNX Runtime on its source model, %s photos from %s\n' "$LIMIT" "$IMAGES"
status=0
# shellcheck disable=SC2086 # ENGINE_DIRS is a space-separated list of our own folder names
"$PYTHON" -m export.quantization.engine_check --models "$MODELS" --engines $ENGINE_DIRS --images "$IMAGES" \
    --limit "$LIMIT" --report "$OUT/device-report.json" || status=$?
printf '\nreport: %s/device-report.json\n' "$OUT"
exit "$status"
