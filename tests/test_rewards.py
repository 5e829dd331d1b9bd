import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autothink_lite.metrics import efficiency_f1
from autothink_lite.rewards import (
    PAPER_STAGES,
    StageShaping,
    balance_weight,
    batch_balance,
    degenerate_penalty,
    length_cap_reward,
    length_shaping,
    naive_reward,
    stage_rewards,
)


@pytest.mark.parametrize(
    "think, correct, reward",
    [(True, True, 1.0), (True, False, 0.0), (False, True, 2.0), (False, False, -1.0)],
)
def test_naive_reward_follows_every_row_of_the_papers_table(think, correct, reward):
    assert naive_reward(think, correct) == reward


def test_degenerate_penalty_hits_only_negative_rewards():
    assert degenerate_penalty([-1.0, 0.0, 2.0, -1.0], [True, True, True, False]) == [-2.0, 0.0, 2.0, -1.0]


samples = st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=64)


def _naive(batch):
    return [naive_reward(t, c) for t, c in batch]


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=32))
def test_balance_leaves_a_50_50_batch_unchanged(half):
    batch = [(True, c) for _, c in half] + [(False, c) for c, _ in half]
    rewards = _naive(batch)
    assert batch_balance(rewards, [t for t, _ in batch], [c for _, c in batch]) == rewards


@given(samples)
def test_balance_moves_the_over_represented_mode_down_by_exactly_w(batch):
    think = [t for t, _ in batch]
    correct = [c for _, c in batch]
    z = sum(think) / len(think)
    w, mode = balance_weight(think)
    expected_w = min(max(2.0 * (max(z, 1 - z) - 0.5), 0.0), 1.0)
    assert w == pytest.approx(expected_w)
    assert mode == ("think" if z > 0.5 else "no_think" if z < 0.5 else None)
    balanced = batch_balance(_naive(batch), think, correct)
    for (t, c), before, after in zip(batch, _naive(batch), balanced):
        over = (t and mode == "think") or (not t and mode == "no_think")
        assert after == pytest.approx(before - w if over else before)


@given(samples)
def test_balance_never_flips_the_order_of_rewards_within_a_mode(batch):
    think = [t for t, _ in batch]
    correct = [c for _, c in batch]
    rewards = _naive(batch)
    balanced = batch_balance(rewards, think, correct)
    for mode in (True, False):
        pairs = [(r, b) for t, r, b in zip(think, rewards, balanced) if t == mode]
        for r1, b1 in pairs:
            for r2, b2 in pairs:
                if r1 < r2:
                    assert b1 < b2


def test_balance_targets_of_each_mode():
    # 3 think of 4: z = 0.75, w = 0.5; think samples blend towards 0 (correct) / -1 (wrong).
    assert batch_balance([1.0, 0.0, 1.0, 2.0], [True, True, True, False], [True, False, True, True]) == [
        0.5, -0.5, 0.5, 2.0]
    # All no-think: w = 1, every no-think reward becomes its target +1 (correct) / -2 (wrong).
    assert batch_balance([2.0, -1.0], [False, False], [True, False]) == [1.0, -2.0]


def test_gamma_of_one_disables_the_balance():
    assert batch_balance([1.0, 1.0], [True, True], [True, True], gamma=1.0) == [1.0, 1.0]
    assert balance_weight([True, True], gamma=1.0) == (0.0, None)


lengths = st.lists(st.integers(1, 4000), min_size=2, max_size=16)


@given(lengths, st.booleans())
def test_length_shaping_is_zero_for_equal_lengths(group, correct):
    n = len(group)
    assert length_shaping([1.0] * n, [group[0]] * n, [correct] * n, [0] * n) == pytest.approx([1.0] * n)


def test_length_shaping_leaves_singleton_subgroups_alone():
    # group 0: one correct, one wrong; group 1: one correct.
    rewards = [1.0, 0.0, 2.0]
    assert length_shaping(rewards, [10, 500, 7], [True, False, True], [0, 0, 1]) == rewards


@given(lengths, st.booleans())
def test_length_shaping_prefers_shorter_correct_and_longer_wrong_samples(group, correct):
    assume(len(set(group)) > 1)
    n = len(group)
    shaped = length_shaping([0.0] * n, group, [correct] * n, [0] * n)
    shortest, longest = group.index(min(group)), group.index(max(group))
    if correct:
        assert shaped[shortest] > 0 > shaped[longest]
    else:
        assert shaped[shortest] < 0 < shaped[longest]


