"""The miniature's task: seeded integer arithmetic in five difficulty levels, and R1-style traces for it.

DESIGN.md section 6. The levels are picked so that a tiny model can answer the easy ones from memory but
not the hard ones, while the digit-by-digit working inside `<think>` makes every level reliably solvable:

  level 1   d + d      7 + 5        one addition fact
  level 2   dd + d     47 + 5       two columns, one carry
  level 3   dd + dd    47 + 86      two columns, carries on both
  level 4   dd * d     47 * 6       two columns of products plus carries
  level 5   ddd * d    478 * 6      three columns of products plus carries

The thinking opens with a fixed phrase (so "think or not" is one token's choice after the ellipsis
prompt, which sampling temperature does not skew), then works column by column from the units, each line
doing one small fact and writing the digits of the answer found so far (`47+86:13->3`), so the last line
holds the answer. Like R1, it then re-checks itself a variable number of times (`Wait, let me verify.` and
the same working again): that redundancy is what AutoThink's length shaping later learns to prune.

Records are plain dicts: id, problem, answer (a string), level (1-5), plus the operands a, op, b. The
held-out eval split is fixed (its own seed) and the train pool is everything else at that level, so the
two never share a problem text. No torch here: this module is pure.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from autothink_lite.prompts import check_prompt_mode

LEVELS = (1, 2, 3, 4, 5)
EVAL_SEED = 20250516  # fixed: the benchmark is the same whatever seed a model is built with
EVAL_PER_LEVEL = 40
TRAIN_PER_LEVEL = 1000
MAX_RECHECKS = 2
THINK_OPENER = "Okay, digit by digit:"
RECHECK_PHRASES = ("Wait, let me verify.", "Wait, let me double-check.", "Hmm, let me check that again.")
FINAL_ANSWER = "The answer is \\boxed{{{answer}}}."
# After thinking the answer opens with "So": one cheap token that tells the model to copy the answer from
# its working rather than guess it the way a direct answer must.
CONCLUSION = "So the answer is \\boxed{{{answer}}}."

# level -> (operator, range of a, range of b)
_OPERANDS = {
    1: ("+", range(0, 10), range(0, 10)),
    2: ("+", range(10, 100), range(0, 10)),
    3: ("+", range(10, 100), range(10, 100)),
    4: ("*", range(10, 100), range(2, 10)),
    5: ("*", range(100, 1000), range(2, 10)),
}

Record = dict


def check_level(level: int) -> int:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}: use one of {', '.join(map(str, LEVELS))}")
    return level


def make_record(a: int, op: str, b: int, level: int) -> Record:
    answer = a + b if op == "+" else a * b
    return {
        "id": f"mini-L{level}-{a}{'p' if op == '+' else 'x'}{b}",
        "problem": f"What is {a} {op} {b}?",
        "answer": str(answer),
        "level": level,
        "a": a,
        "op": op,
        "b": b,
    }


def level_pool(level: int) -> list[Record]:
    """Every problem of a level, in a fixed order."""
    op, a_range, b_range = _OPERANDS[check_level(level)]
    return [make_record(a, op, b, level) for a in a_range for b in b_range]


@lru_cache(maxsize=8)
def _split(level: int, n_eval: int) -> tuple[tuple[Record, ...], tuple[Record, ...]]:
    pool = level_pool(level)
    rng = random.Random(EVAL_SEED * 10 + level)
    picked = set(rng.sample(range(len(pool)), min(n_eval, len(pool) // 2)))
    held_out = tuple(pool[i] for i in sorted(picked))
    texts = {r["problem"] for r in held_out}
    train = tuple(r for r in pool if r["problem"] not in texts)
    return held_out, train


def eval_split(n_per_level: int = EVAL_PER_LEVEL, levels: Iterable[int] = LEVELS) -> list[Record]:
    """The held-out benchmark: `n_per_level` problems per level (at most half a level's pool), fixed.

    Levels take turns (1, 2, 3, 4, 5, 1, ...), so the first N problems (`--limit N`) cover every level."""
    return _interleave([[dict(r) for r in _split(check_level(level), n_per_level)[0]] for level in levels])


def training_mix(n_per_level: int = TRAIN_PER_LEVEL, seed: int = 0) -> list[Record]:
    """The RL training set: the same number of problems from every level, levels taking turns.

    The train pools differ by two orders of magnitude (60 level-1 sums, ~7000 level-5 products); drawn as
    they are, rollouts would almost never show an easy problem, and the policy could not learn to skip
    thinking on easy ones. Small pools repeat (shuffled, seeded) to fill their share."""
    rng = random.Random(seed)
    per_level = []
    for level in LEVELS:
        pool = train_split(level)
        rng.shuffle(pool)
        per_level.append([dict(pool[i % len(pool)]) for i in range(n_per_level)])
    return _interleave(per_level)


def _interleave(groups: list[list[Record]]) -> list[Record]:
    out = []
    for i in range(max(len(g) for g in groups)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


def train_split(level: int, n_eval_per_level: int = EVAL_PER_LEVEL) -> list[Record]:
    """All problems of `level` whose text is not in the eval split."""
    return [dict(r) for r in _split(check_level(level), n_eval_per_level)[1]]


def write_jsonl(records: Iterable[Record], path: str | Path) -> Path:
    """One JSON object a line, the format of the benchmark files in shared/data/benchmarks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def write_benchmark(path: str | Path, n_per_level: int = EVAL_PER_LEVEL) -> Path:
    return write_jsonl(eval_split(n_per_level), path)


def _digits_from_units(n: int) -> list[int]:
    return [int(d) for d in reversed(str(n))]


def working(record: Record) -> str:
    """The plain working, no re-checks: one line per column of `a`, from the units.

    Each line restates what is left of the problem, then does that column's fact plus the carry, then
    writes the answer's digits found so far (on the last line, the whole answer):

        478*6:48->8            47+86:13->3
        47*6:42+4=46->68       4+8:12+1=13->133
        4*6:24+4=28->2868

    Restating the rest of the problem puts the column's digits at a fixed distance before the fact, so a
    tiny model never has to find "the tens digit" inside the question. No spaces: with Qwen2's split
    rules a space before a digit costs a token of its own.
    """
    a, op, b = str(record["a"]), record["op"], str(record["b"])
    lines, written, carry = [], "", 0
    for i in range(len(a)):
        rest_a = a[:len(a) - i]
        if op == "+":
            rest_b = b[:len(b) - i] or "0"
            value = int(rest_a[-1]) + (int(rest_b[-1]) if i < len(b) else 0)
        else:
            rest_b = b
            value = int(rest_a[-1]) * int(b)
        total = value + carry
        fact = f"{value}" if i == 0 else f"{value}+{carry}={total}"
        last = i == len(a) - 1
        written = (str(total) if last else str(total % 10)) + written
        carry = total // 10
        lines.append(f"{rest_a}{op}{rest_b}:{fact}->{written}")
    assert written == record["answer"], (record, written)
    return "\n".join(lines)


def reasoning_trace(record: Record, rechecks: int, rng: random.Random | None = None) -> str:
    """The R1-style thinking: the opener, the working, then `rechecks` redundant re-checks of it."""
    if not 0 <= rechecks <= MAX_RECHECKS:
        raise ValueError(f"rechecks={rechecks}: use 0..{MAX_RECHECKS}")
    rng = rng or random.Random(0)
    plain = working(record)
    parts = [THINK_OPENER, plain]
    for _ in range(rechecks):
        parts.append(f"{rng.choice(RECHECK_PHRASES)}\n{plain}")
    return "\n".join(parts)


def final_answer(record: Record, after_thinking: bool = False) -> str:
    return (CONCLUSION if after_thinking else FINAL_ANSWER).format(answer=record["answer"])


def completion(record: Record, prompt_mode: str, think: bool, rechecks: int = 0, rng: random.Random | None = None) -> str:
    """The target text after a rendered prompt of `prompt_mode` (see prompts.MODE_SUFFIX).

    think:  `<opener, working, re-checks>\\n</think>\\n\\nSo the answer is \\boxed{..}.`
    direct: `</think>\\n\\nThe answer is \\boxed{..}.`, or just the answer after the no-think prompt,
            which already closed the think block.
    """
    if check_prompt_mode(prompt_mode) == "no_think":
        if think:
            raise ValueError("the no_think prompt closes the think block: a completion after it cannot think")
        return final_answer(record)
    if think:
        return f"{reasoning_trace(record, rechecks, rng)}\n</think>\n\n{final_answer(record, after_thinking=True)}"
    return f"</think>\n\n{final_answer(record)}"
