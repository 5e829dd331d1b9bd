"""The miniature R1: task, tokenizer, the shipped model in fp32 and nf4 4-bit, generation, a deterministic build."""

from __future__ import annotations

import json
import random
import re

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from autothink_lite.generation import generate
from autothink_lite.grading import is_correct
from autothink_lite.miniature import SHIPPED_MODEL_DIR, default_model_path, task
from autothink_lite.miniature.build import FACTS, BuildConfig, SFTBatches, build_miniature, sft_example
from autothink_lite.miniature.tokenizer import build_tokenizer
from autothink_lite.prompts import PROMPT_MODES, detect_mode, extract_answer, render_prompt

# Two problems per level from the held-out split: what the tests ask the shipped model.
PROBE = [r for level in task.LEVELS for r in task.eval_split(2, levels=[level])]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(SHIPPED_MODEL_DIR)


@pytest.fixture(scope="module")
def model():
    return AutoModelForCausalLM.from_pretrained(SHIPPED_MODEL_DIR, dtype=torch.float32)


# --- task -----------------------------------------------------------------------------------------------

def test_the_validation_split_comes_from_the_train_pool_and_never_meets_the_eval_split_or_rl():
    eval_texts = {r["problem"] for r in task.eval_split()}
    validation_texts = {r["problem"] for r in task.validation_split()}
    assert len(eval_texts) == len(task.LEVELS) * task.EVAL_PER_LEVEL
    assert not eval_texts & validation_texts
    for level in task.LEVELS:
        train_texts = {r["problem"] for r in task.train_split(level)}
        rl_texts = {r["problem"] for r in task.rl_split(level)}
        pool = {r["problem"] for r in task.level_pool(level)}
        assert not eval_texts & train_texts and pool == train_texts | (eval_texts & pool)
        assert rl_texts == train_texts - validation_texts and validation_texts & pool <= train_texts
    rl_pool = {r["problem"] for lv in task.LEVELS for r in task.rl_split(lv)}
    assert {r["problem"] for r in task.training_mix(50)} <= rl_pool


def test_validation_split_covers_every_level_and_is_fixed():
    split = task.validation_split()
    counts = {level: sum(r["level"] == level for r in split) for level in task.LEVELS}
    assert counts[1] == 20 and all(counts[level] == task.VALIDATION_PER_LEVEL for level in task.LEVELS[1:])
    assert split == task.validation_split()


def test_levels_differ_in_shape_and_working_length_rises_with_level():
    shapes = task.teacher_settings()["levels"]
    assert len(set(shapes.values())) == len(task.LEVELS)
    lines = [task.working_lines(task.level_pool(level)[0]) for level in task.LEVELS]
    chars = [sum(len(task.working(r)) for r in task.level_pool(level)[:500]) / 500 for level in task.LEVELS]
    assert lines == sorted(lines) and all(a < b for a, b in zip(chars, chars[1:]))


