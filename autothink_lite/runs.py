"""Folders the toolkit writes: how runs and stages are named, and the check that a folder can be written.

A run folder (`recipe.output_dir`) holds `stage{n}/` per training stage and `eval/<run>/` per evaluated
model, where <run> is `base` (no adapter), `stage{n}` (a stage's final adapter) or a label of one's own.
"""

from __future__ import annotations

import re
from pathlib import Path

BASE_RUN = "base"  # the evaluation run of the base model without adapters
STAGE_DONE = "stage.json"  # written into a stage's final adapter last: marks the stage finished
_STAGE = re.compile(r"stage(\d+)")


def stage_name(stage: int) -> str:
    return f"stage{stage}"


def stage_number(name: str) -> int | None:
    """3 for 'stage3'; None for any other name."""
    match = _STAGE.fullmatch(name)
    return int(match.group(1)) if match else None


def run_order(run: str) -> tuple:
    """Sort key of evaluation runs: base, stage1, stage2, ..., then the others by name."""
    if run == BASE_RUN:
        return (0, 0, "")
    stage = stage_number(run)
    return (1, stage, "") if stage is not None else (2, 0, run)


def run_label(adapters: list[str]) -> str:
    """`base` without adapters; else the last adapter's name (a stage folder for runs/x/stage3/final)."""
    if not adapters:
        return BASE_RUN
    path = Path(adapters[-1])
    return path.parent.name if path.name == "final" else path.name


def check_writable(folder: Path, flag: str, error: type[Exception]) -> None:
    """Fail before any work when `folder` cannot be created or written to (read-only, or a file in the way).

    Raises `error` (the caller's own error type, e.g. RecipeError for a run folder) naming `flag` as the fix."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".autothink-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise error(f"cannot write to {folder} ({err.strerror or err}): pass another {flag}, or make "
                    "that folder writable") from None
