"""Three-stage AutoThink training: each stage is one trl GRPOTrainer run with that stage's reward shaping.

Written against trl 1.15.0. The shaping hooks into `GRPOTrainer._calculate_rewards`, the narrowest point
that sees the *gathered* rewards (all processes, in sampler order: the `num_generations` samples of a prompt
are contiguous) before trl turns them into group-normalised advantages. The reward function computes each
sample's flags (mode, correct, length, degenerate) on its process; the hook gathers them and applies
`rewards.stage_rewards` to the whole batch, so every process computes the same shaped rewards, and the
result is the same with 1 or N processes.

Run layout (`recipe.output_dir`):
  recipe.yaml                   the training part of the recipe the run was started with
  stage{n}/checkpoint-*/        trl checkpoints (resume points)
  stage{n}/final/               the stage's adapter + stage.json (written last: marks the stage done)
  stage{n}/metrics.jsonl, .csv  every logging step: trl's metrics and AutoThink's
"""

from __future__ import annotations

import csv
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
from accelerate import PartialState
from accelerate.utils import gather, gather_object
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from autothink_lite import trl_compat
from autothink_lite.config import GRPOSettings, Recipe, RecipeError
from autothink_lite.data import decode_answer, load_problems, prompt_rows
from autothink_lite.evaluation import check_writable, drop_partial_last_line, read_rows
from autothink_lite.grading import is_correct, is_degenerate
from autothink_lite.prompts import detect_mode
from autothink_lite.rewards import ShapedBatch, StageShaping, naive_reward, stage_rewards

logger = logging.getLogger(__name__)

STAGE_DONE = "stage.json"
TRAINING_SECTIONS = ("model", "lora", "data", "grpo", "stages")


class AutoThinkReward:
    """trl reward function: grades this process's completions and keeps their flags for the trainer's hook.

    Returns the naive reward; the stage's batch-level shaping happens in `AutoThinkGRPOTrainer`.
    """

    __name__ = "autothink"

    def __init__(self) -> None:
        self.flags: dict[str, list] | None = None

    def __call__(self, prompts, completions, completion_ids, answer, uid, prompt_mode, level=None,
                 **kwargs) -> list[float]:
        think = [detect_mode(c, m) == "think" for c, m in zip(completions, prompt_mode)]
        correct = [is_correct(c, decode_answer(a), m) for c, a, m in zip(completions, answer, prompt_mode)]
        self.flags = {
            "think": think,
            "correct": correct,
            "length": [len(ids) for ids in completion_ids],
            "degenerate": [is_degenerate(c) for c in completions],
            "uid": list(uid),
            "level": [int(v) for v in level] if level is not None else [0] * len(think),
        }
        return [naive_reward(t, c) for t, c in zip(think, correct)]


class AutoThinkGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose rewards are shaped per AutoThink stage on the gathered rollout batch."""

    def __init__(self, *args: Any, shaping: StageShaping, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shaping = shaping
        self.autothink_reward = next(f for f in self.reward_funcs if isinstance(f, AutoThinkReward))
        self.last_shaped: dict[str, Any] | None = None  # the latest gathered batch, for tests and debugging

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        batch, shaped = shape_rollouts(self.autothink_reward.flags, self.shaping, group_size, rewards_per_func.device)
        column = self.reward_funcs.index(self.autothink_reward)
        rewards_per_func[:, column] = torch.tensor(shaped.rewards, dtype=rewards_per_func.dtype,
                                                   device=rewards_per_func.device)
        self.last_shaped = {**batch, "naive": shaped.naive, "rewards": shaped.rewards,
                            "balance_weight": shaped.balance_weight}
        for key, value in rollout_metrics(batch, shaped.naive, shaped.rewards, shaped.balance_weight).items():
            self._metrics[mode][f"autothink/{key}"].append(value)  # already global: every process has the batch
        return rewards_per_func


def shape_rollouts(local_flags: dict[str, list], shaping: StageShaping, group_size: int,
                   device: torch.device | str = "cpu") -> tuple[dict[str, list], ShapedBatch]:
    """Gather every process's flags (in process order, as trl gathers rewards) and shape the whole batch.

    Each run of `group_size` rows is one prompt's group, as in trl's `rewards.view(-1, num_generations)`.
    """
    batch = {name: _gather_list(values, torch.device(device)) for name, values in local_flags.items()}
    batch["groups"] = [i // group_size for i in range(len(batch["uid"]))]
    for start in range(0, len(batch["uid"]), group_size):
        if len(set(batch["uid"][start:start + group_size])) != 1:
            raise RuntimeError("rollout groups are not contiguous per prompt; the trl version changed its sampler")
    shaped = stage_rewards(shaping, batch["think"], batch["correct"], batch["length"], batch["groups"],
                           batch["degenerate"])
    return batch, shaped


def distributed_state() -> PartialState:
    """The process group, created the way trl's TrainingArguments will (a bare PartialState() on a CPU
    ignores torchrun and would pin every process to a world of one)."""
    return PartialState(cpu=not torch.cuda.is_available())


def _gather_list(values: list, device: torch.device) -> list:
    if values and isinstance(values[0], (bool, int, float)):
        dtype = torch.float64 if isinstance(values[0], float) else torch.long
        return [type(values[0])(v) for v in gather(torch.tensor(values, dtype=dtype, device=device)).tolist()]
    return gather_object(values)


def rollout_metrics(batch: dict[str, list], naive: list[float], shaped: list[float], w: float) -> dict[str, float]:
    """Per generation batch: think-rate, accuracy and mean tokens of each mode, balance weight, rewards."""
    n = len(batch["think"])
    out = {"think_rate": sum(batch["think"]) / n, "accuracy": sum(batch["correct"]) / n,
           "balance_weight": w, "naive_reward": sum(naive) / n, "shaped_reward": sum(shaped) / n,
           "tokens": sum(batch["length"]) / n}
    for name, wanted in (("think", True), ("no_think", False)):
        idx = [i for i, t in enumerate(batch["think"]) if t == wanted]
        if idx:  # a mode absent from the batch has no accuracy; leave it out rather than log a fake 0
            out[f"accuracy_{name}"] = sum(batch["correct"][i] for i in idx) / len(idx)
            out[f"tokens_{name}"] = sum(batch["length"][i] for i in idx) / len(idx)
    for level in sorted(set(batch.get("level", ())) - {0}):  # 0: the data has no levels
        idx = [i for i, v in enumerate(batch["level"]) if v == level]
        out[f"think_rate_level{level}"] = sum(batch["think"][i] for i in idx) / len(idx)
    return out


class MetricsFileCallback(TrainerCallback):
    """Every log line to `metrics.jsonl` and `metrics.csv` in the stage folder (main process only)."""

    def __init__(self, stage_dir: Path) -> None:
        self.jsonl = stage_dir / "metrics.jsonl"
        self.csv = stage_dir / "metrics.csv"
        drop_partial_last_line(self.jsonl)  # a kill mid-write on the run this one resumes

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
        with self.jsonl.open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows = read_rows(self.jsonl)
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with self.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        summary = {k.split("/")[-1]: v for k, v in row.items() if k.startswith("autothink/")}
        by_level = [f"L{k.removeprefix('think_rate_level')} {summary.pop(k):.0%}" for k in sorted(summary)
                    if k.startswith("think_rate_level")]
        if summary:
            logger.info("step %d: %s%s", state.global_step, ", ".join(f"{k} {v:.3g}" for k, v in summary.items()),
                        f", think_rate by level {' '.join(by_level)}" if by_level else "")


def grpo_args(settings: GRPOSettings, output_dir: Path, dtype: str, world_size: int) -> GRPOConfig:
    """trl's GRPOConfig from a stage's settings; one rollout batch per optimizer step."""
    completions = settings.prompts_per_step * settings.num_generations
    per_step = settings.micro_batch_size * world_size
    if completions % per_step:
        raise RecipeError(
            f"prompts_per_step x num_generations = {completions} completions per step cannot be split into "
            f"micro-batches of {settings.micro_batch_size} on {world_size} processes: make "
            f"micro_batch_size x processes divide {completions}"
        )
    cuda = torch.cuda.is_available()
    return GRPOConfig(
        output_dir=str(output_dir),
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler_type,
        warmup_steps=settings.warmup_steps,
        per_device_train_batch_size=settings.micro_batch_size,
        gradient_accumulation_steps=completions // per_step,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        top_p=settings.top_p,
        beta=settings.kl_beta,
        epsilon=settings.epsilon,
        epsilon_high=settings.epsilon_high,
        entropy_coef=settings.entropy_coef,
        loss_type=settings.loss_type,
        scale_rewards="group",
        num_iterations=settings.num_iterations,
        max_grad_norm=settings.max_grad_norm,
        mask_truncated_completions=settings.mask_truncated_completions,
        gradient_checkpointing=settings.gradient_checkpointing,
        use_vllm=settings.use_vllm,
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=settings.vllm_gpu_memory_utilization,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        report_to=[r for r in settings.report_to if r != "none"],
        seed=settings.seed,
        data_seed=settings.seed,
        use_cpu=not cuda,
        bf16=cuda and dtype == "bfloat16",
        fp16=cuda and dtype == "float16",
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
    )


# ------------------------------------------------------------------------------------------ stages


@dataclasses.dataclass
class StageResult:
    stage: int
    adapter: Path
    seconds: float
    skipped: bool


def stage_dir(recipe: Recipe, stage: int) -> Path:
    return Path(recipe.output_dir) / f"stage{stage}"


def final_adapter(recipe: Recipe, stage: int) -> Path | None:
    final = stage_dir(recipe, stage) / "final"
    return final if (final / STAGE_DONE).is_file() else None


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
    adapter = final_adapter(recipe, earlier[-1])
    if adapter is None:
        raise RecipeError(
            f"stage {stage} continues stage {earlier[-1]}'s adapter, which is not in {stage_dir(recipe, earlier[-1])} "
            f"yet: run --stages {earlier[-1]},{stage} (or all stages)"
        )
    return adapter


def prepare_run_dir(recipe: Recipe, overwrite: bool) -> None:
    """Record the recipe in the run folder; refuse to mix two different recipes' runs unless told to.

    A folder whose recorded recipe differs but which holds no work yet (a start that failed, e.g. on a
    misspelt model name) is simply taken over. `overwrite` deletes everything the earlier run produced:
    stages, evaluations and summaries."""
    state = distributed_state()
    run_dir = Path(recipe.output_dir)
    snapshot = run_dir / "recipe.yaml"
    current = {k: v for k, v in dataclasses.asdict(recipe).items() if k in TRAINING_SECTIONS}
    if state.is_main_process:
        check_writable(run_dir, "--output", RecipeError)
        if snapshot.is_file() and yaml.safe_load(snapshot.read_text()) != current:
            work = finished_work(run_dir)
            if not work:
                logger.info("%s holds no finished work of its earlier recipe; starting this one there", run_dir)
            elif not overwrite:
                raise RecipeError(
                    f"{run_dir} holds a run of different training settings ({snapshot}; its work includes "
                    f"{work[0]}); continuing would mix them: pass another --output, or --overwrite to delete that run"
                )
            else:
                logger.warning("--overwrite: deleting the earlier run in %s (stages, evaluations, summary)", run_dir)
                for old in [*run_dir.glob("stage*"), run_dir / "eval"]:
                    if old.is_dir():
                        shutil.rmtree(old)
                for old in RUN_SUMMARIES:
                    (run_dir / old).unlink(missing_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(yaml.safe_dump(current, sort_keys=False))
    state.wait_for_everyone()


RUN_SUMMARIES = ("summary.json", "summary.md")


def finished_work(run_dir: Path) -> list[str]:
    """What a run folder holds that took time to make: finished stages, checkpoints, evaluation samples."""
    work = [str(p.parent.relative_to(run_dir)) for p in sorted(run_dir.glob(f"stage*/final/{STAGE_DONE}"))]
    work += [str(p.relative_to(run_dir)) for p in sorted(run_dir.glob("stage*/checkpoint-*")) if p.is_dir()]
    work += [str(p.relative_to(run_dir)) for p in sorted(run_dir.glob("eval/**/*.jsonl")) if p.stat().st_size]
    return work


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

    `gpu_gb`: the card's memory (default: the recipe's `gpu_memory_gb`, else the GPU found)."""
    from transformers import AutoConfig

    from autothink_lite.fitcheck import check_fit, estimate_from_recipe
    from autothink_lite.modeling import ModelLoadError, resolve_model_path

    if gpu_gb is None:
        gpu_gb = recipe.gpu_memory_gb
    if gpu_gb is None and torch.cuda.is_available():
        gpu_gb = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / 2**30
    try:
        hf_config = AutoConfig.from_pretrained(resolve_model_path(recipe.model.name_or_path),
                                               revision=recipe.model.revision)
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
    from autothink_lite.modeling import attach_lora, load_base

    out = stage_dir(recipe, stage)
    done = final_adapter(recipe, stage)
    if done is not None:
        logger.info("stage %d already finished (%s); skipping it", stage, done)
        return StageResult(stage, done, 0.0, skipped=True)
    trl_compat.install()
    settings = recipe.stage_grpo(stage)
    state = distributed_state()
    if torch.cuda.is_available():  # before a long GPU run: say what it needs, stop early if it cannot fit
        logger.info("%s", check_stage_fits(recipe, stage))
    started = time.perf_counter()
    model, tokenizer, backend = load_base(recipe.model, for_training=True, lora=recipe.lora,
                                          max_seq_length=settings.max_completion_length + 512)
    model = attach_lora(model, recipe.lora, adapter=str(previous_adapter) if previous_adapter else None)
    records = load_problems(recipe.data.train, recipe.data.split, problem_field=recipe.data.problem_field,
                            answer_field=recipe.data.answer_field, limit=recipe.data.limit)
    from datasets import Dataset

    dataset = Dataset.from_list(prompt_rows(records, tokenizer, recipe.data.prompt_mode,
                                            system_prompt=recipe.data.system_prompt,
                                            instruction=recipe.data.instruction))
    args = grpo_args(settings, out, recipe.model.dtype, state.num_processes)
    shaping = recipe.stages[stage].shaping
    logger.info("stage %d: %d steps x %d prompts x %d samples, backend %s, shaping %s, from %s",
                stage, settings.max_steps, settings.prompts_per_step, settings.num_generations, backend,
                shaping, previous_adapter or "a new LoRA")
    trainer = AutoThinkGRPOTrainer(
        model=model, reward_funcs=[AutoThinkReward()], args=args, train_dataset=dataset,
        processing_class=tokenizer, callbacks=[MetricsFileCallback(out)], shaping=shaping,
    )
    resume = last_complete_checkpoint(out)
    if resume:
        logger.info("stage %d: resuming from %s", stage, resume)
    elif state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for stale in (out / "metrics.jsonl", out / "metrics.csv"):
            stale.unlink(missing_ok=True)  # left by a run killed before its first checkpoint
    trainer.train(resume_from_checkpoint=resume)
    final = out / "final"
    trainer.save_model(str(final))
    seconds = time.perf_counter() - started
    if state.is_main_process:
        tokenizer.save_pretrained(str(final))
        info = {"stage": stage, "recipe": recipe.name, "base_model": recipe.model.name_or_path,
                # relative to the run folder: stage.json travels with the adapter to the Hub
                "previous_adapter": str(previous_adapter.relative_to(recipe.output_dir)) if previous_adapter else None,
                "backend": backend,
                "shaping": dataclasses.asdict(shaping), "grpo": dataclasses.asdict(settings),
                "seconds_this_run": round(seconds, 1),
                "resumed_from": Path(resume).name if resume else None,
                "steps": trainer.state.global_step}
        (final / STAGE_DONE).write_text(json.dumps(info, indent=2))
    state.wait_for_everyone()
    logger.info("stage %d finished in %.0f s: adapter in %s", stage, seconds, final)
    return StageResult(stage, final, seconds, skipped=False)


def read_metrics(recipe: Recipe, stage: int) -> list[dict[str, float]]:
    return read_rows(stage_dir(recipe, stage) / "metrics.jsonl")


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