def test_eval_split_is_the_same_every_time_and_written_as_jsonl(tmp_path):
    path = task.write_benchmark(tmp_path / "mini.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == task.eval_split()
    assert {r["level"] for r in lines} == set(task.LEVELS)
    assert all(isinstance(r["answer"], str) and r["id"] and r["problem"] for r in lines)


def test_every_trace_works_out_to_the_answer_and_rechecks_repeat_the_working():
    rng = random.Random(0)
    for level in task.LEVELS:
        for record in rng.sample(task.train_split(level), 20):
            working = task.working(record)
            assert task.working_result(working) == record["answer"]
            trace = task.reasoning_trace(record, rechecks=2, rng=rng)
            assert trace.count(working) == 3 and task.count_rechecks(trace) == 2
            text = task.completion(record, "standard", think=True, rechecks=1, rng=rng)
            assert extract_answer(text, "standard") == record["answer"]


def test_a_slip_takes_a_wrong_carry_through_the_first_pass_and_a_recheck_corrects_it():
    record = task.make_record(478, "*", 6, 5)
    assert task.working(record, slips=[1]) == "478*6:48->8\n47*6:42+3=45->58\n4*6:24+4=28->2858"
    assert task.working(task.make_record(47, "+", 81, 3), slips=[1]) == "47+81:8->8\n4+8:12+1=13->138"
    slipped = task.completion(record, "standard", think=True, rechecks=0, slips=[1])
    assert extract_answer(slipped, "standard") == "2858" and not is_correct(slipped, "2868", "standard")
    corrected = task.completion(record, "auto", think=True, rechecks=1, slips=[1])
    assert corrected.count("->2858") == 1 and extract_answer(corrected, "auto") == "2868"
    assert is_correct(corrected, "2868", "auto") and task.count_rechecks(corrected) == 1
    for line in (0, 3):  # the units line has no carry to get wrong; 478 has three lines
        with pytest.raises(ValueError, match="slips"):
            task.working(record, slips=[line])


def test_a_slipped_direct_answer_is_one_wrong_carry_and_grades_wrong_in_both_direct_modes():
    record = task.make_record(478, "*", 6, 5)
    rng = random.Random(0)
    answers = {task.direct_answer(record, rng) for _ in range(200)}
    assert answers == {"2868", "2858", "2768"}  # right, or the tens or hundreds carry off by one
    for mode in ("auto", "no_think"):
        text = task.completion(record, mode, think=False, answer="2858")
        assert detect_mode(text, mode) == "no_think" and extract_answer(text, mode) == "2858"
        assert not is_correct(text, record["answer"], mode)
    with pytest.raises(ValueError, match="working"):
        task.completion(record, "standard", think=True, answer="2858")
    level_1 = task.make_record(7, "+", 5, 1)  # one line: a fact known by heart never slips
    assert {task.direct_answer(level_1, rng) for _ in range(50)} == {"12"}


def test_direct_answers_slip_more_on_harder_levels_only_when_the_build_asks_for_it():
    rng = random.Random(0)
    right = {}
    for level in task.LEVELS:
        records = rng.choices(task.train_split(level), k=2000)
        texts = [task.sample_completion(r, "no_think", rng, direct_slips=True) for r in records]
        right[level] = sum(is_correct(t, r["answer"], "no_think") for t, r in zip(texts, records)) / 2000
        assert all(is_correct(task.sample_completion(r, "no_think", rng), r["answer"], "no_think")
                   for r in records[:200])
    assert right[1] == 1.0 and all(right[a] > right[b] + 0.1 for a, b in zip(task.LEVELS, task.LEVELS[1:]))
    # the teacher's rate is what sampling at T = 0.6 turns into DIRECT_RIGHT, e.g. level 3's 0.55 -> ~0.53
    assert right[3] == pytest.approx(task.teacher_probability(task.DIRECT_RIGHT[3]), abs=0.03)


def test_a_sum_whose_second_operand_runs_out_restates_only_the_first():
    assert task.working(task.make_record(47, "+", 5, 2)) == "47+5:12->2\n4:4+1=5->52"
    assert task.working(task.make_record(478, "+", 86, 4)).splitlines()[-1] == "4:4+1=5->564"


def test_pretraining_facts_cover_both_one_digit_tables_with_only_their_values_as_targets(tokenizer):
    facts = task.one_digit_facts()
    assert len(facts) == len(set(facts)) == 200
    held_out_sums = {(r["a"], "+", r["b"]) for r in task.eval_split(levels=[1])}
    assert held_out_sums <= set(facts), "the held-out level-1 sums are facts a pretrained model knows"
    pieces = task.fact_pieces(random.Random(0), n=200)
    lines = "".join(text for text, _ in pieces).splitlines()
    assert len(lines) == 200 and not any(":" in line for line in lines), "never in the working's notation"
    for line in lines:
        a, op, b, value = re.fullmatch(r"(\d) ([+*]) (\d) = (\d+)", line).groups()
        assert int(value) == (int(a) + int(b) if op == "+" else int(a) * int(b))
    assert [text for text, target in pieces if target] == [line.split(" = ")[1] for line in lines]
    config = BuildConfig(facts_share=0.5)
    rng = random.Random(0)
    examples = [sft_example(rng, {level: task.train_split(level) for level in task.LEVELS}, config)
                for _ in range(200)]
    plain = [target for record, mode, target in examples if mode == FACTS]
    assert 60 < len(plain) < 140 and all(record is None for record, mode, _ in examples if mode == FACTS)
    ids, targets = SFTBatches(tokenizer, config)._encode(None, FACTS, plain[0])
    assert tokenizer.bos_token_id not in ids and tokenizer.decode(ids) == "".join(text for text, _ in plain[0])
    assert "".join(tokenizer.decode([i]) for i, t in zip(ids, targets) if t) == "".join(
        text for text, target in plain[0] if target), "only the values are targets"
    with pytest.raises(ValueError, match="facts_share"):
        BuildConfig(facts_share=1.0)


def test_teacher_probability_turns_back_into_the_rate_when_sampled_at_the_temperature():
    t = task.SAMPLING_TEMPERATURE
    for rate in (0.0, 0.05, 0.2, 0.5, 0.75, 0.95, 1.0):
        p = task.teacher_probability(rate)
        sampled = p ** (1 / t) / (p ** (1 / t) + (1 - p) ** (1 / t)) if 0 < p < 1 else p
        assert sampled == pytest.approx(rate)
    with pytest.raises(ValueError):
        task.teacher_probability(1.5)
    for k in (2, 3):  # the rest shared by k alternatives, each sampled at ((1-p)/k)^(1/T)
        for rate in (0.05, 0.3, 0.8):
            p = task.teacher_probability(rate, alternatives=k)
            sampled = p ** (1 / t) / (p ** (1 / t) + k * ((1 - p) / k) ** (1 / t))
            assert sampled == pytest.approx(rate)


def test_teacher_traces_follow_the_recheck_distribution_and_slip_more_on_harder_levels():
    rng = random.Random(0)
    drawn = {level: [task.sample_trace_choices(r, rng) for r in rng.choices(task.train_split(level), k=2000)]
             for level in task.LEVELS}
    slipped = [sum(bool(slips) for slips, _ in drawn[level]) / 2000 for level in task.LEVELS]
    assert slipped[0] == slipped[1] == 0 and slipped[2] < slipped[3] < slipped[4]
    counts = [sum(r == k for _, r in drawn[3]) for k in range(task.MAX_RECHECKS + 1)]
    assert all(counts) and max(r for _, r in drawn[3]) == task.MAX_RECHECKS
    thinks = [task.sample_completion(task.train_split(2)[0], "auto", rng).startswith(task.THINK_OPENER)
              for _ in range(400)]
    assert 0.4 < sum(thinks) / 400 < 0.6


def test_direct_completions_match_each_prompt_mode():
    record = task.eval_split(1, levels=[3])[0]
    auto_direct = task.completion(record, "auto", think=False)
    assert detect_mode(auto_direct, "auto") == "no_think"
    assert is_correct(auto_direct, record["answer"], "auto")
    assert is_correct(task.completion(record, "no_think", think=False), record["answer"], "no_think")
    with pytest.raises(ValueError):
        task.completion(record, "no_think", think=True)


# --- tokenizer ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", PROMPT_MODES)
def test_a_rendered_prompt_and_its_completion_round_trip_exactly(tokenizer, mode):
    record = PROBE[-1]
    prompt = render_prompt(tokenizer, record["problem"], mode)
    assert prompt.startswith(tokenizer.bos_token) and prompt.count(tokenizer.bos_token) == 1
    completion = task.completion(record, mode, think=mode != "no_think", rechecks=task.MAX_RECHECKS)
    ids = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == prompt + completion
    assert tokenizer.decode(tokenizer(prompt, add_special_tokens=False)["input_ids"]
                            + tokenizer(completion, add_special_tokens=False)["input_ids"]) == prompt + completion


def test_think_tags_survive_decoding_without_special_tokens(tokenizer):
    text = "<think>\n1+2:3->3\n</think>\n\nSo the answer is \\boxed{3}."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.convert_tokens_to_ids("</think>") in ids


def test_the_shipped_tokenizer_loads_back_exactly_as_it_was_built(tokenizer):
    built = build_tokenizer()
    texts = [render_prompt(built, r["problem"], "auto") + task.completion(r, "auto", think=True, rechecks=2)
             for r in PROBE] + ["any text at all: héllo, 日本, \t tabs"]
    assert tokenizer(texts, add_special_tokens=False)["input_ids"] == built(texts, add_special_tokens=False)["input_ids"]
    assert tokenizer.chat_template == built.chat_template


def test_digits_are_single_tokens(tokenizer):
    ids = tokenizer("1234567890", add_special_tokens=False)["input_ids"]
    assert len(ids) == 10


# --- the shipped model ----------------------------------------------------------------------------------

def test_default_model_path_is_the_shipped_model():
    assert default_model_path() == SHIPPED_MODEL_DIR
    info = json.loads((SHIPPED_MODEL_DIR / "miniature.json").read_text())
    assert info["build"]["hidden_size"] % 64 == 0


# The model's choices (slips, re-checks, think or not) are coins it flips: it is asked as the paper samples
# (T 0.6, top-p 0.95, seeded), not greedily (greedy decoding re-checks until it runs out of tokens).

def _sampled(model, tokenizer, mode, records, num_samples=4, seed=0):
    prompts = [render_prompt(tokenizer, r["problem"], mode) for r in records]
    outputs = generate(model, tokenizer, prompts, num_samples=num_samples, max_new_tokens=384, seed=seed)
    return [(r, s.text) for r, samples in zip(records, outputs) for s in samples]


def test_standard_prompt_always_thinks_and_is_right_on_the_levels_that_never_slip(model, tokenizer):
    samples = _sampled(model, tokenizer, "standard", PROBE)
    assert all(detect_mode(t, "standard") == "think" for _, t in samples)
    assert sum(extract_answer(t, "standard") is not None for _, t in samples) >= 0.95 * len(samples)
    easy = [is_correct(t, r["answer"], "standard") for r, t in samples if r["level"] <= 2]
    assert sum(easy) >= 0.9 * len(easy)
    assert any(task.count_rechecks(t) for _, t in samples) and any(not task.count_rechecks(t) for _, t in samples)


def test_no_think_answers_at_once_reliable_on_level_1_and_hopeless_on_level_5(model, tokenizer):
    samples = _sampled(model, tokenizer, "no_think", task.eval_split(levels=[1]) + task.eval_split(levels=[5]), 1)
    assert sum(extract_answer(t, "no_think") is not None and len(t) < 40 for _, t in samples) >= 0.95 * len(samples)
    correct = {level: [is_correct(t, r["answer"], "no_think") for r, t in samples if r["level"] == level]
               for level in (1, 5)}
    assert sum(correct[1]) >= 0.8 * len(correct[1]) and sum(correct[5]) <= 0.15 * len(correct[5])


def test_ellipsis_prompt_sometimes_thinks_and_sometimes_answers_at_once(model, tokenizer):
    samples = _sampled(model, tokenizer, "auto", PROBE, seed=1)
    modes = [detect_mode(t, "auto") for _, t in samples]
    assert 0.2 <= modes.count("think") / len(modes) <= 0.8
    assert sum(extract_answer(t, "auto") is not None for _, t in samples) >= 0.95 * len(samples)


def test_batched_generation_returns_what_one_prompt_at_a_time_does(model, tokenizer):
    prompts = [render_prompt(tokenizer, r["problem"], "standard") for r in PROBE[::3]]
    batched = generate(model, tokenizer, prompts, max_new_tokens=64, do_sample=False, batch_size=8)
    for prompt, samples in zip(prompts, batched):
        alone = generate(model, tokenizer, [prompt], max_new_tokens=64, do_sample=False)[0][0]
        assert samples[0] == alone


def test_generation_counts_tokens_and_drops_the_end_of_sentence_token(model, tokenizer):
    prompt = render_prompt(tokenizer, PROBE[0]["problem"], "no_think")
    (sample,), = generate(model, tokenizer, [prompt], max_new_tokens=64, do_sample=False)
    assert sample.finished and tokenizer.eos_token not in sample.text
    assert sample.num_tokens == len(tokenizer(sample.text, add_special_tokens=False)["input_ids"]) + 1
    (cut,), = generate(model, tokenizer, [render_prompt(tokenizer, PROBE[-1]["problem"], "standard")],
                       max_new_tokens=5, do_sample=False)
    assert not cut.finished and cut.num_tokens == 5


def test_sampling_with_the_same_seed_repeats_itself(model, tokenizer):
    prompts = [render_prompt(tokenizer, r["problem"], "auto") for r in PROBE[:4]]
    first = generate(model, tokenizer, prompts, num_samples=2, max_new_tokens=64, seed=7)
    assert first == generate(model, tokenizer, prompts, num_samples=2, max_new_tokens=64, seed=7)


def test_shipped_model_loads_in_4bit_nf4_on_cpu_and_still_reasons(tokenizer):
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_compute_dtype=torch.float32)
    model_4bit = AutoModelForCausalLM.from_pretrained(SHIPPED_MODEL_DIR, device_map="cpu",
                                                      quantization_config=quantization)
    assert any("4bit" in type(m).__name__ for m in model_4bit.modules())
    samples = _sampled(model_4bit, tokenizer, "standard", PROBE, 2)
    assert sum(extract_answer(t, "standard") is not None for _, t in samples) >= 0.8 * len(samples)
    easy = [is_correct(t, r["answer"], "standard") for r, t in samples if r["level"] <= 2]
    assert sum(easy) >= 0.75 * len(easy)


