"""The paper's comparison in miniature: AutoThink against the prompt baselines and a length-cap baseline.

`python experiments/reproduce_mini.py` (the command-line front end) runs, for each seed and from scratch:
  * `autothink` job: `pipeline.run` on recipes/mini.yaml: the base under the standard, no-think and ellipsis
    prompts, AutoThink stages 1-3, and every stage under the ellipsis prompt;
  * `length-cap` job: recipes/baselines/mini-length-cap.yaml (ThinkPrune-style, the same GRPO budget, the
    standard prompt) and its adapter under the standard prompt.
Jobs run as child processes (`--job`), several at once with the CPU cores split between them, and are
resumable like everything else: a rerun skips finished stages and finished evaluation samples.

Then `aggregate` averages every row over the seeds (mean and sample standard deviation), `check_targets`
holds the final stage against the issue's targets, and `write_results` writes results.md / results.json and
plots to the output folder: think-rate by level per stage and accuracy against tokens (seed means), and the
same per seed (`*_per_seed.png`), since seeds can end far apart.

Layout: OUT/seed{S}/autothink/ (a run folder of `autothink run`), OUT/seed{S}/length-cap/ (the baseline's run
folder, its evaluation in eval/length-cap/), OUT/logs/<job>.log, OUT/results.{md,json}, OUT/*.png.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from autothink_lite.config import MINIATURE, load_recipe
from autothink_lite.errors import AutoThinkError
from autothink_lite.evaluation import evaluate_model
from autothink_lite.pipeline import eval_settings, run
from autothink_lite.report import plot_accuracy_vs_tokens, plot_think_rate_by_level, read_training
from autothink_lite.results import (
    BASE_NO_THINK,
    BASE_STANDARD,
    ResultKey,
    add_efficiency_f1,
    format_level_table,
    summarize_dir,
)
from autothink_lite.runs import BASE_RUN, RunFolder
from autothink_lite.training import train

logger = logging.getLogger(__name__)

BENCHMARK = MINIATURE  # the miniature's held-out eval split
AUTOTHINK, LENGTH_CAP = "autothink", "length-cap"
STAGE2 = ResultKey("stage2", "auto")
FINAL = ResultKey("stage3", "auto")
LENGTH_CAP_ROW = ResultKey(LENGTH_CAP, "standard")
ROWS = {  # result key -> what it is, in table order
    BASE_STANDARD: "base, standard prompt (always thinks)",
    BASE_NO_THINK: "base, no-think prompt",
    ResultKey(BASE_RUN, "auto"): "base, ellipsis prompt",
    ResultKey("stage1", "auto"): "AutoThink stage 1",
    STAGE2: "AutoThink stage 2",
    FINAL: "AutoThink stage 3",
    LENGTH_CAP_ROW: "length-cap baseline",
}
STAT_KEYS = ("accuracy", "tokens", "think_rate", "e_f1")


class ReproduceError(AutoThinkError, RuntimeError):
    """A job failed or left no results; names the job and its log."""


@dataclass
class Job:
    method: str  # AUTOTHINK or LENGTH_CAP
    seed: int
    argv: list[str]
    log: Path
    seconds: float = 0.0
    returncode: int | None = None

    @property
    def name(self) -> str:
        return f"{self.method}-seed{self.seed}"


def rollout_budget(recipe: Any) -> int:
    """Completions sampled over all of a recipe's stages: the GRPO budget the two methods must share.

    With `num_iterations` (PPO epochs) above 1, trl samples a new rollout batch only every that many
    optimizer steps, so a stage samples ceil(max_steps / num_iterations) batches.
    """
    total = 0
    for stage in recipe.stages:
        grpo = recipe.stage_grpo(stage)
        total += math.ceil(grpo.max_steps / grpo.num_iterations) * grpo.prompts_per_step * grpo.num_generations
    return total


def check_budgets(recipes: dict[str, str], overrides: dict[str, list[str]]) -> dict[str, int]:
    """Both recipes load (a broken one fails here, before any job starts) and spend the same GRPO budget."""
    budgets = {method: rollout_budget(load_recipe(path, overrides.get(method, []))) for method, path in recipes.items()}
    if len(set(budgets.values())) > 1:
        raise ReproduceError(
            "the methods' GRPO budgets differ (" + ", ".join(f"{m}: {b} completions" for m, b in budgets.items())
            + "); the comparison needs the same budget: make the baseline's max_steps x prompts_per_step x "
            "num_generations add up to AutoThink's (e.g. --baseline-set stages.1.grpo.max_steps=N)")
    return budgets


def run_folder(out: Path, seed: int, method: str) -> RunFolder:
    return RunFolder(Path(out) / f"seed{seed}" / method)


# ------------------------------------------------------------------------------------------- one job


def run_job(method: str, recipe_path: str, out: Path, seed: int, overrides: list[str]) -> None:
    """One (method, seed): train from scratch (or resume) and evaluate; runs inside a child process."""
    folder = run_folder(out, seed, method)
    recipe = load_recipe(recipe_path, [*overrides, f"grpo.seed={seed}", f"output_dir={folder.path}"])
    if method == AUTOTHINK:
        run(recipe)
        return
    train(recipe)
    adapter = folder.final_adapter(max(recipe.stages))
    if adapter is None:
        raise ReproduceError(f"{folder.path}: the baseline's training left no final adapter")
    evaluate_model(recipe.model.name_or_path, [str(adapter)], replace(eval_settings(recipe), modes=["standard"]),
                   folder.eval_dir, label=LENGTH_CAP, load_in_4bit=recipe.model.load_in_4bit, dtype=recipe.model.dtype)


def plan_jobs(script: Path, out: Path, seeds: list[int], recipes: dict[str, str],
              overrides: dict[str, list[str]]) -> list[Job]:
    """One job per (method, seed); `recipes` and `overrides` are keyed by method. AutoThink jobs first: they
    are the longest, so the workers finish closest together (longest first)."""
    jobs = []
    for method in (AUTOTHINK, LENGTH_CAP):
        for seed in seeds:
            argv = [sys.executable, str(script), "--job", method, "--seed", str(seed), "--out", str(out),
                    "--recipe" if method == AUTOTHINK else "--baseline", recipes[method]]
            for item in overrides.get(method, []):
                argv += ["--set", item]
            jobs.append(Job(method, seed, argv, Path(out) / "logs" / f"{method}-seed{seed}.log"))
    return jobs


def run_jobs(jobs: list[Job], workers: int) -> None:
    """Run the jobs as child processes, `workers` at a time, each with an equal share of the CPU cores."""
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}

    def one(job: Job) -> Job:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        logger.info("%s: started (log %s)", job.name, job.log)
        with job.log.open("a") as log:
            job.returncode = subprocess.call(job.argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        job.seconds = time.monotonic() - started
        logger.info("%s: %s after %.0f s", job.name, "done" if job.returncode == 0 else "FAILED", job.seconds)
        return job

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, jobs))
    failed = [j for j in jobs if j.returncode != 0]
    if failed:
        raise ReproduceError("; ".join(f"{j.name} exited with {j.returncode}: see {j.log}" for j in failed)
                             + ". Fix the cause and rerun the same command: finished work is kept")


# ------------------------------------------------------------------------------------------ results


def seed_results(out: Path, seed: int) -> dict[str, dict[str, Any]]:
    """{row key: summary} of one seed: the AutoThink run's evaluations plus the baseline's, with E-F1 of
    every row against this seed's base standard / no-think runs."""
    summaries: dict[str, dict[str, Any]] = {}
    for method in (AUTOTHINK, LENGTH_CAP):
        eval_dir = run_folder(out, seed, method).eval_dir
        if eval_dir.is_dir():
            summaries.update(summarize_dir(eval_dir).get(BENCHMARK, {}))
    missing = [key for key in ROWS if key not in summaries]
    if missing:
        raise ReproduceError(f"seed {seed}: no results for {', '.join(missing)} under {Path(out) / f'seed{seed}'}; "
                             "rerun the command to finish the missing jobs")
    rows = {key: summaries[key] for key in ROWS}
    add_efficiency_f1(rows)
    return rows


