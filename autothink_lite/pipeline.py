"""The main job, `autothink run RECIPE`: train the stages, evaluate the base and every stage, summarise.

Every step is resumable: finished stages and finished evaluation samples are kept and not redone (samples
only when the same adapter, benchmark and settings produced them; see `evaluation.provenance`).
Results land in `<output_dir>/eval/<run>/<benchmark>/<mode>.jsonl` (run: base, stage1, ...) and `<output_dir>/summary.{json,md}`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from autothink_lite.config import EvalSettings, Recipe
from autothink_lite.evaluation import evaluate_model
from autothink_lite.results import format_level_table, format_table, read_rows, summarize_dir
from autothink_lite.runs import stage_name
from autothink_lite.trainer import distributed_state
from autothink_lite.training import stage_summary, train

logger = logging.getLogger(__name__)

BASE_MODES = ("standard", "no_think", "auto")


def run(recipe: Recipe, stages: list[int] | None = None, *, overwrite: bool = False) -> dict[str, Any]:
    results = train(recipe, stages, overwrite=overwrite)
    if not distributed_state().is_main_process:
        return {}
    summary = evaluate_run(recipe, overwrite=overwrite)
    summary["training"] = {stage_name(r.stage): {"seconds": round(r.seconds, 1), "skipped": r.skipped,
                                                 **stage_summary(read_rows(recipe.run.metrics_file(r.stage)))}
                           for r in results}
    write_summary(recipe, summary)
    return summary


def evaluate_run(recipe: Recipe, *, overwrite: bool = False) -> dict[str, Any]:
    """Evaluate the base (standard, no-think, auto) and each finished stage (the recipe's eval modes).

    Results of another evaluation in eval/ (another adapter, other eval settings) are refused, or with
    `overwrite` replaced."""
    settings = eval_settings(recipe)
    runs: list[tuple[list[str], EvalSettings]] = [([], dataclasses.replace(settings, modes=list(BASE_MODES)))]
    for stage in recipe.stages:
        adapter = recipe.run.final_adapter(stage)
        if adapter is not None:
            runs.append(([str(adapter)], settings))
    for adapters, run_settings in runs:
        evaluate_model(recipe.model.name_or_path, adapters, run_settings, recipe.run.eval_dir,
                       load_in_4bit=recipe.model.load_in_4bit, dtype=recipe.model.dtype, overwrite=overwrite)
    return {"benchmarks": summarize_dir(recipe.run.eval_dir)}


def eval_settings(recipe: Recipe) -> EvalSettings:
    """The recipe's evaluation settings; sampling is seeded with the training seed, so a seed names a whole run."""
    return dataclasses.replace(recipe.eval, seed=recipe.grpo.seed)


def write_summary(recipe: Recipe, summary: dict[str, Any]) -> Path:
    recipe.run.summary_file("json").write_text(json.dumps(summary, indent=2))
    lines = [f"# {recipe.name}: AutoThink results", "", f"Recipe: `{recipe.source}`", ""]
    for benchmark, summaries in summary["benchmarks"].items():
        lines += [f"## {benchmark}", "", format_table(summaries), ""]
        levels = format_level_table(summaries)
        if levels:
            lines += ["Think-rate / accuracy by difficulty level:", "", levels, ""]
    if summary.get("training"):
        lines += ["## Training (means over logged steps)", "",
                  "| stage | seconds | think-rate % (min-max) | acc think % | acc no-think % | tokens | balance w |",
                  "|---|---|---|---|---|---|---|"]
        for stage, t in summary["training"].items():
            def pct(key):
                return f"{100 * t[key]:.0f}" if key in t else "-"
            lines.append(f"| {stage} | {t['seconds']}{' (done before)' if t['skipped'] else ''} | "
                         f"{pct('think_rate')} ({pct('think_rate_min')}-{pct('think_rate_max')}) | "
                         f"{pct('accuracy_think')} | {pct('accuracy_no_think')} | "
                         f"{t.get('tokens', float('nan')):.1f} | {t.get('balance_weight', 0):.2f} |")
    path = recipe.run.summary_file("md")
    path.write_text("\n".join(lines) + "\n")
    logger.info("summary written to %s", path)
    return path
