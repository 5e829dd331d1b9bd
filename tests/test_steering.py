"""The think-eagerness knob on the shipped miniature: a bias on `</think>` at the decision point only."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from autothink_lite.miniature import SHIPPED_MODEL_DIR, task
from autothink_lite.prompts import detect_mode, render_prompt
from autothink_lite.steering import (
    SteeringError,
    ThinkBias,
    biased_skip_probability,
    check_bias,
    skip_probability,
    think_bias_processors,
)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(SHIPPED_MODEL_DIR)


@pytest.fixture(scope="module")
def model():
    return AutoModelForCausalLM.from_pretrained(SHIPPED_MODEL_DIR, dtype=torch.float32).eval()


def auto_prompt(tokenizer, level: int) -> str:
    return render_prompt(tokenizer, task.eval_split(1, levels=[level])[0]["problem"], "auto")


def test_the_bias_moves_the_decision_probability_as_the_formula_says(model, tokenizer):
    prompt = auto_prompt(tokenizer, 3)
    p = skip_probability(model, tokenizer, prompt)
    assert 0.0 < p < 1.0
    for bias in (-2.0, 1.0, 3.0):
        assert skip_probability(model, tokenizer, prompt, bias=bias) == pytest.approx(
            biased_skip_probability(p, bias), rel=1e-4)
    assert skip_probability(model, tokenizer, prompt, bias=3.0) < p < skip_probability(model, tokenizer, prompt, bias=-3.0)


def sampled_modes(model, tokenizer, bias: float, n: int = 24) -> tuple[list[str], list[str]]:
    prompt = auto_prompt(tokenizer, 3)
    ids = tokenizer([prompt] * n, add_special_tokens=False, return_tensors="pt")
    torch.manual_seed(0)
    out = model.generate(**ids, do_sample=True, temperature=0.6, top_p=0.95, max_new_tokens=384,
                         logits_processor=think_bias_processors(tokenizer, bias),
                         pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    texts = tokenizer.batch_decode(out[:, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    return [detect_mode(t, "auto") for t in texts], texts


def test_a_large_bias_decides_every_sample_and_thinking_still_closes(model, tokenizer):
    modes, texts = sampled_modes(model, tokenizer, 20.0)
    assert modes == ["think"] * len(modes)
    # only the decision point is biased: the reasoning still ends with </think> and a boxed answer
    assert sum("</think>" in t and "\\boxed{" in t for t in texts) >= 0.9 * len(texts)
    modes, _ = sampled_modes(model, tokenizer, -20.0)
    assert modes == ["no_think"] * len(modes)


def test_bias_zero_adds_no_processor_and_one_instance_biases_one_position():
    assert think_bias_processors(AutoTokenizer.from_pretrained(SHIPPED_MODEL_DIR), 0.0) == []
    bias = ThinkBias(close_id=2, bias=1.5)
    scores = torch.zeros(2, 5)
    first = bias(torch.zeros(2, 7, dtype=torch.long), scores)
    assert first[:, 2].tolist() == [-1.5, -1.5] and scores[:, 2].tolist() == [0.0, 0.0]  # not in place
    later = bias(torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 5))
    assert later.abs().sum().item() == 0.0


@pytest.mark.parametrize("bias", [float("nan"), 1e6, "2"])
def test_a_bias_that_is_not_a_sane_number_is_refused_with_the_range(bias):
    with pytest.raises(SteeringError, match="between -100 and 100"):
        check_bias(bias)


class CharacterTokenizer:
    """A tokenizer without </think> in its vocabulary: one id per character, as byte-level BPEs fall back to."""

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


def test_a_tokenizer_without_a_think_token_is_named():
    with pytest.raises(SteeringError, match=r"as 8 tokens .*--think-bias 0"):
        think_bias_processors(CharacterTokenizer(), 1.0)
    assert think_bias_processors(CharacterTokenizer(), 0.0) == []  # no bias: nothing to check


# ------------------------------------------------------------------ the knob through the command line


def cli(*argv) -> int:
    from autothink_lite.cli import main
    try:
        main([str(a) for a in argv])
    except SystemExit as done:
        return done.code
    return 0


def test_eval_with_a_think_bias_labels_and_fingerprints_its_results_apart(tmp_path):
    from autothink_lite.results import read_rows, summarize_dir

    out = tmp_path / "ev"
    common = ("eval", "--modes", "auto", "--limit", "3", "--samples", "2", "--max-new-tokens", "64", "--output", out)
    assert cli(*common, "--think-bias", "20") == 0
    assert cli(*common, "--think-bias", "-20") == 0
    assert cli(*common) == 0  # the unbiased run beside them: its own file, nothing refused
    table = summarize_dir(out)["mini"]
    assert {str(k) for k in table} == {"base@bias+20 auto", "base@bias-20 auto", "base auto"}
    assert table["base@bias+20 auto"]["think_rate"] == 1.0 and table["base@bias-20 auto"]["think_rate"] == 0.0
    prov = json.loads((out / "base@bias+20" / "mini" / "auto.provenance.json").read_text())
    assert prov["think_bias"] == 20.0
    assert "think_bias" not in json.loads((out / "base" / "mini" / "auto.provenance.json").read_text())
    assert len(read_rows(out / "base@bias-20" / "mini" / "auto.jsonl")) == 6


def test_a_think_bias_out_of_range_is_one_line_exit_2(tmp_path, caplog):
    assert cli("eval", "--think-bias", "1000", "--output", tmp_path / "ev") == 2
    assert "--think-bias 1000.0: give a number between -100 and 100" in caplog.text
    assert not (tmp_path / "ev").exists()


def test_sweep_evaluates_each_bias_for_the_model_and_its_base_and_draws_the_frontier(tmp_path, capsys):
    from peft import LoraConfig, get_peft_model

    model = AutoModelForCausalLM.from_pretrained(SHIPPED_MODEL_DIR, dtype=torch.float32)
    torch.manual_seed(0)
    adapter = tmp_path / "run" / "stage3" / "final"
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)).save_pretrained(adapter)
    out = tmp_path / "sw"
    assert cli("sweep", "--adapter", adapter, "--biases", "-20", "20", "--limit", "2", "--max-new-tokens", "48",
               "--output", out) == 0
    shown = capsys.readouterr().out
    for row in ("| base standard |", "| base no_think |", "| base@bias-20 auto |", "| base@bias+20 auto |",
                "| stage3@bias-20 auto |", "| stage3@bias+20 auto |"):
        assert row in shown, row
    results = json.loads((out / "sweep.json").read_text())
    assert results["biases"] == [-20.0, 20.0]
    assert results["results"]["mini"]["stage3@bias-20 auto"]["think_rate"] == 0.0
    assert (out / "bias_frontier_mini.png").stat().st_size > 10_000


def test_five_biases_move_the_think_rate_monotonically_on_the_miniature(tmp_path):
    """The knob's promise: more bias, more thinking (the base decides about half the time at bias 0)."""
    out = tmp_path / "sw"
    assert cli("sweep", "--biases", "-6", "-3", "0", "3", "6", "--limit", "8", "--samples", "2",
               "--max-new-tokens", "32", "--output", out) == 0
    table = json.loads((out / "sweep.json").read_text())["results"]["mini"]
    rates = [table[key]["think_rate"] for key in ("base@bias-6 auto", "base@bias-3 auto", "base auto",
                                                  "base@bias+3 auto", "base@bias+6 auto")]
    assert rates == sorted(rates) and rates[0] < 0.2 and rates[-1] > 0.8, rates