def stage1_think_rates(out: Path, seed: int) -> list[float]:
    """Think-rate of every logged stage-1 training step (the 'both modes stay alive' target)."""
    rows = read_training(run_folder(out, seed, AUTOTHINK).path).get(1, [])
    return [row["autothink/think_rate"] for row in rows if "autothink/think_rate" in row]


def mean_sd(values: list[float]) -> dict[str, float]:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": math.nan, "sd": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def aggregate(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """{row key: {stat: mean_sd over seeds, "levels": {level: {stat: mean_sd}}}}."""
    out: dict[str, dict[str, Any]] = {}
    for key in ROWS:
        runs = [rows[key] for rows in per_seed.values()]
        entry: dict[str, Any] = {stat: mean_sd([r.get(stat) for r in runs]) for stat in STAT_KEYS}
        levels = sorted({lvl for r in runs for lvl in r.get("levels", {})}, key=int)
        entry["levels"] = {lvl: {stat: mean_sd([r["levels"][lvl][stat] for r in runs if lvl in r.get("levels", {})])
                                 for stat in ("accuracy", "tokens", "think_rate")} for lvl in levels}
        out[key] = entry
    return out


def mean_summaries(agg: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The seed means in `evaluation.summarize`'s shape, for the report's plotting functions."""
    out = {}
    for key, entry in agg.items():
        out[key] = {"samples": 1, **{stat: entry[stat]["mean"] for stat in STAT_KEYS},
                    "levels": {lvl: {stat: v["mean"] for stat, v in stats.items()}
                               for lvl, stats in entry["levels"].items()}}
    return out


