"""The main job, `autothink run RECIPE`: train the stages, evaluate the base and every stage, summarise.

Every step is resumable: finished stages and finished evaluation samples are kept and not redone.
Results land in `<output_dir>/eval/<run>/<benchmark>/<mode>.jsonl` and `<output_dir>/summary.{json,md}`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from autothink_lite.config import Recipe
from autothink_lite.data import load_problems
from autothink_lite.evaluation import (
    EvalSettings,
    add_efficiency_f1,
    evaluate_mode,
    format_level_table,
    format_table,
    summarize,
)
from autothink_lite.training import distributed_state, final_adapter, read_metrics, stage_summary, train

logger = logging.getLogger(__name__)

BASE_MODES = ("standard", "no_think", "auto")


def run(recipe: Recipe, stages: list[int] | None = None, *, overwrite: bool = False) -> dict[str, Any]:
    results = train(recipe, stages, overwrite=overwrite)
    if not distributed_state().is_main_process:
        return {}
    summary = evaluate_run(recipe)
    summary["training"] = {f"stage{r.stage}": {"seconds": round(r.seconds, 1), "skipped": r.skipped,
                                               **stage_summary(read_metrics(recipe, r.stage))}
                           for r in results}
    write_summary(recipe, summary)
    return summary


def evaluate_run(recipe: Recipe) -> dict[str, Any]:
    """Evaluate the base (standard, no-think, auto) and each finished stage (the recipe's eval modes)."""
    from autothink_lite.modeling import load_for_inference

    settings = EvalSettings(samples=recipe.eval.samples, max_new_tokens=recipe.eval.max_new_tokens,
                            temperature=recipe.eval.temperature, top_p=recipe.eval.top_p,
                            batch_size=recipe.eval.batch_size, seed=recipe.grpo.seed)
    runs: list[tuple[str, list[str], tuple[str, ...]]] = [("base", [], BASE_MODES)]
    for stage in recipe.stages:
        adapter = final_adapter(recipe, stage)
        if adapter is not None:
            runs.append((f"stage{stage}", [str(adapter)], tuple(recipe.eval.modes)))
    out: dict[str, Any] = {"benchmarks": {}}
    for benchmark in recipe.eval.benchmarks:
        records = load_problems(benchmark, "eval" if benchmark == "mini" else "test", limit=recipe.eval.limit)
        summaries: dict[str, dict[str, Any]] = {}
        for name, adapters, modes in runs:
            model, tokenizer = load_for_inference(recipe.model.name_or_path, adapters,
                                                  load_in_4bit=recipe.model.load_in_4bit, dtype=recipe.model.dtype)
            for mode in modes:
                path = Path(recipe.output_dir) / "eval" / name / _slug(benchmark) / f"{mode}.jsonl"
                summaries[f"{name} {mode}"] = summarize(evaluate_mode(model, tokenizer, records, mode, settings, path))
        add_efficiency_f1(summaries, "base standard", "base no_think")
        out["benchmarks"][benchmark] = summaries
    return out


def _slug(benchmark: str) -> str:
    return Path(benchmark).stem if benchmark.endswith((".json", ".jsonl")) else benchmark.replace("/", "__")


def write_summary(recipe: Recipe, summary: dict[str, Any]) -> Path:
    out = Path(recipe.output_dir)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
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
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    logger.info("summary written to %s", path)
    return path
