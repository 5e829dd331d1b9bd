"""AutoThink's rewards (the paper's naive reward, batch balance and length shaping), as pure functions over plain lists.

Each function is one formula of the paper. They are *post-gather* transforms: batch balance needs the whole
rollout batch and length shaping needs each prompt's group, so with several processes they must be fed the
gathered batch (training.py does that). `stage_rewards` composes them in the authors' order:
naive reward -> degenerate penalty -> length shaping -> batch balance.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Hashable, Sequence

DEGENERATE_REWARD = -2.0


def naive_reward(think: bool, correct: bool) -> float:
    """r0: think +1 / 0; no-think +2 / -1 (correct / wrong or format error)."""
    if think:
        return 1.0 if correct else 0.0
    return 2.0 if correct else -1.0


def length_cap_reward(correct: bool, length: int, cap: int) -> float:
    """The length-cap baseline (ThinkPrune-style): 1 for a correct answer within `cap` tokens, else 0."""
    return 1.0 if correct and length <= cap else 0.0


def degenerate_penalty(rewards: Sequence[float], degenerate_flags: Sequence[bool]) -> list[float]:
    """The authors' extra rule: a negative reward on a degenerate output (grading.is_degenerate) becomes -2."""
    _same_length(rewards=rewards, degenerate_flags=degenerate_flags)
    return [DEGENERATE_REWARD if r < 0 and bad else float(r) for r, bad in zip(rewards, degenerate_flags)]


def balance_weight(think_flags: Sequence[bool], gamma: float = 0.5, slope: float = 2.0) -> tuple[float, str | None]:
    """(w, mode): how strongly the over-represented mode is pulled down, and which mode that is.

    z = share of think samples; w = clip(slope * (share - gamma), 0, 1) for the mode whose share exceeds
    gamma. gamma >= 1 disables the balance. Returns (0.0, None) when no mode is over-represented.
    """
    if not think_flags:
        return 0.0, None
    z = sum(bool(t) for t in think_flags) / len(think_flags)
    if z > gamma:
        return min(max(slope * (z - gamma), 0.0), 1.0), "think"
    if 1.0 - z > gamma:
        return min(max(slope * ((1.0 - z) - gamma), 0.0), 1.0), "no_think"
    return 0.0, None


def batch_balance(
    rewards: Sequence[float],
    think_flags: Sequence[bool],
    correct_flags: Sequence[bool],
    gamma: float = 0.5,
    slope: float = 2.0,
) -> list[float]:
    """Stage 1: blend the over-represented mode's rewards towards r0 - 1, keeping both modes alive.

    Every sample of that mode: r = (1 - w) * r + w * t, with t = 0 / -1 (think, correct / wrong) or
    t = +1 / -2 (no-think, correct / wrong). The rest of the batch is untouched.
    """
    _same_length(rewards=rewards, think_flags=think_flags, correct_flags=correct_flags)
    w, mode = balance_weight(think_flags, gamma, slope)
    out = [float(r) for r in rewards]
    if mode is None:
        return out
    balance_think = mode == "think"
    for i, (think, correct) in enumerate(zip(think_flags, correct_flags)):
        if bool(think) == balance_think:
            target = naive_reward(think, correct) - 1.0
            out[i] = (1.0 - w) * out[i] + w * target
    return out


def length_shaping(
    rewards: Sequence[float],
    lengths: Sequence[float],
    correct_flags: Sequence[bool],
    group_ids: Sequence[Hashable],
    alpha: float = 0.05,
    beta: float = 0.05,
) -> list[float]:
    """Stage 3: within each prompt group, separately for correct and wrong samples (subgroups of 2 or more),
    y = (L - mean L) / max(std L, 1e-6) with the unbiased std; correct: r += exp(-alpha y) - 1;
    wrong: r += 1 - exp(-beta y). Short correct answers gain; long wrong answers lose less."""
    _same_length(rewards=rewards, lengths=lengths, correct_flags=correct_flags, group_ids=group_ids)
    subgroups: dict[tuple[Hashable, bool], list[int]] = defaultdict(list)
    for i, (group, correct) in enumerate(zip(group_ids, correct_flags)):
        subgroups[(group, bool(correct))].append(i)
    out = [float(r) for r in rewards]
    for (_, correct), members in subgroups.items():
        if len(members) < 2:
            continue
        sample = [float(lengths[i]) for i in members]
        mean = sum(sample) / len(sample)
        std = math.sqrt(sum((x - mean) ** 2 for x in sample) / (len(sample) - 1))
        for i, length in zip(members, sample):
            y = (length - mean) / max(std, 1e-6)
            out[i] += math.exp(-alpha * y) - 1.0 if correct else 1.0 - math.exp(-beta * y)
    return out


@dataclass(frozen=True)
class StageShaping:
    """The reward settings of one AutoThink stage (defaults: the paper's stage 1)."""

    gamma: float = 0.5  # batch balance threshold; >= 1 disables the balance (stages 2 and 3)
    slope: float = 2.0  # lambda of the paper
    alpha: float = 0.0  # length shaping of correct samples; 0 with beta 0 disables it (stages 1 and 2)
    beta: float = 0.0  # length shaping of wrong samples
    degenerate_penalty: bool = True
    length_cap: int | None = None  # set: the length-cap baseline's reward replaces AutoThink's

    @property
    def balances(self) -> bool:
        return self.gamma < 1.0

    @property
    def shapes_length(self) -> bool:
        return self.alpha != 0.0 or self.beta != 0.0


PAPER_STAGES = {
    1: StageShaping(gamma=0.5, slope=2.0),
    2: StageShaping(gamma=1.0),
    3: StageShaping(gamma=1.0, alpha=0.05, beta=0.05),
}


@dataclass
class ShapedBatch:
    rewards: list[float]
    naive: list[float]
    balance_weight: float
    balanced_mode: str | None


def stage_rewards(
    shaping: StageShaping,
    think_flags: Sequence[bool],
    correct_flags: Sequence[bool],
    lengths: Sequence[float],
    group_ids: Sequence[Hashable],
    degenerate_flags: Sequence[bool] | None = None,
) -> ShapedBatch:
    """All of one stage's reward shaping over a gathered rollout batch, in the authors' order."""
    naive = [naive_reward(t, c) for t, c in zip(think_flags, correct_flags)]
    if shaping.length_cap is not None:
        capped = [length_cap_reward(c, n, shaping.length_cap) for c, n in zip(correct_flags, lengths)]
        return ShapedBatch(rewards=capped, naive=naive, balance_weight=0.0, balanced_mode=None)
    rewards = list(naive)
    if shaping.degenerate_penalty and degenerate_flags is not None:
        rewards = degenerate_penalty(rewards, degenerate_flags)
    if shaping.shapes_length:
        rewards = length_shaping(rewards, lengths, correct_flags, group_ids, shaping.alpha, shaping.beta)
    w, mode = 0.0, None
    if shaping.balances:
        w, mode = balance_weight(think_flags, shaping.gamma, shaping.slope)
        rewards = batch_balance(rewards, think_flags, correct_flags, shaping.gamma, shaping.slope)
    return ShapedBatch(rewards=rewards, naive=naive, balance_weight=w, balanced_mode=mode)


def _same_length(**columns: Sequence) -> None:
    sizes = {name: len(values) for name, values in columns.items()}
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{name}={size}" for name, size in sizes.items())
        raise ValueError(f"reward inputs must have one entry per sample, got {detail}")