@dataclass
class Target:
    name: str
    goal: str
    value: str
    met: bool


def _points(summary: dict[str, Any]) -> float:
    return 100 * summary["accuracy"]


def shape_misses(levels: dict[str, dict[str, Any]]) -> list[str]:
    """How one run's think-rate by level misses the target shape: level 1 <= 15%, level 5 >= 90%, and no
    level more than 5 points below the level before it. Empty when the shape holds."""
    rate = {int(lvl): 100 * stats["think_rate"] for lvl, stats in levels.items()}
    misses = []
    if rate.get(1, math.inf) > 15:
        misses.append(f"L1 {rate.get(1, math.nan):.0f}% > 15")
    if rate.get(5, -math.inf) < 90:
        misses.append(f"L5 {rate.get(5, math.nan):.0f}% < 90")
    ordered = sorted(rate)
    misses += [f"L{b} {rate[b]:.0f}% < L{a} {rate[a]:.0f}% - 5" for a, b in zip(ordered, ordered[1:])
               if rate[b] < rate[a] - 5]
    return misses


def check_targets(agg: dict[str, dict[str, Any]], per_seed: dict[int, dict[str, dict[str, Any]]],
                  wall_seconds: float | None = None) -> list[Target]:
    """Issue 11's targets: the final AutoThink stage against the same seed's base standard run (accuracy
    and tokens on the seed means, accuracy and the think-rate shape also in every seed), E-F1, and the
    reproduction's wall time."""
    final, std, cap = agg[FINAL], agg[BASE_STANDARD], agg[LENGTH_CAP_ROW]
    acc, std_acc = 100 * final["accuracy"]["mean"], 100 * std["accuracy"]["mean"]
    tokens, std_tokens = final["tokens"]["mean"], std["tokens"]["mean"]
    gaps = {seed: _points(rows[FINAL]) - _points(rows[BASE_STANDARD]) for seed, rows in per_seed.items()}
    worst = min(gaps, key=gaps.get)
    shapes = {seed: shape_misses(rows[FINAL]["levels"]) for seed, rows in per_seed.items()}
    shape_value = "; ".join(f"seed {seed}: " + (", ".join(m) if m else "ok") for seed, m in shapes.items())
    f1, cap_f1 = final["e_f1"]["mean"], cap["e_f1"]["mean"]
    targets = [
        Target("accuracy, seed mean", f">= base standard ({std_acc:.1f}%)", f"{acc:.1f}% ({acc - std_acc:+.1f})",
               acc >= std_acc),
        Target("accuracy, every seed", ">= its base standard - 2 points",
               f"worst: seed {worst} {gaps[worst]:+.1f}", gaps[worst] >= -2),
        Target("tokens", f"<= 55% of base standard (<= {0.55 * std_tokens:.1f})",
               f"{tokens:.1f} ({100 * tokens / std_tokens:.0f}%)", tokens <= 0.55 * std_tokens),
        Target("think-rate by level, every seed", "L1 <= 15%, L5 >= 90%, no level > 5 points below the last",
               shape_value, not any(shapes.values())),
        Target("E-F1", ">= 30", f"{f1:.1f}", f1 >= 30),
        Target("E-F1 vs length-cap", "AutoThink > length-cap", f"{f1:.1f} vs {cap_f1:.1f}", f1 > cap_f1),
    ]
    if wall_seconds is not None:
        targets.append(Target("reproduction wall time", "<= 60 min", f"{wall_seconds / 60:.1f} min",
                              wall_seconds <= 3600))
    return targets


