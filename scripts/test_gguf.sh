#!/usr/bin/env bash
# The GGUF half of the export tests, kept out of `make test` because it compiles llama.cpp (measured on this
# project's 2-core machine with one core busy: 565 s; ~9 CPU-minutes). Usage: make test-gguf (after make test).
#   1. downloads the llama-cpp-python 0.3.36 sdist (it vendors llama.cpp) into ~/.cache/autothink-lite,
#   2. unpacks llama.cpp's converters there (where `autothink export --gguf` looks by default),
#   3. builds llama-cpp-python into .venv with the export extra (sentencepiece),
#   4. runs tests/test_export.py, whose GGUF tests then run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${AUTOTHINK_CACHE:-$HOME/.cache/autothink-lite}"
SDIST="$CACHE/llama_cpp_python-0.3.36.tar.gz"
mkdir -p "$CACHE"
[[ -f $SDIST ]] || .venv/bin/pip download -q --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$CACHE"
[[ -f $CACHE/llama.cpp/convert_hf_to_gguf.py ]] || \
  tar -xzf "$SDIST" -C "$CACHE" --strip-components=2 llama_cpp_python-0.3.36/vendor/llama.cpp
.venv/bin/python -c 'import llama_cpp' 2>/dev/null || .venv/bin/pip install -q -e ".[export]" "$SDIST"
.venv/bin/python -m pytest -q tests/test_export.py
