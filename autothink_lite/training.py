"""Three-stage AutoThink training: each stage is one trl GRPOTrainer run (`trainer.AutoThinkGRPOTrainer`) with
that stage's reward shaping, continuing the previous stage's adapter; finished stages are skipped, a stage
killed mid-way resumes from its last checkpoint. Everything lands in the recipe's run folder (`runs.RunFolder`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from autothink_lite import unsloth_first

unsloth_first.import_early()  # before datasets, transformers and trl: unsloth patches them only if it comes first

from datasets import Dataset
from tqdm.contrib.logging import logging_redirect_tqdm
from transformers import AutoConfig, PrinterCallback, ProgressCallback, set_seed

from autothink_lite import trl_compat
from autothink_lite.config import RENAMED_GRPO_KEYS, Recipe, RecipeError
from autothink_lite.fitcheck import check_fit, estimate_from_recipe, known_config, vllm_max_model_len
from autothink_lite.generation import shut_down
from autothink_lite.modeling import ModelLoadError, attach_lora, load_base, resolve_model_path
from autothink_lite.problems import load_problems, prompt_rows
from autothink_lite.runs import STAGE_DONE, check_writable
from autothink_lite.trainer import (
    AutoThinkGRPOTrainer,
    AutoThinkReward,
    ConsoleCallback,
    MetricsFileCallback,
    distributed_state,
    grpo_args,
)

logger = logging.getLogger(__name__)

TRAINING_SECTIONS = ("model", "lora", "data", "grpo", "stages")


# ------------------------------------------------------------------------------------------ stages


@dataclasses.dataclass
class StageResult:
    stage: int
    adapter: Path
    seconds: float
    skipped: bool


def train(recipe: Recipe, stages: list[int] | None = None, *, overwrite: bool = False) -> list[StageResult]:
    """Run the recipe's stages in order; each continues the previous stage's adapter. Finished stages are
    skipped, a stage killed mid-way resumes from its last checkpoint."""
    stages = stages or list(recipe.stages)
    for stage in stages:
        if stage not in recipe.stages:
            raise RecipeError(f"{recipe.source}: stage {stage} is not in the recipe's stages {list(recipe.stages)}")
    prepare_run_dir(recipe, overwrite)
    results = []
    for stage in stages:
        previous = _previous_adapter(recipe, stage)
        results.append(train_stage(recipe, stage, previous))
    return results


def _previous_adapter(recipe: Recipe, stage: int) -> Path | None:
    earlier = [s for s in recipe.stages if s < stage]
    if not earlier:
        return None
    adapter = recipe.run.final_adapter(earlier[-1])
    if adapter is None:
        raise RecipeError(
            f"stage {stage} continues stage {earlier[-1]}'s adapter, which is not in {recipe.run.stage_dir(earlier[-1])} "
            f"yet: run --stages {earlier[-1]},{stage} (or all stages)"
        )
    return adapter


def prepare_run_dir(recipe: Recipe, overwrite: bool) -> None:
    """Record the recipe in the run folder; refuse to mix two different recipes' runs unless told to.

    A folder whose recorded recipe differs but which holds no work yet (a start that failed, e.g. on a
    misspelt model name) is simply taken over. `overwrite` deletes everything the earlier run produced:
    stages, evaluations and summaries."""
    state = distributed_state()
    run = recipe.run
    run_dir, snapshot = run.path, run.recipe_file
    current = {k: v for k, v in dataclasses.asdict(recipe).items() if k in TRAINING_SECTIONS}
    current["grpo"] = recipe.grpo.as_recipe()
    if state.is_main_process:
        check_writable(run_dir, "--output", RecipeError)
        if snapshot.is_file() and _in_trl_names(yaml.safe_load(snapshot.read_text())) != current:
            work = run.finished_work()
            if not work:
                logger.info("%s holds no finished work of its earlier recipe; starting this one there", run_dir)
            elif not overwrite:
                raise RecipeError(
                    f"{run_dir} holds a run of different training settings ({snapshot}; its work includes "
                    f"{work[0]}); continuing would mix them: pass another --output, or --overwrite to delete that run"
                )
            else:
                logger.warning("--overwrite: deleting the earlier run in %s (stages, evaluations, summary)", run_dir)
                for old in [*run_dir.glob("stage*"), run.eval_dir]:
                    if old.is_dir():
                        shutil.rmtree(old)
                for old in run.SUMMARIES:
                    (run_dir / old).unlink(missing_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(yaml.safe_dump(current, sort_keys=False))
    state.wait_for_everyone()


def _in_trl_names(recorded: Any) -> Any:
    """A recorded recipe with its grpo keys in trl's names: runs started before the grpo section took them
    recorded kl_beta and micro_batch_size, and are the same training as the recipe that now says beta and
    per_device_train_batch_size."""
    if not isinstance(recorded, dict):
        return recorded
    sections = [recorded.get("grpo")] + [body.get("grpo") for body in (recorded.get("stages") or {}).values()
                                         if isinstance(body, dict)]
    for section in sections:
        if isinstance(section, dict):
            for old, new in RENAMED_GRPO_KEYS.items():
                if old in section:
                    section[new] = section.pop(old)
    return recorded


def last_complete_checkpoint(out: Path) -> str | None:
    """The newest checkpoint-N that was saved in full (transformers writes trainer_state.json last).

    transformers' get_last_checkpoint takes the newest folder as it is, so a kill during a save would make
    every resume fail; an incomplete one is skipped, saying so (the trainer saves over it when it gets there)."""
    if not out.is_dir():
        return None
    checkpoints = sorted((p for p in out.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
                         key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for checkpoint in checkpoints:
        if (checkpoint / "trainer_state.json").is_file():
            return str(checkpoint)
        logger.warning("%s is incomplete (no trainer_state.json: killed while saving?); skipping it", checkpoint)
    if checkpoints:
        logger.warning("%s: no complete checkpoint; the stage starts again from its first step", out)
    return None


def check_stage_fits(recipe: Recipe, stage: int, gpu_gb: float | None = None) -> str:
    """The stage's estimated peak GPU memory as a table; raises FitError with a fix when it will not fit.

    `gpu_gb`: the card's memory (default: the recipe's `gpu_memory_gb`, else the GPU found). The shipped
    recipes' bases are known by their Hub ids (`fitcheck.KNOWN_CONFIGS`), so their check needs no network."""
    if gpu_gb is None:
        gpu_gb = recipe.gpu_memory_gb
    if gpu_gb is None and torch.cuda.is_available():
        gpu_gb = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / 2**30
    try:
        hf_config = known_config(recipe.model.name_or_path) or AutoConfig.from_pretrained(
            resolve_model_path(recipe.model.name_or_path), revision=recipe.model.revision)
    except OSError as err:
        raise ModelLoadError(
            f"cannot read the config of {recipe.model.name_or_path!r} to estimate memory ({err}); check the "
            "Hub id and your network, or point model.name_or_path at a local folder with its config.json"
        ) from None
    estimate = estimate_from_recipe(recipe, stage, hf_config, gpu_gb,
                                    num_processes=distributed_state().num_processes)
    table = f"stage {stage} estimated peak GPU memory:\n{estimate.table()}"
    if gpu_gb is not None:
        check_fit(estimate, gpu_gb)
    return table