def format_per_seed(per_seed: dict[int, dict[str, dict[str, Any]]]) -> str:
    """One line per seed: its final AutoThink stage and length-cap baseline against its base standard run."""
    lines = ["| seed | base standard acc % / tokens | stage 3 acc % (vs base) | stage 3 tokens (% of base) | "
             "stage 3 think % L1-L5 | stage 3 E-F1 | length-cap acc % / tokens / E-F1 |",
             "|---|---|---|---|---|---|---|"]
    for seed, rows in per_seed.items():
        std, final, cap = rows[BASE_STANDARD], rows[FINAL], rows[LENGTH_CAP_ROW]
        shape = "/".join(f"{100 * final['levels'][lvl]['think_rate']:.0f}"
                         for lvl in sorted(final["levels"], key=int))
        lines.append(f"| {seed} | {_points(std):.1f} / {std['tokens']:.1f} | {_points(final):.1f} "
                     f"({_points(final) - _points(std):+.1f}) | {final['tokens']:.1f} "
                     f"({100 * final['tokens'] / std['tokens']:.0f}%) | {shape} | {final['e_f1']:.1f} | "
                     f"{_points(cap):.1f} / {cap['tokens']:.1f} / {cap['e_f1']:.1f} |")
    return "\n".join(lines)


def _pm(stat: dict[str, float], scale: float = 1.0, digits: int = 1) -> str:
    if stat["n"] == 0:
        return "-"
    return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['sd']:.{digits}f}"


