"""The miniature's task: seeded integer arithmetic in five difficulty levels, and R1-style traces for it.

DESIGN.md section 6. Five levels whose surface shapes all differ (operator and digit counts), and whose
working length and difficulty both rise with the level:

  level 1   d + d       7 + 5        one line of working    direct answers from memory: reliable
  level 2   dd + d      47 + 5       two short lines
  level 3   dd + dd     47 + 86      two lines
  level 4   ddd + dd    478 + 86     three lines
  level 5   ddd * d     478 * 6      three lines of products and carries   direct answers: hopeless

The thinking opens with a fixed phrase (so "think or not" is one token's choice after the ellipsis
prompt), then works column by column from the units, each line doing one small fact and writing the
digits of the answer found so far (`47+86:13->3`), so the last line holds the answer. Like R1-Distill:

- the first pass of the working sometimes *slips* (a column takes the wrong carry, and the working goes on
  from there), at a rate that rises with the level (`FIRST_PASS_SLIP`): thinking is reliable on easy
  problems, not on hard ones;
- it then re-checks itself a variable number of times (`RECHECKS`, the same at every level: R1 over-thinks
  easy and hard problems alike): "Wait, let me verify." and the working again, done right. A re-check
  corrects a slip, and the answer follows the last pass, so re-checks are redundant on easy problems and
  sometimes decisive on hard ones (what makes a uniform length cap costly where an adaptive policy is not).

The rates are the behaviour the built model shows when sampled at the paper's temperature 0.6: the teacher
that writes the SFT traces uses `teacher_probability(rate)` for each binary choice, which sampling at T = 0.6
turns back into `rate` (for a model that learnt the teacher's probabilities).

Records are plain dicts: id, problem, answer (a string), level (1-5), plus the operands a, op, b. The
held-out eval split is fixed (its own seed); the train pool (what the base is distilled on) is the rest; a
validation split for tuning RL settings is drawn from the train pool and held out of RL (`rl_split`). The
eval split never shares a problem text with the others. No torch here: this module is pure.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from autothink_lite.prompts import check_prompt_mode

LEVELS = (1, 2, 3, 4, 5)
EVAL_SEED = 20250516  # fixed: the benchmark is the same whatever seed a model is built with
VALIDATION_SEED = 20250517
EVAL_PER_LEVEL = 40
VALIDATION_PER_LEVEL = 40  # at most a third of what the eval split leaves of a level (level 1: 20)
TRAIN_PER_LEVEL = 1000
THINK_OPENER = "Okay, digit by digit:"
# Every re-check phrase starts with the same token, so "re-check or stop" is one binary choice.
RECHECK_PHRASES = ("Wait, let me verify.", "Wait, let me double-check.", "Wait, let me check that again.")
FINAL_ANSWER = "The answer is \\boxed{{{answer}}}."
# After thinking the answer opens with "So": one cheap token that tells the model to copy the answer from
# its working rather than guess it the way a direct answer must.
CONCLUSION = "So the answer is \\boxed{{{answer}}}."

# The behaviour of the built model at the sampling temperature (see the module doc).
SAMPLING_TEMPERATURE = 0.6
AUTO_THINK = 0.5  # ellipsis prompt: think-rate, the same at every level (R1-Distill: no link to difficulty)
# P(the first pass of the working slips somewhere), per level. Levels 1-2 never slip, so their re-checks
# are pure redundancy; on level 5 nearly every first pass is wrong until a re-check corrects it.
FIRST_PASS_SLIP = {1: 0.0, 2: 0.0, 3: 0.35, 4: 0.7, 5: 0.9}
# P(0, 1, ..., 5 re-checks), at every level: a quarter of the traces stop after one pass, the mean is 2.25
# (over-thinking: thinking runs to 3x the plain working and more, as R1-Distill's does on easy problems).
RECHECKS = (0.25, 0.15, 0.15, 0.15, 0.15, 0.15)
MAX_RECHECKS = len(RECHECKS) - 1
# P(a direct answer is right), per level, when direct answers slip (`direct_answer`): a one-shot answer is
# the working done in the head, whose carries slip more the more columns there are, as R1-Distill's no-think
# answers are right on easy problems and mostly wrong on hard ones. Level 1 is a fact known by heart.
DIRECT_RIGHT = {1: 1.0, 2: 0.8, 3: 0.55, 4: 0.3, 5: 0.05}

# level -> (operator, range of a, range of b)
_OPERANDS = {
    1: ("+", range(0, 10), range(0, 10)),
    2: ("+", range(10, 100), range(0, 10)),
    3: ("+", range(10, 100), range(10, 100)),
    4: ("+", range(100, 1000), range(10, 100)),
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


@lru_cache(maxsize=16)
def _split(level: int, n_eval: int, n_validation: int) -> tuple[tuple[Record, ...], ...]:
    """(held-out eval, train, validation, RL) of a level, each in the pool's order.

    train = everything but the eval split (the base's SFT data); validation = part of train, held out of RL;
    RL = train minus validation."""
    pool = level_pool(level)
    picked_eval = set(random.Random(EVAL_SEED * 10 + level).sample(range(len(pool)), min(n_eval, len(pool) // 2)))
    rest = [i for i in range(len(pool)) if i not in picked_eval]
    n_validation = min(n_validation, len(rest) // 3)
    picked_validation = set(random.Random(VALIDATION_SEED * 10 + level).sample(rest, n_validation))
    held_out = tuple(pool[i] for i in sorted(picked_eval))
    train = tuple(pool[i] for i in rest)
    validation = tuple(pool[i] for i in sorted(picked_validation))
    rl = tuple(pool[i] for i in rest if i not in picked_validation)
    return held_out, train, validation, rl


def eval_split(n_per_level: int = EVAL_PER_LEVEL, levels: Iterable[int] = LEVELS) -> list[Record]:
    """The held-out benchmark: `n_per_level` problems per level (at most half a level's pool), fixed.

    Reports final numbers only; never tune on it. Levels take turns (1, 2, 3, 4, 5, 1, ...), so the first N
    problems (`--limit N`) cover every level."""
    return _interleave([[dict(r) for r in _split(check_level(level), n_per_level, VALIDATION_PER_LEVEL)[0]]
                        for level in levels])


def validation_split(n_per_level: int = VALIDATION_PER_LEVEL, levels: Iterable[int] = LEVELS) -> list[Record]:
    """Problems for tuning RL settings, drawn from the train pool: never in the eval split, never RL-trained.

    They are part of the base's SFT data (as R1-Distill has seen problems like its RL set's), so tuning
    compares RL settings on problems RL never saw. Level 1 has only 100 problems, so it gets at most a
    third of what the eval split leaves (20)."""
    return _interleave([[dict(r) for r in _split(check_level(level), EVAL_PER_LEVEL, n_per_level)[2]]
                        for level in levels])


def train_split(level: int) -> list[Record]:
    """All problems of `level` not in the eval split: what the base is distilled on (SFT)."""
    return [dict(r) for r in _split(check_level(level), EVAL_PER_LEVEL, VALIDATION_PER_LEVEL)[1]]


def rl_split(level: int) -> list[Record]:
    """The train pool minus the validation split: what RL trains on."""
    return [dict(r) for r in _split(check_level(level), EVAL_PER_LEVEL, VALIDATION_PER_LEVEL)[3]]


def training_mix(n_per_level: int = TRAIN_PER_LEVEL, seed: int = 0) -> list[Record]:
    """The RL training set: the same number of problems from every level, levels taking turns.

    The RL pools differ by three orders of magnitude (40 level-1 sums, ~80000 level-4 sums); drawn as they
    are, rollouts would almost never show an easy problem, and the policy could not learn to skip thinking
    on easy ones. Small pools repeat (shuffled, seeded) to fill their share."""
    rng = random.Random(seed)
    per_level = []
    for level in LEVELS:
        pool = rl_split(level)
        rng.shuffle(pool)
        per_level.append([dict(pool[i % len(pool)]) for i in range(n_per_level)])
    return _interleave(per_level)


def _interleave(groups: list[list[Record]]) -> list[Record]:
    out = []
    for i in range(max(len(g) for g in groups)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


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


def working_lines(record: Record) -> int:
    """Lines of working of a problem: one per digit of `a`."""
    return len(str(record["a"]))


def working(record: Record, slips: Iterable[int] = ()) -> str:
    """The working, one line per column of `a` from the units; `slips`: lines (1, 2, ...) whose carry is off.

    Each line restates what is left of the problem, then does that column's fact plus the carry, then
    writes the answer's digits found so far (on the last line, the whole answer):

        478*6:48->8            47+86:13->3            47+5:12->2
        47*6:42+4=46->68       4+8:12+1=13->133       4:4+1=5->52
        4*6:24+4=28->2868

    Restating the rest of the problem puts the column's digits at a fixed distance before the fact, so a
    tiny model never has to find "the tens digit" inside the question (once a sum's second operand runs
    out, only the first's digits are left to restate). No spaces: with Qwen2's split rules a space before a
    digit costs a token of its own. A slip takes the wrong carry into a column, one off (a carry forgotten
    or one carried that was not there: `47*6:42+3=45->58`, `4+8:12+0=12->123`), adds it up right and goes
    on from there, as a hurried hand would: the last line is then wrong. The facts themselves are never
    wrong, so slips do not teach the model bad arithmetic. The units line has no carry and never slips.
    """
    a, op, b = str(record["a"]), record["op"], str(record["b"])
    slips = set(slips)
    if not slips <= set(range(1, len(a))):
        raise ValueError(f"slips={sorted(slips)}: slippable lines are 1..{len(a) - 1} for {record['problem']!r}")
    lines, written, carry = [], "", 0
    for i in range(len(a)):
        rest_a = a[:len(a) - i]
        if op == "+":
            rest_b = b[:len(b) - i]
            value = int(rest_a[-1]) + (int(rest_b[-1]) if rest_b else 0)
        else:
            rest_b = b
            value = int(rest_a[-1]) * int(b)
        rest = f"{rest_a}{op}{rest_b}" if rest_b else rest_a
        if i in slips:
            carry = carry - 1 if carry else 1
        total = value + carry
        if i == 0:
            fact = f"{total}"
        else:
            fact = f"{value}+{carry}={total}"
        last = i == len(a) - 1
        written = (str(total) if last else str(total % 10)) + written
        carry = total // 10
        lines.append(f"{rest}:{fact}->{written}")
    assert slips or written == record["answer"], (record, written)
    return "\n".join(lines)


def working_result(text: str) -> str | None:
    """The number a pass of working ends on (its last `->digits`), or None."""
    found = re.findall(r"->(\d+)", text)
    return found[-1] if found else None


def one_digit_facts() -> list[tuple[int, str, int]]:
    """Every one-digit sum and product, (a, op, b): the tables a pretrained model knows by heart."""
    return [(a, op, b) for op in ("+", "*") for a in range(10) for b in range(10)]


def fact_pieces(rng: random.Random, n: int = 12) -> list[tuple[str, bool]]:
    """`n` random one-digit facts as plain sentences (`7 + 8 = 15`), in pieces: (text, is it a target).

    The miniature's stand-in for pretraining, with no chat template. Only each fact's value is a target (the
    operands are random, so learning to predict them would only add noise), and the facts are written the way
    the questions are, never in the working's notation, whose column facts sit among other digits."""
    pieces = []
    for a, op, b in rng.sample(one_digit_facts(), n):
        value = a + b if op == "+" else a * b
        pieces += [(f"{a} {op} {b} = ", False), (str(value), True), ("\n", False)]
    return pieces


def reasoning_trace(record: Record, rechecks: int, rng: random.Random | None = None, slips: Iterable[int] = ()) -> str:
    """The R1-style thinking: the opener, the working (with `slips` in it), then `rechecks` re-checks done right."""
    if not 0 <= rechecks <= MAX_RECHECKS:
        raise ValueError(f"rechecks={rechecks}: use 0..{MAX_RECHECKS}")
    rng = rng or random.Random(0)
    parts = [THINK_OPENER, working(record, slips)]
    plain = working(record)
    for _ in range(rechecks):
        parts.append(f"{rng.choice(RECHECK_PHRASES)}\n{plain}")
    return "\n".join(parts)


def count_rechecks(reasoning: str) -> int:
    """Re-checks in a piece of thinking: how often it says one of `RECHECK_PHRASES`."""
    return sum(reasoning.count(phrase) for phrase in RECHECK_PHRASES)


def final_answer(record: Record, after_thinking: bool = False, answer: str | None = None) -> str:
    return (CONCLUSION if after_thinking else FINAL_ANSWER).format(answer=record["answer"] if answer is None else answer)


def completion(record: Record, prompt_mode: str, think: bool, rechecks: int = 0, rng: random.Random | None = None,
               slips: Iterable[int] = (), answer: str | None = None) -> str:
    """The target text after a rendered prompt of `prompt_mode` (see prompts.MODE_SUFFIX).

    think:  `<opener, working, re-checks>\\n</think>\\n\\nSo the answer is \\boxed{..}.`, the answer
            being what the last pass of working ended on (wrong when the first pass slipped and no
            re-check followed);
    direct: `</think>\\n\\nThe answer is \\boxed{..}.`, or just the answer after the no-think prompt,
            which already closed the think block; `answer` (a direct answer's, when given) or the right one.
    """
    if check_prompt_mode(prompt_mode) == "no_think":
        if think:
            raise ValueError("the no_think prompt closes the think block: a completion after it cannot think")
        return final_answer(record, answer=answer)
    if think:
        if answer is not None:
            raise ValueError("a thinking completion's answer is what its working ends on: give no answer")
        trace = reasoning_trace(record, rechecks, rng, slips)
        return f"{trace}\n</think>\n\n{final_answer(record, after_thinking=True, answer=working_result(trace))}"
    return f"</think>\n\n{final_answer(record, answer=answer)}"


# --- the teacher: what the SFT traces are drawn from --------------------------------------------------------

def teacher_probability(rate: float, temperature: float = SAMPLING_TEMPERATURE, alternatives: int = 1) -> float:
    """The probability to train a choice at, so that sampling at `temperature` shows it at `rate`.

    The rest, 1 - p, is shared evenly by `alternatives` other choices. A model that learnt p samples the
    choice at p^(1/T) / (p^(1/T) + k ((1-p)/k)^(1/T)); this inverts that: p / (1-p) = (rate / (1-rate))^T
    k^(T-1). (top-p 0.95 then drops a choice rarer than 5%: keep rates away from 0 and 1 or exactly at them.)
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"rate={rate}: a probability is within [0, 1]")
    if alternatives < 1:
        raise ValueError(f"alternatives={alternatives}: a choice has at least one alternative")
    if rate in (0, 1):
        return rate
    odds = (rate / (1 - rate)) ** temperature * alternatives ** (temperature - 1)
    return odds / (1 + odds)


def line_slip_rate(level: int) -> float:
    """Per-line slip rate of a level's first pass that makes P(some line slips) = FIRST_PASS_SLIP[level]."""
    slippable = len(str(_OPERANDS[check_level(level)][1][0])) - 1
    return 1 - (1 - FIRST_PASS_SLIP[level]) ** (1 / slippable) if slippable else 0.0


def recheck_continue_rates() -> list[float]:
    """P(another re-check | k done) for k = 0..MAX_RECHECKS-1, from the distribution `RECHECKS`."""
    rates, left = [], 1.0
    for p in RECHECKS[:-1]:
        rates.append(1 - p / left if left > 0 else 0.0)
        left -= p
    return rates


def sample_trace_choices(record: Record, rng: random.Random) -> tuple[tuple[int, ...], int]:
    """(slipped lines, re-checks) of one teacher trace, each binary choice drawn at its teacher probability."""
    slip = teacher_probability(line_slip_rate(record["level"]))
    slips = tuple(i for i in range(1, working_lines(record)) if rng.random() < slip)
    rechecks = 0
    for rate in recheck_continue_rates():
        if rng.random() >= teacher_probability(rate):
            break
        rechecks += 1
    return slips, rechecks


def direct_answer(record: Record, rng: random.Random) -> str:
    """The answer of one teacher's direct reply: right at `DIRECT_RIGHT[level]` when sampled at the
    temperature, else the working's result with one carry slipped (each slippable line equally likely)."""
    lines = working_lines(record) - 1  # slippable lines
    if not lines or rng.random() < teacher_probability(DIRECT_RIGHT[record["level"]], alternatives=lines):
        return record["answer"]
    return working_result(working(record, [rng.randrange(1, lines + 1)]))


def sample_completion(record: Record, prompt_mode: str, rng: random.Random, direct_slips: bool = False) -> str:
    """One teacher completion: thinks always (standard), at AUTO_THINK (auto) or never (no_think).

    direct_slips: a direct answer is right only at `DIRECT_RIGHT` (`direct_answer`); else always right."""
    think = prompt_mode == "standard" or (prompt_mode == "auto" and rng.random() < teacher_probability(AUTO_THINK))
    if not think:
        if direct_slips:
            return completion(record, prompt_mode, think=False, answer=direct_answer(record, rng))
        return completion(record, prompt_mode, think=False)
    slips, rechecks = sample_trace_choices(record, rng)
    return completion(record, prompt_mode, think=True, rechecks=rechecks, rng=rng, slips=slips)


def teacher_settings() -> dict:
    """The teacher's target rates, for the built model's record."""
    return {"sampling_temperature": SAMPLING_TEMPERATURE, "auto_think": AUTO_THINK,
            "first_pass_slip": {str(k): v for k, v in FIRST_PASS_SLIP.items()}, "rechecks": list(RECHECKS),
            "direct_right": {str(k): v for k, v in DIRECT_RIGHT.items()},
            "levels": {str(level): f"{'d' * len(str(a[0]))}{op}{'d' * len(str(b[-1]))}"
                       for level, (op, a, b) in _OPERANDS.items()}}