def train_stage(recipe: Recipe, stage: int, previous_adapter: Path | None) -> StageResult:
    out = recipe.run.stage_dir(stage)
    done = recipe.run.final_adapter(stage)
    if done is not None:
        logger.info("stage %d already finished (%s); skipping it", stage, done)
        return StageResult(stage, done, 0.0, skipped=True)
    settings = recipe.stage_grpo(stage)
    trl_compat.install(use_vllm=settings.use_vllm)
    state = distributed_state()
    if torch.cuda.is_available():  # before a long GPU run: say what it needs, stop early if it cannot fit
        logger.info("%s", check_stage_fits(recipe, stage))
    started = time.perf_counter()
    # Before the model: a new LoRA's A matrices are drawn from torch's generator, which trl's Trainer seeds
    # only later, in its own __init__. Unseeded, two runs of one recipe started from different adapters and
    # parted from the first update on (on the miniature the logs of identical runs differed from step 3).
    set_seed(settings.seed)
    model, tokenizer, backend = load_base(recipe.model, for_training=True, lora=recipe.lora,
                                          max_seq_length=vllm_max_model_len(settings))  # unsloth's vLLM context
    model = attach_lora(model, recipe.lora, adapter=str(previous_adapter) if previous_adapter else None)
    records = load_problems(recipe.data.train, recipe.data.split, problem_field=recipe.data.problem_field,
                            answer_field=recipe.data.answer_field, limit=recipe.data.limit)
    dataset = Dataset.from_list(prompt_rows(records, tokenizer, recipe.data.prompt_mode,
                                            system_prompt=recipe.data.system_prompt,
                                            instruction=recipe.data.instruction))
    args = grpo_args(settings, out, recipe.model.dtype, state.num_processes)
    shaping = recipe.stages[stage].shaping
    logger.info("stage %d: %d steps x %d prompts x %d samples, backend %s, shaping %s, from %s",
                stage, settings.max_steps, settings.prompts_per_step, settings.num_generations, backend,
                shaping, previous_adapter or "a new LoRA")
    verbose = logger.isEnabledFor(logging.DEBUG)  # `autothink --verbose`
    trainer = AutoThinkGRPOTrainer(
        model=model, reward_funcs=[AutoThinkReward()], args=args, train_dataset=dataset, processing_class=tokenizer,
        callbacks=[MetricsFileCallback(out), ConsoleCallback(stage, bar=not verbose)], shaping=shaping,
    )
    if not verbose:  # trl's whole metrics dict each step: in metrics.jsonl and TensorBoard, not on the console
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
    resume = last_complete_checkpoint(out)
    if resume:
        logger.info("stage %d: resuming from %s", stage, resume)
    elif state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for stale in (out / "metrics.jsonl", out / "metrics.csv"):
            stale.unlink(missing_ok=True)  # left by a run killed before its first checkpoint
    with logging_redirect_tqdm():  # log lines print above the progress bar instead of through it
        trainer.train(resume_from_checkpoint=resume)
    final = recipe.run.final_dir(stage)
    trainer.save_model(str(final))
    seconds = time.perf_counter() - started
    if state.is_main_process:
        tokenizer.save_pretrained(str(final))
        info = {"stage": stage, "recipe": recipe.name, "base_model": recipe.model.name_or_path,
                # relative to the run folder: stage.json travels with the adapter to the Hub
                "previous_adapter": str(previous_adapter.relative_to(recipe.run.path)) if previous_adapter else None,
                "backend": backend,
                "shaping": dataclasses.asdict(shaping), "grpo": settings.as_recipe(),
                "seconds_this_run": round(seconds, 1),
                "resumed_from": Path(resume).name if resume else None,
                "steps": trainer.state.global_step}
        (final / STAGE_DONE).write_text(json.dumps(info, indent=2))
    state.wait_for_everyone()
    rollouts = getattr(trainer, "vllm_generation", None)  # trl's colocated vLLM engine, when the stage used one
    if getattr(rollouts, "llm", None) is not None:
        shut_down(rollouts.llm)  # the next stage's engine, or the main job's evaluation, needs its share back
        rollouts.llm = None
    logger.info("stage %d finished in %.0f s: adapter in %s", stage, seconds, final)
    return StageResult(stage, final, seconds, skipped=False)


def stage_summary(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each AutoThink metric over a stage's logged steps (NaN-free), plus its min/max think-rate."""
    keys = sorted({k for r in rows for k in r if k.startswith("autothink/")})
    out = {}
    for key in keys:
        values = [r[key] for r in rows if key in r and not math.isnan(r[key])]
        if values:
            out[key.split("/")[-1]] = sum(values) / len(values)
    rates = [r["autothink/think_rate"] for r in rows if "autothink/think_rate" in r]
    if rates:
        out["think_rate_min"], out["think_rate_max"] = min(rates), max(rates)
    return out
