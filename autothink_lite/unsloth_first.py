"""unsloth before transformers, trl and peft: unsloth patches them as it is imported, and only then.

The command line imports unsloth itself once the recipe's backend is known. Library use (`from
autothink_lite.training import train`) gets the same order from `import_early()`, which `training` and
`trainer` call before they import transformers or trl: on a machine where backend `auto` means unsloth (it
is installed and a CUDA GPU is visible) it imports unsloth first, unless a backend was already decided
(`decided`, by `modeling.detect_backend`). When transformers, trl or peft came first (the caller's own
imports), nothing can repair the order; `require()` then refuses the unsloth backend with the fix, where
unsloth itself would only print a warning and run half-patched.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import torch

from autothink_lite.errors import AutoThinkError

PATCHED = ("transformers", "trl", "peft")  # what unsloth patches when it is imported before them

_decided: list[str] = []  # the backend modeling.detect_backend picked, once it has
_came_first: list[str] = []  # what was already imported when unsloth was wanted but not yet imported


class ImportOrderError(AutoThinkError, RuntimeError):
    """unsloth is to be used but transformers, trl or peft was imported before it."""


def installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def wanted_by_auto() -> bool:
    """What backend `auto` picks unsloth on: unsloth installed and a CUDA GPU visible."""
    return installed() and torch.cuda.is_available()


def decided(backend: str) -> None:
    """Record the backend a recipe resolved to, so that `import_early` follows it instead of guessing."""
    _decided[:] = [backend]


def imported_before_unsloth() -> list[str]:
    return [name for name in PATCHED if name in sys.modules] if "unsloth" not in sys.modules else []


def import_early() -> None:
    """Import unsloth now if it will be used and nothing it patches is imported yet."""
    if "unsloth" in sys.modules:
        return
    wanted = _decided == ["unsloth"] if _decided else wanted_by_auto()
    if not wanted:
        return
    first = imported_before_unsloth()
    if first:
        _came_first[:] = _came_first or first  # the first look says what the caller imported itself
        return
    importlib.import_module("unsloth")


def require() -> None:
    """Make sure unsloth came before transformers, trl and peft; import it if none of them is imported yet."""
    first = _came_first or imported_before_unsloth()
    if first:
        raise ImportOrderError(
            f"the unsloth backend needs unsloth imported before {', '.join(PATCHED)}, but {', '.join(first)} "
            "came first: in your script put `import unsloth` (or `import autothink_lite.training`) above every "
            "other import, or use the `autothink` command, or set model.backend: transformers"
        )
    if "unsloth" not in sys.modules:
        importlib.import_module("unsloth")
