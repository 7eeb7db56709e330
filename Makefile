# kubevod — the two commands a fresh machine needs are `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt testenv venv bench clean help cluster cluster-down images

help:
	@echo "make run    start kubevod on the embedded default with a demo video"
	@echo "make test   install every test dependency and run lint + the whole suite"
	@echo "make lint   ruff (format check + lint) and mypy"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make cluster       (root) a real one-node cluster with kubevod installed; make cluster-down"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

testenv:
	scripts/testenv

lint: venv
	scripts/testenv actionlint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$$(scripts/testenv --bin)/actionlint

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: venv testenv lint
	PATH="$$(scripts/testenv --bin):$$PATH" $(BIN)/pytest -q -ra --durations=15 $(PYTEST_ARGS)

run: venv
	scripts/testenv ffmpeg hlsjs
	PATH="$$(scripts/testenv --bin):$$PATH" $(BIN)/kubevod demo

bench: venv testenv
	PATH="$$(scripts/testenv --bin):$$PATH" $(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The three images (root Dockerfile) with docker, podman or buildah, named as
# kubevod/images.py says; IMAGE_PREFIX, IMAGE_TAG, PLATFORMS, PYTHON_IMAGE, PUSH=1.
images:
	scripts/images

# The real one-node test cluster for people (root only): images built and
# imported, the chart installed, .cluster/env written; forwarders keep running.
cluster: venv
	scripts/testenv cluster kubectl helm hlsjs minio mc ferretdb otelcol
	PATH="$$(scripts/testenv --bin):$$PATH" $(BIN)/python -m tests.cluster up

cluster-down: venv
	PATH="$$(scripts/testenv --bin):$$PATH" $(BIN)/python -m tests.cluster down