def format_results(agg: dict[str, dict[str, Any]], targets: list[Target], seeds: list[int],
                   per_seed: dict[int, dict[str, dict[str, Any]]] | None = None) -> str:
    lines = [f"Mean ± sample standard deviation over seeds {', '.join(map(str, seeds))}; "
             f"E-F1 against each seed's base standard / no-think runs.", "",
             "| model (prompt) | accuracy % | tokens | think-rate % | L1 think % | L5 think % | E-F1 |",
             "|---|---|---|---|---|---|---|"]
    for key, what in ROWS.items():
        entry = agg[key]
        levels = entry["levels"]
        l1 = _pm(levels["1"]["think_rate"], 100, 0) if "1" in levels else "-"
        l5 = _pm(levels["5"]["think_rate"], 100, 0) if "5" in levels else "-"
        lines.append(f"| {what} | {_pm(entry['accuracy'], 100)} | {_pm(entry['tokens'])} | "
                     f"{_pm(entry['think_rate'], 100, 0)} | {l1} | {l5} | {_pm(entry['e_f1'])} |")
    lines += ["", "Think-rate / accuracy by level (seed means):", "",
              format_level_table({what: s for what, s in zip(ROWS.values(), mean_summaries(agg).values())}),
              "", *(["Each seed:", "", format_per_seed(per_seed), ""] if per_seed else []),
              "Targets (final stage against the base's standard prompt):", "", "| target | goal | measured | met |", "|---|---|---|---|"]
    lines += [f"| {t.name} | {t.goal} | {t.value} | {'yes' if t.met else 'NO'} |" for t in targets]
    return "\n".join(lines)


def write_results(out: Path, seeds: list[int], overrides: dict[str, list[str]] | None = None,
                  jobs: list[Job] | None = None, wall_seconds: float | None = None,
                  budgets: dict[str, int] | None = None) -> str:
    """Aggregate the seeds' results; write results.md, results.json and the two plots; return the markdown."""
    out = Path(out)
    per_seed = {seed: seed_results(out, seed) for seed in seeds}
    stage1 = {seed: stage1_think_rates(out, seed) for seed in seeds}
    agg = aggregate(per_seed)
    previous = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    if wall_seconds is None:  # --report-only: keep the timings of the run that produced these results
        wall_seconds = previous.get("wall_seconds")
    targets = check_targets(agg, per_seed, wall_seconds)
    text = format_results(agg, targets, seeds, per_seed)
    means = mean_summaries(agg)
    title = f"miniature: AutoThink vs baselines, mean of {len(seeds)} seed(s)"
    plot_think_rate_by_level({k: v for k, v in means.items() if k != BASE_NO_THINK},
                             out / "think_rate_by_level.png", title)
    plot_accuracy_vs_tokens(means, out / "accuracy_vs_tokens.png", title)
    # Seeds can end far apart (the mean hides it): the last two stages and the baseline, one line per seed.
    plot_think_rate_by_level({key.with_source(f"seed{seed}"): per_seed[seed][key] for seed in seeds
                              for key in (STAGE2, FINAL)}, out / "think_rate_by_level_per_seed.png",
                             "miniature: AutoThink stages 2 and 3 of each seed")
    plot_accuracy_vs_tokens({key.with_source(f"seed{seed}"): per_seed[seed][key] for seed in seeds
                             for key in (BASE_STANDARD, FINAL, LENGTH_CAP_ROW)},
                            out / "accuracy_vs_tokens_per_seed.png",
                            "miniature: each seed's AutoThink stage 3 and length-cap baseline")
    job_seconds = {j.name: j.seconds for j in jobs} if jobs else previous.get("jobs", {})
    timing = ""
    if budgets:
        timing += "\n\nGRPO budget per seed: " + ", ".join(f"{m} {b} completions" for m, b in budgets.items()) + "."
    if job_seconds:
        timing += "\n\nJobs (wall seconds): " + ", ".join(f"{name} {sec:.0f}" for name, sec in job_seconds.items())
    if wall_seconds is not None:
        timing += f"\n\nWall time: {wall_seconds / 60:.1f} min on {os.cpu_count()} CPU core(s)."
    (out / "results.md").write_text(f"# AutoThink in miniature\n\n{text}{timing}\n")
    (out / "results.json").write_text(json.dumps({
        "seeds": seeds, "overrides": overrides or {}, "aggregate": agg, "per_seed": per_seed,
        "stage1_think_rates": stage1, "targets": [t.__dict__ for t in targets],
        "jobs": job_seconds, "wall_seconds": wall_seconds, "budgets": budgets,
    }, indent=2, default=str) + "\n")
    return text + timing