def test_length_shaping_uses_the_unbiased_std_and_the_papers_formula():
    # lengths 10, 20, 30: mean 20, unbiased std 10, y = -1, 0, 1.
    shaped = length_shaping([1.0, 1.0, 1.0], [10, 20, 30], [True] * 3, ["p"] * 3, alpha=0.05)
    assert shaped == pytest.approx([1 + math.exp(0.05) - 1, 1.0, 1 + math.exp(-0.05) - 1])
    shaped = length_shaping([0.0] * 3, [10, 20, 30], [False] * 3, ["p"] * 3, beta=0.05)
    assert shaped == pytest.approx([1 - math.exp(0.05), 0.0, 1 - math.exp(-0.05)])


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 100), st.booleans()), min_size=1, max_size=30),
       st.randoms())
def test_length_shaping_is_invariant_to_the_order_of_samples_and_groups(batch, rng):
    def shaped(rows):
        return length_shaping([1.0] * len(rows), [r[1] for r in rows], [r[2] for r in rows], [r[0] for r in rows])

    order = list(range(len(batch)))
    rng.shuffle(order)
    original = shaped(batch)
    shuffled = shaped([batch[i] for i in order])
    assert [shuffled[k] for k in range(len(order))] == pytest.approx([original[i] for i in order])


def test_mismatched_inputs_are_refused_with_their_sizes():
    with pytest.raises(ValueError, match="rewards=2, think_flags=1"):
        batch_balance([1.0, 1.0], [True], [True, True])


def test_the_paper_stages_shape_rewards_as_described():
    think = [True, True, True, False]
    correct = [True, False, True, True]
    lengths = [100, 300, 200, 10]
    groups = [0, 0, 0, 1]
    stage1 = stage_rewards(PAPER_STAGES[1], think, correct, lengths, groups)
    assert (stage1.balance_weight, stage1.balanced_mode) == (0.5, "think")
    assert stage1.rewards == [0.5, -0.5, 0.5, 2.0]
    stage2 = stage_rewards(PAPER_STAGES[2], think, correct, lengths, groups)
    assert stage2.rewards == stage2.naive == [1.0, 0.0, 1.0, 2.0]
    stage3 = stage_rewards(PAPER_STAGES[3], think, correct, lengths, groups)
    assert stage3.rewards[0] > 1.0 > stage3.rewards[2], "the shorter of two correct samples gains"
    assert stage3.rewards[1] == 0.0 and stage3.rewards[3] == 2.0, "singleton subgroups are untouched"


def test_stage_rewards_apply_the_degenerate_penalty_before_balancing():
    shaped = stage_rewards(StageShaping(), [False, False], [False, True], [5, 5], [0, 0], [True, False])
    # naive -1, 2 -> penalty -2, 2 -> all no-think: w = 1, targets -2 (wrong), +1 (correct)
    assert shaped.rewards == [-2.0, 1.0]


def test_efficiency_f1_reproduces_the_papers_worked_example():
    assert efficiency_f1(51.7, 5108, 48.6, 10633, 37.5, 2528) == pytest.approx(39.6, abs=0.05)


def test_efficiency_f1_is_zero_when_accuracy_or_tokens_get_worse():
    assert efficiency_f1(45.0, 5108, 48.6, 10633, 37.5, 2528) == 0.0
    assert efficiency_f1(51.7, 12000, 48.6, 10633, 37.5, 2528) == 0.0
    assert efficiency_f1(0.5, 100, 0.5, 100, 0.5, 100) == 0.0


def test_efficiency_f1_accepts_fractions_as_well_as_percentages():
    assert efficiency_f1(0.517, 5108, 0.486, 10633, 0.375, 2528) == pytest.approx(
        efficiency_f1(51.7, 5108, 48.6, 10633, 37.5, 2528))


@pytest.mark.parametrize("correct, length, reward", [(True, 64, 1.0), (True, 65, 0.0), (False, 10, 0.0)])
def test_length_cap_reward_pays_only_correct_answers_within_the_cap(correct, length, reward):
    assert length_cap_reward(correct, length, cap=64) == reward


def test_a_length_cap_stage_replaces_autothinks_rewards():
    shaped = stage_rewards(StageShaping(gamma=1.0, length_cap=50), [True, True, False], [True, True, False],
                           [40, 80, 5], [0, 0, 0])
    assert shaped.rewards == [1.0, 0.0, 0.0] and shaped.naive == [1.0, 1.0, -1.0]
