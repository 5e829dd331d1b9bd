"""The miniature R1: task, tokenizer, the shipped model in fp32 and nf4 4-bit, generation, a deterministic build."""

from __future__ import annotations

import json
import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from autothink_lite.generation import generate
from autothink_lite.grading import is_correct
from autothink_lite.miniature import SHIPPED_MODEL_DIR, default_model_path, task
from autothink_lite.miniature.build import build_miniature
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


def _answers(model, tokenizer, mode, records=PROBE, **kwargs):
    prompts = [render_prompt(tokenizer, r["problem"], mode) for r in records]
    return [samples[0].text for samples in generate(model, tokenizer, prompts, max_new_tokens=256, **kwargs)]


# --- task -----------------------------------------------------------------------------------------------

def test_train_and_eval_splits_never_share_a_problem():
    eval_texts = {r["problem"] for r in task.eval_split()}
    assert len(eval_texts) == len(task.LEVELS) * task.EVAL_PER_LEVEL
    for level in task.LEVELS:
        assert not eval_texts & {r["problem"] for r in task.train_split(level)}


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
            assert working.rsplit("->", 1)[1] == record["answer"]
            trace = task.reasoning_trace(record, rechecks=2, rng=rng)
            assert trace.count(working) == 3
            text = task.completion(record, "standard", think=True, rechecks=1, rng=rng)
            assert extract_answer(text, "standard") == record["answer"]


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


def test_standard_prompt_thinks_and_gets_every_level_right(model, tokenizer):
    texts = _answers(model, tokenizer, "standard", do_sample=False)
    assert all(detect_mode(t, "standard") == "think" for t in texts)
    correct = [is_correct(t, r["answer"], "standard") for t, r in zip(texts, PROBE)]
    assert sum(correct) >= len(PROBE) - 2, texts


def test_no_think_prompt_answers_at_once_and_gets_easy_problems_right(model, tokenizer):
    texts = _answers(model, tokenizer, "no_think", do_sample=False)
    assert all(extract_answer(t, "no_think") is not None for t in texts)
    assert all("Wait" not in t and len(t) < 40 for t in texts)
    level_1 = [is_correct(t, r["answer"], "no_think") for t, r in zip(texts, PROBE) if r["level"] == 1]
    assert all(level_1), texts


def test_ellipsis_prompt_sometimes_thinks_and_sometimes_answers_at_once(model, tokenizer):
    prompts = [render_prompt(tokenizer, r["problem"], "auto") for r in PROBE]
    samples = [s for group in generate(model, tokenizer, prompts, num_samples=4, max_new_tokens=256, seed=1)
               for s in group]
    modes = [detect_mode(s.text, "auto") for s in samples]
    assert 0.2 <= modes.count("think") / len(modes) <= 0.8
    assert sum(extract_answer(s.text, "auto") is not None for s in samples) >= 0.95 * len(samples)


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
    texts = _answers(model_4bit, tokenizer, "standard", do_sample=False)
    assert sum(extract_answer(t, "standard") is not None for t in texts) >= 0.8 * len(texts)
    assert sum(is_correct(t, r["answer"], "standard") for t, r in zip(texts, PROBE)) >= 0.6 * len(PROBE)


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
