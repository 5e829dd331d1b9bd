"""The bad-input probe of issue 13, run over the command line: each test is what a user types, then what they see.

Results are never mixed up (every results file knows the model, adapter, benchmark file and settings that
produced it), nothing a user wrote is lost, and a bad input gets one line naming the problem and the fix,
with exit code 2 and no traceback. The commands run in this process (`cli.main`) on the shipped miniature,
with tiny budgets (2 problems, 16 tokens, 1-2 GRPO steps), so the whole section takes well under a minute.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from huggingface_hub import constants

from autothink_lite.adapters import ADAPTER_FILES
from autothink_lite.evaluation import weights_identity
from autothink_lite.results import read_rows
from conftest import Seen
from fake_runs import write_run_dir

TINY = {
    "name": "tiny",
    "model": {"name_or_path": "mini", "load_in_4bit": False, "dtype": "float32", "backend": "transformers"},
    "lora": {"r": 4, "alpha": 8},
    "data": {"train": "mini", "limit": 16},
    "grpo": {"max_steps": 1, "prompts_per_step": 2, "num_generations": 2, "per_device_train_batch_size": 4,
             "max_completion_length": 16, "learning_rate": 1e-3, "save_steps": 1, "report_to": ["none"]},
    "stages": {1: {"gamma": 0.5, "grpo": {"max_steps": 2}}, 2: {"grpo": {"max_steps": 1}}},
    "eval": {"limit": 2, "max_new_tokens": 16, "batch_size": 8, "modes": ["auto"]},
}
EVAL = ("eval", "--modes", "auto", "--limit", "2", "--max-new-tokens", "16")


def refused(seen: Seen, *fragments: str) -> None:
    """Exit code 2 and one error line naming the problem and the fix."""
    assert seen.code == 2, seen.lines[-5:]
    assert len(seen.errors) == 1, seen.errors
    for fragment in fragments:
        assert fragment in seen.errors[0], seen.errors[0]


def tiny_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "output_dir": str(tmp_path / "rr")}))
    return path


def random_adapter(folder: Path, seed: int) -> Path:
    """A LoRA adapter of the miniature with random (non-zero) weights, saved as a stage's final adapter."""
    import torch
    from peft import LoraConfig, get_peft_model

    from autothink_lite.modeling import load_for_inference

    model, _ = load_for_inference("mini", dtype="float32")
    torch.manual_seed(seed)
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def two_stage1_adapters(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adapters")
    return random_adapter(tmp / "k1" / "stage1" / "final", 1), random_adapter(tmp / "k2" / "stage1" / "final", 2)


def fingerprints(results: Path) -> set[str]:
    return {row.get("provenance") for row in read_rows(results)}


def recorded(results: Path) -> dict:
    return json.loads(results.with_name(results.stem + ".provenance.json").read_text())


# ------------------------------------------------------------------ 1. results never mixed up


def test_run_overwrite_with_another_learning_rate_reports_the_new_adapter_not_the_old_results(tmp_path, autothink):
    recipe = tiny_recipe(tmp_path)
    assert autothink("run", recipe, "--stages", "1").code == 0
    results = tmp_path / "rr" / "eval" / "stage1" / "mini" / "auto.jsonl"
    old = recorded(results)

    seen = autothink("run", recipe, "--stages", "1", "--set", "grpo.learning_rate=0.05")
    refused(seen, "different training settings", "--overwrite", "--output")

    seen = autothink("run", recipe, "--stages", "1", "--set", "grpo.learning_rate=0.05", "--overwrite")
    assert seen.code == 0 and seen.says("deleting the earlier run")
    assert not seen.says("already done"), "nothing of the earlier run's evaluation is reused"
    new_adapter = weights_identity(tmp_path / "rr" / "stage1" / "final", ADAPTER_FILES)["sha256"]
    now = recorded(results)
    assert now["adapters"][0]["sha256"] == new_adapter != old["adapters"][0]["sha256"]
    assert fingerprints(results) == {now["fingerprint"]} and len(read_rows(results)) == 2
    summary = json.loads((tmp_path / "rr" / "summary.json").read_text())
    assert summary["benchmarks"]["mini"]["stage1 auto"]["samples"] == 2


def test_eval_of_another_runs_stage1_into_the_same_folder_is_refused_then_overwritten(
        tmp_path, autothink, two_stage1_adapters):
    k1, k2 = two_stage1_adapters
    out = tmp_path / "ev"
    assert autothink(*EVAL, "--adapter", k1, "--output", out).code == 0
    results = out / "stage1" / "mini" / "auto.jsonl"
    before = results.read_text()

    seen = autothink(*EVAL, "--adapter", k2, "--output", out)
    refused(seen, str(results), "adapter weights", str(k1), str(k2), "--overwrite", "--output")
    assert results.read_text() == before, "nothing was deleted or appended"

    seen = autothink(*EVAL, "--adapter", k2, "--output", out, "--overwrite")
    assert seen.code == 0 and seen.says("--overwrite: deleting")
    assert recorded(results)["adapters"][0]["path"] == str(k2)
    assert fingerprints(results) == {recorded(results)["fingerprint"]}


def test_run_with_other_eval_settings_is_refused_then_overwrite_redoes_only_the_evaluation(tmp_path, autothink):
    recipe = tiny_recipe(tmp_path)
    assert autothink("run", recipe, "--stages", "1").code == 0
    adapter = tmp_path / "rr" / "stage1" / "final" / "adapter_model.safetensors"
    trained = adapter.stat().st_mtime_ns

    refused(autothink("run", recipe, "--stages", "1", "--set", "eval.max_new_tokens=20"),
            "max new tokens: 16 in the file, 20 now", "--overwrite")
    seen = autothink("run", recipe, "--stages", "1", "--set", "eval.max_new_tokens=20", "--overwrite")
    assert seen.code == 0 and seen.says("stage 1 already finished")
    assert adapter.stat().st_mtime_ns == trained, "the training settings did not change: the stage is kept"
    assert recorded(tmp_path / "rr" / "eval" / "stage1" / "mini" / "auto.jsonl")["max_new_tokens"] == 20


def test_the_same_adapter_moved_to_another_folder_resumes_its_results(tmp_path, autothink, two_stage1_adapters):
    k1, _ = two_stage1_adapters
    out = tmp_path / "ev"
    assert autothink(*EVAL, "--adapter", k1, "--output", out).code == 0
    moved = shutil.copytree(k1, tmp_path / "elsewhere" / "stage1" / "final")
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "/another/checkout/miniature/default"  # where it was saved from
    (moved / "adapter_config.json").write_text(json.dumps(config))
    seen = autothink("eval", "--modes", "auto", "--limit", "3", "--max-new-tokens", "16", "--adapter", moved,
                     "--output", out)
    assert seen.code == 0 and seen.says("2 samples already done, 1 problems to go")


def test_eval_with_another_max_new_tokens_into_the_same_folder_is_refused(tmp_path, autothink):
    out = tmp_path / "ev"
    assert autothink(*EVAL, "--output", out).code == 0
    refused(autothink("eval", "--modes", "auto", "--limit", "2", "--max-new-tokens", "20", "--output", out),
            "max new tokens: 16 in the file, 20 now", "--overwrite")
    refused(autothink(*EVAL, "--temperature", "0.9", "--output", out), "temperature: 0.6 in the file, 0.9 now")


def test_eval_on_a_cpu_resumes_results_of_another_dtype_flag_since_both_compute_in_float32(tmp_path, autothink):
    import torch

    if torch.cuda.is_available():
        pytest.skip("on a GPU the two dtypes compute differently")
    out = tmp_path / "ev"
    assert autothink(*EVAL, "--dtype", "float32", "--output", out).code == 0
    seen = autothink("eval", "--modes", "auto", "--limit", "3", "--max-new-tokens", "16", "--output", out)
    assert seen.code == 0 and seen.says("2 samples already done, 1 problems to go"), "the default dtype: bfloat16"


def test_two_benchmark_files_with_the_same_name_do_not_share_results(tmp_path, autothink):
    for folder, answer in (("a", "2"), ("b", "3")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "test.jsonl").write_text(json.dumps({"problem": "What is 1 + 1?", "answer": answer}) + "\n")
    out = tmp_path / "ev"
    assert autothink(*EVAL, "--benchmarks", tmp_path / "a" / "test.jsonl", "--output", out).code == 0
    refused(autothink(*EVAL, "--benchmarks", tmp_path / "b" / "test.jsonl", "--output", out),
            "benchmark problems", "--overwrite")


def test_a_resumed_eval_with_more_problems_reuses_the_samples_of_the_same_evaluation(tmp_path, autothink):
    out = tmp_path / "ev"
    assert autothink(*EVAL, "--output", out).code == 0
    seen = autothink("eval", "--modes", "auto", "--limit", "3", "--max-new-tokens", "16", "--output", out)
    assert seen.code == 0 and seen.says("2 samples already done, 1 problems to go")
    assert len(read_rows(out / "base" / "mini" / "auto.jsonl")) == 3


def test_results_written_before_provenance_existed_are_not_reused(tmp_path, autothink):
    out = tmp_path / "ev"
    assert autothink(*EVAL, "--output", out).code == 0
    results = out / "base" / "mini" / "auto.jsonl"
    rows = [{k: v for k, v in row.items() if k != "provenance"} for row in read_rows(results)]
    results.write_text("".join(json.dumps(row) + "\n" for row in rows))
    results.with_name("auto.provenance.json").unlink()
    refused(autothink(*EVAL, "--output", out), "written before results recorded what produced them", "--overwrite")


# ------------------------------------------------------------------ 2. --set grpo.X wins over the stages


def test_set_grpo_max_steps_trains_every_stage_that_many_steps(tmp_path, autothink):
    recipe = tiny_recipe(tmp_path)
    seen = autothink("train", recipe, "--stages", "1", "--set", "grpo.max_steps=3")
    assert seen.code == 0 and seen.says("--set grpo.max_steps=3 replaces stages.1.grpo.max_steps=2 of the recipe")
    assert json.loads((tmp_path / "rr" / "stage1" / "final" / "stage.json").read_text())["steps"] == 3


def test_the_readmes_learning_rate_override_reaches_stage_three_and_a_stage_override_still_wins():
    from autothink_lite.config import load_recipe

    recipe = load_recipe(Path(__file__).parents[1] / "recipes" / "mini.yaml",
                         ["grpo.learning_rate=1e-5", "grpo.max_steps=2", "stages.3.grpo.max_steps=7"])
    assert [recipe.stage_grpo(s).learning_rate for s in (1, 2, 3)] == [1e-5, 1e-5, 1e-5]
    assert [recipe.stage_grpo(s).max_steps for s in (1, 2, 3)] == [2, 2, 7]


def test_an_invalid_shared_override_is_refused_even_where_every_stage_sets_its_own(autothink):
    mini = Path(__file__).parents[1] / "recipes" / "mini.yaml"
    refused(autothink("train", mini, "--set", "grpo.max_steps=-3"), "grpo.max_steps=-3: must be at least 1")


# ------------------------------------------------- 3. a half-written checkpoint and 5. a failed start


def test_a_failed_start_leaves_the_folder_reusable_and_resume_skips_a_half_written_checkpoint(tmp_path, autothink):
    recipe = tiny_recipe(tmp_path)
    refused(autothink("train", recipe, "--stages", "1", "--set", f"model.name_or_path={tmp_path / 'no-such-model'}"),
            "no such model folder")
    seen = autothink("train", recipe, "--stages", "1")
    assert seen.code == 0 and seen.says("holds no finished work of its earlier recipe"), "the corrected command runs"

    stage = tmp_path / "rr" / "stage1"
    shutil.rmtree(stage / "final")  # as if killed while saving checkpoint-2, before the stage finished
    (stage / "checkpoint-2" / "trainer_state.json").unlink()
    seen = autothink("train", recipe, "--stages", "1")
    assert seen.code == 0
    assert seen.says(f"{stage / 'checkpoint-2'} is incomplete") and seen.says(f"resuming from {stage / 'checkpoint-1'}")
    info = json.loads((stage / "final" / "stage.json").read_text())
    assert info["resumed_from"] == "checkpoint-1" and info["steps"] == 2


# ------------------------------------------------------------------ 4. card keeps a hand-written README


def test_card_keeps_a_hand_written_readme_unless_told_to_overwrite_it(tmp_path, autothink):
    adapter = write_run_dir(tmp_path / "run") / "stage3" / "final"
    readme = adapter / "README.md"
    readme.write_text("# My adapter\n\nNotes I wrote by hand.\n")
    refused(autothink("card", adapter), "not written by autothink-lite", "--overwrite")
    assert readme.read_text() == "# My adapter\n\nNotes I wrote by hand.\n"
    assert autothink("card", adapter, "--overwrite").code == 0
    assert "## Evaluation" in readme.read_text()
    assert autothink("card", adapter).code == 0, "its own card is rewritten without asking"


# ------------------------------------------------------------------ 6-8. one line, exit 2, the fix


@pytest.mark.parametrize("flags, message", [
    (("--samples", "0"), "--samples 0: must be at least 1"),
    (("--samples", "-2"), "--samples -2: must be at least 1"),
    (("--max-new-tokens", "0"), "--max-new-tokens 0: must be at least 1"),
    (("--batch-size", "0"), "--batch-size 0: must be at least 1"),
    (("--limit", "0"), "--limit 0: give at least 1 problem"),
    (("--limit", "-1"), "--limit -1: give at least 1 problem"),
    (("--temperature", "0"), "--temperature 0.0: sampling needs a temperature above 0"),
])
def test_eval_settings_that_evaluate_nothing_are_refused(tmp_path, autothink, flags, message):
    refused(autothink("eval", *flags, "--output", tmp_path / "ev"), message)
    assert not (tmp_path / "ev" / "summary.json").exists()


def test_report_on_the_parent_of_run_folders_names_them(tmp_path, autothink):
    write_run_dir(tmp_path / "runs" / "mini")
    (tmp_path / "runs" / "mini" / "eval").rename(tmp_path / "runs" / "mini" / "eval-later")  # training only
    write_run_dir(tmp_path / "runs" / "other")
    refused(autothink("report", tmp_path / "runs", "--out", tmp_path / "report"),
            "holds run folders (mini, other)", str(tmp_path / "runs" / "mini"))
    assert autothink("report", tmp_path / "runs" / "mini", "--out", tmp_path / "report").code == 0, \
        "a run folder with training metrics only still gets its report"


def test_a_bad_override_value_is_one_line_and_exit_2_in_a_real_shell(tmp_path):
    mini = Path(__file__).parents[1] / "recipes" / "mini.yaml"
    done = subprocess.run([sys.executable, "-m", "autothink_lite.cli", "train", str(mini), "--set",
                           "grpo.learning_rate=[oops", "--output", str(tmp_path / "rr")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "'[oops' is not a valid value" in lines[0] and "quote the whole --set argument" in lines[0]
    assert not (tmp_path / "rr").exists()


def test_a_math_benchmark_with_level_written_level_n_is_accepted(tmp_path, autothink):
    bench = tmp_path / "hendrycks.jsonl"
    bench.write_text(json.dumps({"problem": "What is 1 + 1?", "answer": "2", "level": "Level 1"}) + "\n"
                     + json.dumps({"problem": "What is 2 + 3?", "answer": "5", "level": "Level ?"}) + "\n")
    assert autothink(*EVAL, "--benchmarks", bench, "--output", tmp_path / "ev").code == 0
    assert [r.get("level") for r in read_rows(tmp_path / "ev" / "base" / "hendrycks" / "auto.jsonl")] == [1, None]


def test_a_later_problem_without_an_answer_names_it(tmp_path, autothink):
    bench = tmp_path / "mine.jsonl"
    bench.write_text(json.dumps({"problem": "What is 1 + 1?", "answer": "2"}) + "\n"
                     + json.dumps({"problem": "What is 2 + 3?"}) + "\n")
    refused(autothink(*EVAL, "--benchmarks", bench, "--output", tmp_path / "ev"), "problem 2 has no 'answer'")


def test_an_output_folder_that_cannot_be_written_is_named_before_any_work(tmp_path, autothink):
    (tmp_path / "a-file").write_text("")
    refused(autothink(*EVAL, "--output", tmp_path / "a-file" / "ev"), "cannot write to", "pass another --output")
    refused(autothink("train", tiny_recipe(tmp_path), "--output", tmp_path / "a-file" / "rr"), "cannot write to")
    run = write_run_dir(tmp_path / "run")
    refused(autothink("report", run, "--out", tmp_path / "a-file" / "report"), "cannot write to", "--out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_named_before_any_work(tmp_path, autothink):
    out = tmp_path / "ev"
    out.mkdir()
    out.chmod(0o500)
    try:
        refused(autothink(*EVAL, "--output", out), f"cannot write to {out} (Permission denied)")
    finally:
        out.chmod(0o700)


def test_an_adapter_from_the_hub_while_offline_says_so(tmp_path, autothink, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    refused(autothink(*EVAL, "--adapter", "alice/autothink-adapter", "--output", tmp_path / "ev"),
            "alice/autothink-adapter", "offline")


def test_a_model_folder_whose_config_has_no_model_type_says_what_to_add(tmp_path, autothink):
    from autothink_lite.modeling import resolve_model_path

    model = tmp_path / "model"
    shutil.copytree(resolve_model_path("mini"), model)
    config = json.loads((model / "config.json").read_text())
    del config["model_type"]
    (model / "config.json").write_text(json.dumps(config))
    refused(autothink(*EVAL, "--model", model, "--output", tmp_path / "ev"), "has no model_type", '"model_type"')


# ------------------------------------------------------------------ 9. logs and warnings


def test_a_math_verify_timeout_shows_a_short_answer_in_the_log(caplog):
    import autothink_lite.grading  # noqa: F401 - installs the filter

    with caplog.at_level(logging.WARNING):
        logging.getLogger("math_verify.parser").warning(f"Timeout during parsing: {'x' * 1000}")
    assert len(caplog.records[-1].getMessage()) < 150 and "1000 characters" in caplog.records[-1].getMessage()


def test_share_warns_that_insights_can_read_any_folder(caplog):
    from autothink_lite.app_ui import launch

    class Demo:
        def queue(self, **kwargs):
            pass

        def launch(self, **kwargs):
            pass

    with caplog.at_level(logging.WARNING):
        launch(Demo(), share=True)
    assert "Insights tab lets them read report data from any folder" in caplog.text
