"""AutoThink on trl's GRPOTrainer: the reward function, the batch-level shaping hook and the metrics files.

Written against trl 1.15.0. The shaping hooks into `GRPOTrainer._calculate_rewards`, the narrowest point
that sees the *gathered* rewards (all processes, in sampler order: the `num_generations` samples of a prompt
are contiguous) before trl turns them into group-normalised advantages. The reward function computes each
sample's flags (mode, correct, length, degenerate) on its process; the hook gathers them and applies
`rewards.stage_rewards` to the whole batch, so every process computes the same shaped rewards, and the
result is the same with 1 or N processes.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from autothink_lite import unsloth_first

unsloth_first.import_early()  # before accelerate, transformers and trl: unsloth patches them only if it comes first

from accelerate import PartialState
from accelerate.utils import gather, gather_object
from tqdm import tqdm
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from autothink_lite.config import GRPOSettings, RecipeError
from autothink_lite.fitcheck import vllm_max_model_len
from autothink_lite.grading import is_correct, is_degenerate
from autothink_lite.modeling import compute_dtype
from autothink_lite.problems import decode_answer
from autothink_lite.prompts import detect_mode
from autothink_lite.results import drop_partial_last_line, read_rows
from autothink_lite.rewards import ShapedBatch, StageShaping, naive_reward, stage_rewards

logger = logging.getLogger(__name__)


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


class ConsoleCallback(TrainerCallback):
    """What a person watches during a stage: one compact line per logging step above one progress bar with
    an ETA (main process only).

    transformers' own console callbacks print trl's whole per-step metrics dict; the stage removes them unless
    logging is at debug level (`autothink --verbose`), and those metrics still go to metrics.jsonl / .csv and
    TensorBoard. Lines go through `logging`; `training.train_stage` routes console logging through tqdm so
    they print above the bar."""

    def __init__(self, stage: int, *, bar: bool) -> None:
        self.stage = stage
        self.show_bar = bar
        self.bar: tqdm | None = None
        self.last: tuple[float, int] | None = None  # (time, step) of the previous log line

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.show_bar:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=f"stage {self.stage}",
                            unit="step", dynamic_ncols=True)
        self.last = (time.perf_counter(), state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or not any(k.startswith("autothink/") for k in logs):
            return
        now = time.perf_counter()
        then, step = self.last or (now, state.global_step)
        per_step = (now - then) / (state.global_step - step) if state.global_step > step else None
        self.last = (now, state.global_step)
        logger.info("%s", console_line(self.stage, state.global_step, state.max_steps, logs, per_step))

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def console_line(stage: int, step: int, max_steps: int, logs: dict[str, Any], seconds_per_step: float | None) -> str:
    """'stage 1 step 3/20 | think 50% (L1 20% L2 40%) | acc 75% (think 90%, no-think 60%) | tokens 123 |
    reward 0.45 | w 0.20 | 12.3 s/step': AutoThink's metrics of one logging step; a missing one is left out."""
    def get(name: str) -> float | None:
        value = logs.get(f"autothink/{name}")
        return float(value) if isinstance(value, (int, float)) and not math.isnan(value) else None

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    levels = sorted((int(k.removeprefix("autothink/think_rate_level")), v) for k, v in logs.items()
                    if k.startswith("autothink/think_rate_level") and isinstance(v, (int, float)))
    parts = [f"stage {stage} step {step}/{max_steps}",
             f"think {pct(get('think_rate'))}" + (f" ({' '.join(f'L{lvl} {pct(v)}' for lvl, v in levels)})"
                                                   if levels else ""),
             f"acc {pct(get('accuracy'))} (think {pct(get('accuracy_think'))}, no-think {pct(get('accuracy_no_think'))})"]
    if get("tokens") is not None:
        parts.append(f"tokens {get('tokens'):.0f}")
    if get("shaped_reward") is not None:
        parts.append(f"reward {get('shaped_reward'):.2f}")
    if get("balance_weight") is not None:
        parts.append(f"w {get('balance_weight'):.2f}")
    if seconds_per_step is not None:
        parts.append(f"{seconds_per_step:.1f} s/step")
    return " | ".join(parts)


def mixed_precision(dtype: str) -> dict[str, bool]:
    """trl's bf16 / fp16 flags for the dtype the model is actually computed in (`modeling.compute_dtype`:
    float16 on a card without bfloat16, float32 on a CPU), not the recipe's text: transformers refuses bf16
    on a card that lacks it."""
    computed = compute_dtype(dtype) if torch.cuda.is_available() else torch.float32
    return {"bf16": computed == torch.bfloat16, "fp16": computed == torch.float16}


def grpo_args(settings: GRPOSettings, output_dir: Path, dtype: str, world_size: int) -> GRPOConfig:
    """trl's GRPOConfig from a stage's settings (trl's own field names); one rollout batch per optimizer step.

    Mixed precision follows the dtype the model is computed in (`mixed_precision`). vLLM's context is the
    prompt budget plus the stage's response budget (`fitcheck.vllm_max_model_len`): left unset, vLLM sizes
    itself for the model's whole context (131,072 tokens for R1-Distill), and a 24 GB card's share cannot
    hold one such sequence, so vLLM refuses to start."""
    completions = settings.prompts_per_step * settings.num_generations
    per_step = settings.per_device_train_batch_size * world_size
    if completions % per_step:
        raise RecipeError(
            f"prompts_per_step x num_generations = {completions} completions per step cannot be split into "
            f"batches of {settings.per_device_train_batch_size} on {world_size} processes: make "
            f"per_device_train_batch_size x processes divide {completions}"
        )
    cuda = torch.cuda.is_available()
    values = settings.as_recipe()
    del values["prompts_per_step"]  # AutoThink's own: becomes gradient_accumulation_steps
    values["report_to"] = [r for r in settings.report_to if r != "none"]
    kwargs = {
        # AutoThink's choices for fields a recipe may still set: group-normalised advantages as in the paper,
        # vLLM beside the trainer, checkpoints every save_steps
        "scale_rewards": "group", "vllm_mode": "colocate", "save_strategy": "steps", "ddp_find_unused_parameters": False,
        "vllm_max_model_length": vllm_max_model_len(settings),
        **values,
        # what AutoThink sets itself (config.SET_BY_AUTOTHINK)
        "output_dir": str(output_dir), "gradient_accumulation_steps": completions // per_step, "use_cpu": not cuda,
        **mixed_precision(dtype), "remove_unused_columns": False,
        "data_seed": settings.seed,
    }
    try:
        return GRPOConfig(**kwargs)
    except (ValueError, TypeError) as err:
        raise RecipeError(f"trl's GRPOConfig refuses the stage's grpo settings: {err}") from None
