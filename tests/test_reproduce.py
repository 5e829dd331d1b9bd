"""The miniature reproduction: aggregation over seeds, the target checks, and the real script end to end."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autothink_lite.reproduce import (
    FINAL,
    LENGTH_CAP_ROW,
    ROWS,
    ReproduceError,
    aggregate,
    check_targets,
    mean_sd,
    seed_results,
    shape_misses,
)

SCRIPT = Path(__file__).parents[1] / "experiments" / "reproduce_mini.py"


def summary(accuracy, tokens, think_rate, l1=None, l5=None, e_f1=0.0):
    levels = {str(level): {"accuracy": accuracy, "tokens": tokens, "think_rate": think_rate} for level in range(1, 6)}
    if l1 is not None:
        levels["1"]["think_rate"] = l1
    if l5 is not None:
        levels["5"]["think_rate"] = l5
    return {"samples": 10, "accuracy": accuracy, "tokens": tokens, "think_rate": think_rate, "e_f1": e_f1,
            "levels": levels}


def seed_rows(final_acc, final_tokens, l1, l5, final_f1, cap_f1):
    rows = {key: summary(0.9, 50, 0.6) for key in ROWS}
    rows["base standard"] = summary(0.98, 70, 1.0)
    rows["base no_think"] = summary(0.35, 10, 0.0)
    rows[FINAL] = summary(final_acc, final_tokens, 0.5, l1=l1, l5=l5, e_f1=final_f1)
    rows[LENGTH_CAP_ROW] = summary(0.95, 50, 1.0, e_f1=cap_f1)
    return rows


def test_mean_sd_uses_the_sample_deviation_and_skips_missing_values():
    stat = mean_sd([1.0, 2.0, 3.0, None])
    assert stat["mean"] == 2.0 and stat["sd"] == 1.0 and (stat["min"], stat["max"], stat["n"]) == (1.0, 3.0, 3)
    assert mean_sd([5.0])["sd"] == 0.0
    assert math.isnan(mean_sd([None])["mean"])


def test_targets_are_judged_on_the_seed_means_and_on_every_seed():
    per_seed = {0: seed_rows(0.99, 30, 0.1, 0.9, 35.0, 5.0), 1: seed_rows(0.97, 34, 0.15, 0.95, 31.0, 5.0)}
    agg = aggregate(per_seed)
    assert agg[FINAL]["accuracy"]["mean"] == pytest.approx(0.98)
    assert agg[FINAL]["levels"]["1"]["think_rate"]["mean"] == pytest.approx(0.125)
    targets = check_targets(agg, per_seed, wall_seconds=1800)
    # mean 98.0 >= 98.0; worst seed 97 - 98 = -1 >= -2; 32 <= 0.55 x 70; L1 <= 15, L5 >= 90, levels 2-4 at
    # 60% lie between them with no fall; E-F1 33 >= 30 and > 5; 30 min <= 60
    assert {t.name: t.met for t in targets} == {
        "accuracy, seed mean": True, "accuracy, every seed": True, "tokens": True,
        "think-rate by level, every seed": True, "E-F1": True, "E-F1 vs length-cap": True,
        "reproduction wall time": True}


def test_each_missed_target_is_reported_with_the_seed_that_misses_it():
    per_seed = {0: seed_rows(0.99, 30, 0.1, 0.9, 35.0, 5.0), 1: seed_rows(0.90, 60, 0.5, 0.6, 0.0, 40.0)}
    targets = {t.name: t for t in check_targets(aggregate(per_seed), per_seed, wall_seconds=4000)}
    assert [name for name, t in targets.items() if not t.met] == [
        "accuracy, seed mean", "accuracy, every seed", "tokens", "think-rate by level, every seed", "E-F1",
        "E-F1 vs length-cap", "reproduction wall time"]
    assert targets["accuracy, every seed"].value == "worst: seed 1 -8.0"
    assert targets["tokens"].value == "45.0 (64%)"
    assert targets["think-rate by level, every seed"].value == "seed 0: ok; seed 1: L1 50% > 15, L5 60% < 90"


def test_a_level_that_thinks_less_than_the_one_before_breaks_the_shape():
    levels = {str(lvl): {"think_rate": rate} for lvl, rate in zip(range(1, 6), (0.0, 0.3, 0.24, 0.9, 1.0))}
    assert shape_misses(levels) == ["L3 24% < L2 30% - 5"]
    levels["3"]["think_rate"] = 0.25  # exactly 5 points below: allowed
    assert shape_misses(levels) == []


def test_a_seed_with_missing_results_names_them_and_the_fix(tmp_path):
    with pytest.raises(ReproduceError, match=r"seed 0: no results for base standard.*rerun the command"):
        seed_results(tmp_path, 0)


def test_the_script_runs_both_methods_end_to_end_and_reaggregates(tmp_path):
    """The real script on a shrunken budget: one seed, both jobs at once, every row and both plots."""
    out = tmp_path / "repro"
    tiny = ["--set", "eval.limit=5", "--set", "grpo.prompts_per_step=2", "--set", "grpo.num_generations=2",
            "--set", "grpo.per_device_train_batch_size=4", "--set", "grpo.max_completion_length=96",
            "--set", "eval.max_new_tokens=96"]
    for stage in (1, 2, 3):
        tiny += ["--autothink-set", f"stages.{stage}.grpo.max_steps=1"]
    tiny += ["--baseline-set", "stages.1.grpo.max_steps=3"]  # the same budget: 3 steps in one stage
    command = [sys.executable, str(SCRIPT), "--seeds", "0", "--jobs", "2", "--out", str(out), *tiny]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| AutoThink stage 3 |" in done.stdout and "| length-cap baseline |" in done.stdout
    for name in ("results.md", "results.json", "think_rate_by_level.png", "accuracy_vs_tokens.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert set(results["per_seed"]["0"]) == set(ROWS)
    assert results["per_seed"]["0"][LENGTH_CAP_ROW]["think_rate"] == 1.0  # standard prompt: always thinks
    assert len(results["stage1_think_rates"]["0"]) == 1
    assert (out / "seed0" / "length-cap" / "stage1" / "final" / "stage.json").is_file()
    assert set(results["jobs"]) == {"autothink-seed0", "length-cap-seed0"}
    assert results["budgets"] == {"autothink": 12, "length-cap": 12}  # 3 steps x 2 prompts x 2 samples
    table = done.stdout.split("Jobs (wall seconds)")[0]

    again = subprocess.run([*command, "--report-only"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.startswith(table)  # the same numbers, recomputed from the kept per-sample rows
    assert "Jobs (wall seconds): autothink-seed0" in again.stdout  # and the timings of the run that made them
    assert "GRPO budget per seed: autothink 12 completions, length-cap 12 completions." in again.stdout
    for name in ("think_rate_by_level_per_seed.png", "accuracy_vs_tokens_per_seed.png"):
        assert (out / name).is_file(), name


def test_a_failed_job_names_its_log(tmp_path):
    out = tmp_path / "repro"
    command = [sys.executable, str(SCRIPT), "--seeds", "0", "--jobs", "2", "--out", str(out),
               "--set", f"model.name_or_path={tmp_path / 'no-such-model'}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "autothink-seed0 exited with" in done.stderr and "length-cap-seed0 exited with" in done.stderr
    assert str(out / "logs" / "length-cap-seed0.log") in done.stderr
    assert "rerun the same command" in done.stderr
    assert "no-such-model" in (out / "logs" / "length-cap-seed0.log").read_text()


@pytest.mark.parametrize("bad, message", [
    (["--baseline-set", "stages.1.grpo.max_steps=7"], r"GRPO budgets differ .*--baseline-set stages\.1\.grpo\.max_steps"),
    (["--autothink-set", "stages.1.grpo.max_steps=notanumber"], r"max_steps"),
])
def test_bad_settings_are_refused_before_any_job_starts(tmp_path, bad, message):
    out = tmp_path / "repro"
    done = subprocess.run([sys.executable, str(SCRIPT), "--seeds", "0", "--out", str(out), *bad],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert re.search(message, done.stderr), done.stderr[-2000:]
    assert not (out / "logs").exists()


def test_the_grpo_budget_counts_rollout_batches_not_ppo_epochs():
    """With num_iterations = 2, trl reuses each rollout batch for two optimizer steps: 5 steps sample 3 batches."""
    from autothink_lite.config import load_recipe
    from autothink_lite.reproduce import rollout_budget

    recipe_path = Path(__file__).parents[1] / "recipes" / "mini.yaml"
    one = load_recipe(recipe_path, ["stages.1.grpo.max_steps=5", "stages.2.grpo.max_steps=4",
                                    "stages.3.grpo.max_steps=1", "grpo.prompts_per_step=2", "grpo.num_generations=4",
                                    "grpo.per_device_train_batch_size=8"])
    assert rollout_budget(one) == (5 + 4 + 1) * 2 * 4
    two = load_recipe(recipe_path, ["stages.1.grpo.max_steps=5", "stages.2.grpo.max_steps=4",
                                    "stages.3.grpo.max_steps=1", "grpo.prompts_per_step=2", "grpo.num_generations=4",
                                    "grpo.per_device_train_batch_size=8", "grpo.num_iterations=2"])
    assert rollout_budget(two) == (3 + 2 + 1) * 2 * 4
