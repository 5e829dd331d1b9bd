"""Training on the miniature: a real 4-bit base + LoRA through trl's GRPOTrainer, a few steps per stage."""

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from autothink_lite.config import RecipeError, load_recipe
from autothink_lite.modeling import resolve_model_path
from autothink_lite.results import read_rows
from autothink_lite.trainer import grpo_args
from autothink_lite.training import prepare_run_dir, train

TINY = {
    "name": "tiny",
    "model": {"name_or_path": "mini", "load_in_4bit": True, "dtype": "float32", "backend": "transformers"},
    "lora": {"r": 4, "alpha": 8},
    "data": {"train": "mini", "limit": 64},
    "grpo": {"max_steps": 2, "prompts_per_step": 2, "num_generations": 4, "per_device_train_batch_size": 4,
             "max_completion_length": 48, "learning_rate": 1e-3, "save_steps": 1, "report_to": ["none"]},
    "stages": {1: {"gamma": 0.5}, 2: {}, 3: {"length_alpha": 0.05, "length_beta": 0.05}},
    "eval": {"limit": 4, "max_new_tokens": 48, "batch_size": 8},
}


def write_recipe(tmp_path: Path, **changes) -> Path:
    data = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    data["output_dir"] = str(tmp_path / "run")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextlib.contextmanager
def console(buffer: io.StringIO, level: int = logging.INFO):
    """What `autothink` shows on the terminal (stdout, stderr and its log lines at `level`), into `buffer`."""
    handler = logging.StreamHandler(buffer)
    root, ours = logging.getLogger(), logging.getLogger("autothink_lite")
    levels = root.level, ours.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    ours.setLevel(level)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        ours.setLevel(levels[1])


@pytest.fixture(scope="module")
def chained_run(tmp_path_factory):
    """Stages 1 and 2 of the tiny recipe, trained once for the tests below; also what the console showed."""
    tmp = tmp_path_factory.mktemp("chain")
    recipe = load_recipe(write_recipe(tmp))
    with console(io.StringIO()) as shown:
        results = train(recipe, [1, 2])
    return recipe, results, shown.getvalue()


def test_a_4bit_lora_stage_trains_on_the_miniature_and_saves_its_adapter(chained_run):
    recipe, results, _ = chained_run
    adapter = recipe.run.final_adapter(1)
    assert adapter is not None and (adapter / "adapter_model.safetensors").is_file()
    info = json.loads((adapter / "stage.json").read_text())
    assert info["stage"] == 1 and info["steps"] == 2 and info["backend"] == "transformers"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 4
    base = json.loads((Path(resolve_model_path(info["base_model"])) / "config.json").read_text())
    assert "quantization_config" not in base, "the shipped base is full precision; 4-bit happens at load time"


def test_every_logged_step_carries_autothink_metrics(chained_run):
    recipe, _, _ = chained_run
    rows = read_rows(recipe.run.metrics_file(1))
    assert [r["step"] for r in rows if "autothink/think_rate" in r] == [1, 2]
    for row in rows:
        if "autothink/think_rate" in row:
            assert 0.0 <= row["autothink/think_rate"] <= 1.0
            assert 0.0 <= row["autothink/balance_weight"] <= 1.0
            assert "autothink/shaped_reward" in row and "autothink/tokens" in row
    by_level = {k: v for row in rows for k, v in row.items() if k.startswith("autothink/think_rate_level")}
    assert by_level and set(by_level) <= {f"autothink/think_rate_level{n}" for n in range(1, 6)}
    assert all(0.0 <= v <= 1.0 for v in by_level.values()), "the think-rate of each level in the batch"
    assert (recipe.run.stage_dir(1) / "metrics.csv").read_text().startswith("step,")


def test_the_console_shows_one_compact_line_per_step_above_a_progress_bar_not_trls_metrics(chained_run):
    _, _, shown = chained_run
    lines = [line for line in shown.replace("\r", "\n").splitlines() if " | think " in line]
    for stage in (1, 2):
        steps = [line for line in lines if f"stage {stage} step " in line]
        assert [line.split(f"stage {stage} step ")[1].split(" ")[0] for line in steps] == ["1/2", "2/2"], shown
        for line in steps:
            for field in ("think ", "acc ", "(think ", "no-think ", "tokens ", "reward ", "w ", " s/step"):
                assert field in line, line
    assert "(L" in lines[0], "the think-rate of each level in the batch"
    assert "stage 1: 100%" in shown and "2/2" in shown, "a progress bar per stage"
    assert "'learning_rate'" not in shown and "'autothink/think_rate'" not in shown, "trl's dict: metrics files only"


