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


class RunFolder:
    """A run folder as `autothink run` leaves it (`recipe.output_dir`):

      recipe.yaml                   the training part of the recipe the run was started with
      stage{n}/checkpoint-*/        trl checkpoints (resume points)
      stage{n}/final/               the stage's adapter + stage.json (written last: marks the stage done)
      stage{n}/metrics.jsonl, .csv  every logging step: trl's metrics and AutoThink's
      eval/<run>/<benchmark>/<mode>.jsonl   evaluation samples (`results`)
      summary.json, summary.md      the main job's summary
    """

    RECIPE = "recipe.yaml"
    SUMMARIES = ("summary.json", "summary.md")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def recipe_file(self) -> Path:
        return self.path / self.RECIPE

    @property
    def eval_dir(self) -> Path:
        return self.path / "eval"

    def summary_file(self, suffix: str) -> Path:
        return self.path / f"summary.{suffix}"

    def stage_dir(self, stage: int) -> Path:
        return self.path / stage_name(stage)

    def metrics_file(self, stage: int) -> Path:
        return self.stage_dir(stage) / "metrics.jsonl"

    def final_dir(self, stage: int) -> Path:
        return self.stage_dir(stage) / "final"

    def final_adapter(self, stage: int) -> Path | None:
        """The stage's adapter once the stage has finished, else None."""
        final = self.final_dir(stage)
        return final if (final / STAGE_DONE).is_file() else None

    def stages(self) -> list[int]:
        """The stages that have a folder here, in order."""
        found = (stage_number(p.name) for p in self.path.glob("stage*") if p.is_dir())
        return sorted(stage for stage in found if stage is not None)

    def finished_work(self) -> list[str]:
        """What the folder holds that took time to make: finished stages, checkpoints, evaluation samples."""
        work = [str(p.parent.relative_to(self.path)) for p in sorted(self.path.glob(f"stage*/final/{STAGE_DONE}"))]
        work += [str(p.relative_to(self.path)) for p in sorted(self.path.glob("stage*/checkpoint-*")) if p.is_dir()]
        work += [str(p.relative_to(self.path)) for p in sorted(self.eval_dir.glob("**/*.jsonl")) if p.stat().st_size]
        return work

    @classmethod
    def is_run(cls, folder: Path) -> bool:
        return (Path(folder) / "eval").is_dir() or (Path(folder) / cls.RECIPE).is_file()

    @classmethod
    def of_adapter(cls, adapter: Path) -> tuple[RunFolder, int] | None:
        """(run folder, stage) of an adapter saved as RUN_DIR/stage{n}/<name>; None for any other folder."""
        stage = stage_number(Path(adapter).parent.name)
        return (cls(Path(adapter).parent.parent), stage) if stage is not None else None