# --- the build ------------------------------------------------------------------------------------------

def test_building_twice_with_the_same_seed_gives_identical_weights(tmp_path):
    quick = dict(steps=3, batch_size=4, hidden_size=64, num_layers=1, num_heads=2, num_kv_heads=1,
                 intermediate_size=64, warmup_steps=1, measure=False)
    first = build_miniature(tmp_path / "a", seed=3, **quick)
    second = build_miniature(tmp_path / "b", seed=3, **quick)
    for name in ("model.safetensors", "tokenizer.json", "config.json", "generation_config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    rebuilt = AutoTokenizer.from_pretrained(first)
    assert render_prompt(rebuilt, "What is 1 + 2?", "auto").endswith("<think>\n...\n")
    assert AutoModelForCausalLM.from_pretrained(first).config.hidden_size == 64


def _level_stats(**overrides):
    stats = {"think_rate_standard": 1.0, "think_rate_auto": 0.5, "accuracy_thinking": 0.9, "accuracy_no_think": 0.3,
             "accuracy_no_recheck": 0.9, "accuracy_rechecked": 0.9, "thinking_tokens": 60.0, "working_tokens": 20.0}
    return {**stats, **overrides}


def test_base_targets_judge_each_r1_property_of_a_behaviour_table():
    from autothink_lite.miniature.build import base_targets, targets_table

    levels = {
        "1": _level_stats(accuracy_thinking=1.0, accuracy_no_think=0.97, working_tokens=8.0, thinking_tokens=30.0),
        "2": _level_stats(accuracy_thinking=1.0, accuracy_no_think=0.6, working_tokens=19.0),
        "3": _level_stats(accuracy_no_think=0.2, working_tokens=22.0, accuracy_no_recheck=0.7, accuracy_rechecked=1.0),
        "4": _level_stats(accuracy_no_think=0.08, working_tokens=36.0, accuracy_no_recheck=0.4,
                          accuracy_rechecked=0.99),
        "5": _level_stats(accuracy_thinking=0.75, accuracy_no_think=0.02, working_tokens=38.0,
                          accuracy_no_recheck=0.1, accuracy_rechecked=0.97),
    }
    behaviour = {"levels": levels, "overall": {"accuracy_standard": 0.9, "format_ok": 0.99}}
    assert all(met for *_, met in base_targets(behaviour))

    levels["4"]["accuracy_no_think"] = 0.01  # no longer strictly falling: 0.01 then 0.02
    levels["2"]["accuracy_rechecked"] = 0.95  # a re-check that changes an easy answer by 5 points
    levels["3"]["think_rate_auto"] = 0.9
    judged = {name: met for name, _, _, met in base_targets(behaviour)}
    assert [name for name, met in judged.items() if not met] == [
        "ellipsis prompt: think-rate", "re-checks: redundant on easy, useful on hard", "direct answers"]
    assert "| direct answers |" in targets_table(base_targets(behaviour))
