# The README's two commands, each setting up .venv first (scripts/setup.sh: a no-op when nothing changed):
#   make run    the main job on the built-in miniature: autothink run recipes/mini.yaml
#   make test   the whole test suite (test extra + Debian's chromium for the browser test), then the tests
#               marked `vllm` in a second environment with vLLM's CPU build (.venv-vllm)
# Options: make run RECIPE=recipes/other.yaml ARGS="--stages 1"; make test PYTEST_ARGS="-k rewards";
# PYTHON=python3.11 to pick the interpreter that creates .venv.
PYTHON ?= python3
RECIPE ?= recipes/mini.yaml
ARGS ?=
PYTEST_ARGS ?=
VENV := .venv
export PYTHON

.PHONY: run test test-gguf setup setup-test setup-vllm clean help
.DEFAULT_GOAL := help

help:
	@echo "make run     set up .venv, then the main job: autothink run $(RECIPE)"
	@echo "make test    set up .venv with the test extra (and chromium), then the whole test suite"
	@echo "make setup / make setup-test   only the set-up;  make clean   remove .venv"

run: setup
	$(VENV)/bin/autothink run $(RECIPE) $(ARGS)

test: setup-test setup-vllm
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)
	.venv-vllm/bin/python -m pytest -q -m vllm $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: PYTEST_ARGS selected none

test-gguf: setup-test
	@bash scripts/test_gguf.sh

setup:
	@bash scripts/setup.sh run

setup-test:
	@bash scripts/setup.sh test

setup-vllm:
	@bash scripts/setup.sh vllm

clean:
	rm -rf $(VENV) .venv-vllm