def test_verbose_logging_brings_back_trls_metrics_on_the_console(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, grpo={**TINY["grpo"], "max_steps": 1}, stages={1: {"gamma": 0.5}}))
    with console(io.StringIO(), level=logging.DEBUG) as shown:
        train(recipe, [1])
    assert "'learning_rate'" in shown.getvalue() and "stage 1 step 1/1 | think " in shown.getvalue()


def test_stage_two_continues_stage_ones_adapter(chained_run):
    recipe, _, _ = chained_run
    info = json.loads((recipe.run.final_adapter(2) / "stage.json").read_text())
    assert info["previous_adapter"] == "stage1/final"
    one = load_file(recipe.run.final_adapter(1) / "adapter_model.safetensors")
    two = load_file(recipe.run.final_adapter(2) / "adapter_model.safetensors")
    assert one.keys() == two.keys()
    assert any(not (one[k] == two[k]).all() for k in one), "stage 2 trained the adapter further"


def test_finished_stages_are_not_redone(chained_run):
    recipe, _, _ = chained_run
    before = (recipe.run.final_adapter(1) / "adapter_model.safetensors").stat().st_mtime_ns
    results = train(recipe, [1, 2])
    assert [r.skipped for r in results] == [True, True]
    assert (recipe.run.final_adapter(1) / "adapter_model.safetensors").stat().st_mtime_ns == before


def test_stage_three_alone_needs_stage_two_first(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path))
    with pytest.raises(RecipeError, match=r"stage 2's adapter.*--stages 2,3"):
        train(recipe, [3])


def test_a_different_recipe_in_the_same_folder_is_refused_unless_overwritten(chained_run, tmp_path):
    recipe, _, _ = chained_run
    changed = load_recipe(write_recipe(tmp_path), [f"output_dir={recipe.output_dir}", "grpo.learning_rate=5e-4"])
    with pytest.raises(RecipeError, match="different training settings.*--overwrite"):
        train(changed, [1])
    assert recipe.run.final_adapter(1) is not None, "nothing was deleted"


def test_a_run_recorded_with_the_grpo_keys_of_older_recipes_is_continued_not_refused(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path))
    prepare_run_dir(recipe, overwrite=False)
    recorded = yaml.safe_load(recipe.run.recipe_file.read_text())
    grpo = recorded["grpo"]
    grpo["kl_beta"], grpo["micro_batch_size"] = grpo.pop("beta"), grpo.pop("per_device_train_batch_size")
    recipe.run.recipe_file.write_text(yaml.safe_dump(recorded))
    recipe.run.final_dir(1).mkdir(parents=True)
    (recipe.run.final_dir(1) / "stage.json").write_text("{}")  # finished work a different recipe would protect
    prepare_run_dir(recipe, overwrite=False)
    assert "per_device_train_batch_size" in yaml.safe_load(recipe.run.recipe_file.read_text())["grpo"]


def test_a_stage_run_twice_with_one_seed_trains_the_same_adapter(tmp_path):
    """The new LoRA is drawn from the recipe's seed, not from whatever torch's generator held before."""
    adapters = []
    for name in ("a", "b"):
        torch.manual_seed(123 + len(adapters))  # whatever ran before in the process: different each time
        (tmp_path / name).mkdir()
        recipe = load_recipe(write_recipe(tmp_path / name, grpo={**TINY["grpo"], "max_steps": 1},
                                          stages={1: {"gamma": 0.5}}))
        with console(io.StringIO()):
            (result,) = train(recipe, [1])
        adapters.append(load_file(str(result.adapter / "adapter_model.safetensors")))
    assert adapters[0].keys() == adapters[1].keys()
    assert all(torch.equal(adapters[0][k], adapters[1][k]) for k in adapters[0])


def test_a_killed_stage_resumes_from_its_last_checkpoint(tmp_path):
    path = write_recipe(tmp_path, grpo={**TINY["grpo"], "max_steps": 12, "save_steps": 2},
                        stages={1: {"gamma": 0.5}})
    command = [sys.executable, "-m", "autothink_lite.cli", "train", str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run" / "stage1"
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while not (out / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None, "training ended before the first checkpoint"
        assert time.time() < deadline, "no checkpoint within 4 minutes"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "final").exists(), "killed mid-stage"
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
    info = json.loads((out / "final" / "stage.json").read_text())
    assert info["resumed_from"] is not None and info["resumed_from"].startswith("checkpoint-")
    assert info["steps"] == 12
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if "autothink/think_rate" in line]
    assert steps[-1] == 12 and 1 in steps, "metrics logged before the kill are kept"


def test_a_batch_that_cannot_be_split_over_the_processes_names_the_fix():
    recipe = load_recipe(Path(__file__).parents[1] / "recipes" / "mini.yaml")
    with pytest.raises(RecipeError, match="per_device_train_batch_size x processes divide 64"):
        grpo_args(recipe.stage_grpo(1), Path("/tmp/unused"), "float32", world_size=3)
