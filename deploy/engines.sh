#!/bin/sh
# Build this device's TensorRT engines from the installed ONNX models, only when needed.
#
#   engines.sh stale   exit 0 when engines must be (re)built, 1 when they are fresh or cannot be built here
#   engines.sh build   build them (exec's `edgeanon engines`, so its sd_notify STATUS= reaches systemd)
#   engines.sh stamp   record what the engines were built for (after a successful build)
#
# Used by edgeanon-engines.service (ExecCondition=stale, ExecStart=build, ExecStartPost=stamp). "Fresh" means built for the
# same L4T release, the same TensorRT and the same ONNX files: a JetPack upgrade or new models trigger a
# rebuild on the next boot. Each engine's own manifest (edgeanon.inference.manifest) is the final word.
# The builder's command line lives only here: change cmd_build() to change how engines are built.
set -eu

PREFIX=${EDGEANON_PREFIX:-/opt/edgeanon}
PYTHON=${EDGEANON_PYTHON:-$PREFIX/.venv/bin/python}
MODELS=${EDGEANON_MODELS:-/var/lib/edgeanon/models}
ENGINES=${EDGEANON_ENGINES:-$MODELS}
TEGRA_RELEASE=${EDGEANON_TEGRA_RELEASE:-/etc/nv_tegra_release}
STAMP=$ENGINES/.built-for

say() { printf 'edgeanon-engines: %s\n' "$*" >&2; }

tensorrt_version() {
    "$PYTHON" -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null
}

# Everything an engine depends on, one item per line; compared with the stamp of the last good build.
fingerprint() {
    printf 'l4t: %s\n' "$(head -n 1 "$TEGRA_RELEASE" 2>/dev/null || echo none)"
    printf 'tensorrt: %s\n' "$1"
    for onnx in "$MODELS"/*.onnx; do
        [ -f "$onnx" ] || continue
        sha256sum "$onnx"
    done
}

have_models() {
    for onnx in "$MODELS"/*.onnx; do
        [ -f "$onnx" ] && return 0
    done
    return 1
}

cmd_stale() {
    if ! have_models; then
        say "no ONNX models in $MODELS: nothing to build"
        return 1
    fi
    if ! trt=$(tensorrt_version) || [ -z "$trt" ]; then
        say "TensorRT does not import in $PYTHON: no engines; the daemon runs ONNX Runtime"
        return 1
    fi
    if [ -f "$STAMP" ] && fingerprint "$trt" | cmp -s - "$STAMP"; then
        say "engines in $ENGINES are fresh (TensorRT $trt)"
        return 1
    fi
    say "engines must be built (TensorRT $trt, models or JetPack changed since the last build)"
    return 0
}

cmd_build() {
    # INT8 (from MODEL.int8-trt.onnx, present only when it passed its gates on the host) where it can, else FP16.
    # `edgeanon engines` (edgeanon/engines.py) needs TensorRT, never torch or onnx. It reports progress to
    # systemd (STATUS=, EXTEND_TIMEOUT_USEC=) through edgeanon.systemd.Notifier; exec keeps the service's
    # main PID, so NotifyAccess=main accepts those messages. Run from the installed app, as the daemons are.
    models=
    for name in detector generator; do
        [ -f "$MODELS/$name.onnx" ] && models="${models:+$models,}$name"
    done
    [ -n "$models" ] || { say "no detector.onnx or generator.onnx in $MODELS"; return 1; }
    mkdir -p "$ENGINES"
    cd "$PREFIX/app"
    exec "$PYTHON" -m edgeanon engines --model "$models" --precision auto --models "$MODELS" --out "$ENGINES"
}

cmd_stamp() {
    # Runs after a successful build (ExecStartPost=): remember what the engines were built for.
    trt=$(tensorrt_version) || { say "TensorRT does not import in $PYTHON"; return 1; }
    fingerprint "$trt" > "$STAMP.tmp"
    mv "$STAMP.tmp" "$STAMP"
    say "engines built in $ENGINES for TensorRT $trt"
}

case "${1:-}" in
    stale) cmd_stale ;;
    build) cmd_build ;;
    stamp) cmd_stamp ;;
    *) echo "usage: $0 stale|build|stamp" >&2; exit 2 ;;
esac
