"""`autothink export` on the shipped miniature and a small random LoRA: the merged model answers as the adapter
does, its chat template renders the three prompt modes exactly as `render_prompt`, and the GGUF files, made by
llama.cpp's own converters, answer as transformers does (those tests need a llama.cpp checkout, sentencepiece
and llama-cpp-python, and are skipped, saying so, without them)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from autothink_lite.export import (
    ADAPTER_GGUF,
    BASE_GGUF,
    MODEL_GGUF,
    MODELFILE,
    ExportError,
    check_mode_template,
    export,
    find_llama_cpp,
    mode_chat_template,
    modelfile,
    turn_parts,
)
from autothink_lite.modeling import load_for_inference, load_tokenizer, resolve_model_path
from autothink_lite.prompts import INSTRUCTION, PROMPT_MODES, render_prompt
from conftest import BOS, R1_TEMPLATE, R1_TEMPLATE_WITHOUT_THINK, make_tokenizer

QUESTIONS = ["What is 37 + 48?", "What is 478 * 6?", "What is 9 - 4?", "What is 1234 + 8765?"]
NEW_TOKENS = 48
ELLIPSIS_PROMPT_END = "<｜Assistant｜><think>\n...\n"


def make_adapter(folder: Path) -> Path:
    """A LoRA of the miniature with random weights, large enough to change its answers, saved as a stage's final
    adapter would be (stage.json names the base as the recipe did: 'mini')."""
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_for_inference("mini", dtype="float32")
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                        init_lora_weights=False)
    lora = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in lora.named_parameters():
            if "lora_B" in name:
                parameter.mul_(0.3)
    lora.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "stage.json").write_text(json.dumps({"stage": 3, "base_model": "mini"}))
    return folder


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> Path:
    return make_adapter(tmp_path_factory.mktemp("run") / "stage3" / "final")


@pytest.fixture(scope="module")
def exported(adapter, tmp_path_factory) -> Path:
    return export(str(adapter), tmp_path_factory.mktemp("export") / "out").out


def greedy(model, tokenizer, prompts: list[str]) -> list[list[int]]:
    answers = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            out = model.generate(ids, do_sample=False, max_new_tokens=NEW_TOKENS, pad_token_id=tokenizer.pad_token_id)
        answers.append(out[0, ids.shape[1]:].tolist())
    return answers


def prompts_of(tokenizer) -> list[str]:
    return [render_prompt(tokenizer, q, mode) for q in QUESTIONS[:2] for mode in PROMPT_MODES]


def test_the_merged_model_loads_with_plain_transformers_and_answers_greedily_as_base_plus_adapter(adapter, exported):
    from transformers import AutoModelForCausalLM

    assert not (exported / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(exported, dtype=torch.float32).eval()
    assert not hasattr(merged, "peft_config") and merged.dtype == torch.float32  # the miniature's own precision
    peft_model, tokenizer = load_for_inference("mini", [str(adapter)], dtype="float32")
    prompts = prompts_of(tokenizer)
    with_adapter = greedy(peft_model, tokenizer, prompts)
    assert greedy(merged, load_tokenizer(str(exported)), prompts) == with_adapter
    with peft_model.disable_adapter():
        assert greedy(peft_model, tokenizer, prompts) != with_adapter, "the adapter should change some answer"


def test_the_exported_chat_template_renders_the_three_prompt_modes_exactly_as_render_prompt(exported):
    original, ours = load_tokenizer(resolve_model_path("mini")), load_tokenizer(str(exported))
    assert (exported / "chat_template.jinja").read_text() == ours.chat_template
    for question in QUESTIONS:
        for system in (None, "Answer briefly."):
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": f"{question} {INSTRUCTION}"}]
            for mode, kwargs in {"auto": {}, "standard": {"thinking": True}, "no_think": {"thinking": False}}.items():
                rendered = ours.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)
                assert rendered == render_prompt(original, question, mode, system_prompt=system)
    assert render_prompt(original, "What is 2 + 2?", "auto").endswith(ELLIPSIS_PROMPT_END)


def test_qwen3s_enable_thinking_switch_works_too_and_a_history_renders_as_the_base_renders_it(exported):
    original, ours = load_tokenizer(resolve_model_path("mini")), load_tokenizer(str(exported))
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    off = ours.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert off == render_prompt(original, "What is 2 + 2?", "no_think", instruction=None)
    history = messages + [{"role": "assistant", "content": "<think>\n2 + 2 = 4\n</think>\n\n\\boxed{4}"}]
    assert ours.apply_chat_template(history, tokenize=False) == original.apply_chat_template(history, tokenize=False)


@pytest.mark.parametrize("template", [R1_TEMPLATE, R1_TEMPLATE_WITHOUT_THINK], ids=["with_think", "without_think"])
def test_the_wrapped_real_r1_distill_templates_render_the_three_modes_exactly_as_render_prompt(template):
    original, ours = make_tokenizer(template), make_tokenizer(mode_chat_template(template))
    check_mode_template(ours, original)  # raises on any difference, with and without a system prompt
    rendered = ours.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "<｜begin▁of▁sentence｜><｜User｜>Hi" + ELLIPSIS_PROMPT_END


def test_a_template_the_wrapper_cannot_follow_is_refused_not_exported():
    original = make_tokenizer(R1_TEMPLATE)
    odd = make_tokenizer(mode_chat_template(R1_TEMPLATE).replace('"...\\n"', '"…\\n"'))
    with pytest.raises(ExportError, match="renders the auto prompt"):
        check_mode_template(odd, original)


def test_the_generation_config_carries_the_papers_sampling(exported):
    config = json.loads((exported / "generation_config.json").read_text())
    assert (config["temperature"], config["top_p"], config["do_sample"]) == (0.6, 0.95, True)
    assert config["eos_token_id"] == load_tokenizer(str(exported)).eos_token_id


def test_the_ollama_modelfile_sends_the_ellipsis_prompt_with_the_papers_sampling_and_stop_tokens(exported):
    parts = turn_parts(load_tokenizer(str(exported)), runtime_adds_bos=False)
    text = modelfile(parts, "./model.gguf")
    assert text.startswith("FROM ./model.gguf\nTEMPLATE \"\"\"")
    assert '{{ "<｜Assistant｜><think>\\n...\\n" }}' in text  # a Go string constant: \n is a newline there
    assert "PARAMETER temperature 0.6\nPARAMETER top_p 0.95\n" in text
    assert 'PARAMETER stop "<｜end▁of▁sentence｜>"' in text and 'PARAMETER stop "<｜User｜>"' in text
    # The pieces, in the TEMPLATE's order for one user message, give render_prompt's auto prompt.
    question = "What is 2 + 2?"
    assert parts.start + parts.user + question + parts.generation == render_prompt(
        load_tokenizer(resolve_model_path("mini")), question, "auto", instruction=None)
    lora = modelfile(parts, "./base.gguf", "./adapter.gguf")
    assert lora.startswith("FROM ./base.gguf\nADAPTER ./adapter.gguf\n")


def test_a_template_that_drops_the_system_prompt_gets_no_ollama_template_but_a_fix():
    dropping = R1_TEMPLATE.replace("{{bos_token}}{{ns.system_prompt}}", "{{bos_token}}")
    with pytest.raises(ExportError, match="write the Modelfile's TEMPLATE by hand"):
        turn_parts(make_tokenizer(mode_chat_template(dropping)), runtime_adds_bos=False)


def test_a_bos_the_runtime_adds_itself_is_left_out_of_the_ollama_template():
    parts = turn_parts(make_tokenizer(mode_chat_template(R1_TEMPLATE)), runtime_adds_bos=True)
    assert parts.start == "" and parts.user == "<｜User｜>" and parts.generation == ELLIPSIS_PROMPT_END


# ----------------------------------------------------------------------------------- command line


def test_a_non_empty_out_folder_is_kept_unless_overwrite_is_given(adapter, tmp_path, autothink):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, errors = autothink("export", adapter, "--out", out)
    assert code == 2 and len(errors) == 1 and "--overwrite" in errors[0] and str(out) in errors[0]
    assert (out / "notes.txt").read_text() == "mine"
    code, errors = autothink("export", adapter, "--out", out, "--overwrite")
    assert code == 0 and not errors
    assert not (out / "notes.txt").exists() and (out / "model.safetensors").is_file()


def test_overwrite_never_deletes_a_folder_holding_the_adapter(adapter, autothink):
    code, errors = autothink("export", adapter, "--out", adapter.parents[1], "--overwrite")
    assert code == 2 and "holds the adapter" in errors[0]
    assert (adapter / "adapter_model.safetensors").is_file()


def test_a_bad_adapter_gets_one_line_naming_it_and_the_fix(tmp_path, autothink):
    code, errors = autothink("export", tmp_path / "nowhere", "--out", tmp_path / "out")
    assert code == 2 and len(errors) == 1 and "does not exist" in errors[0] and "final/" in errors[0]
    (tmp_path / "empty").mkdir()
    code, errors = autothink("export", tmp_path / "empty", "--out", tmp_path / "out")
    assert code == 2 and "not a LoRA adapter folder" in errors[0]
    assert not (tmp_path / "out").exists()


def test_an_adapter_that_does_not_name_its_base_asks_for_base(adapter, tmp_path, autothink):
    bare = tmp_path / "bare"
    bare.mkdir()
    config = json.loads((adapter / "adapter_config.json").read_text())
    (bare / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": None}))
    (bare / "adapter_model.safetensors").write_bytes((adapter / "adapter_model.safetensors").read_bytes())
    code, errors = autothink("export", bare, "--out", tmp_path / "out")
    assert code == 2 and "pass --base" in errors[0]
    code, errors = autothink("export", bare, "--out", tmp_path / "out", "--base", tmp_path / "no-base")
    assert code == 2 and len(errors) == 1 and "no such model folder" in errors[0]
    assert not (tmp_path / "out").exists()


def test_gguf_without_llama_cpp_says_where_to_get_it_before_any_work(adapter, tmp_path, autothink, monkeypatch):
    monkeypatch.setenv("LLAMA_CPP_DIR", str(tmp_path / "no-llama"))
    monkeypatch.setenv("AUTOTHINK_CACHE", str(tmp_path / "cache"))
    code, errors = autothink("export", adapter, "--out", tmp_path / "out", "--gguf")
    assert code == 2 and len(errors) == 1
    assert "convert_hf_to_gguf.py" in errors[0] and "git clone" in errors[0] and "LLAMA_CPP_DIR" in errors[0]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ GGUF


def llama_cpp_or_skip():
    try:
        find_llama_cpp()
    except ExportError as err:
        pytest.skip(f"no GGUF converter here: {err}")
    try:
        import llama_cpp
    except ImportError:
        pytest.skip("llama-cpp-python is not installed (pip install llama-cpp-python==0.3.36) to run the GGUF")
    return llama_cpp


def gguf_greedy(llm, tokens: list[int]) -> list[int]:
    answer = []
    for token in llm.generate(tokens, top_k=1, temp=0.0, reset=True):
        if token == llm.token_eos() or len(answer) == NEW_TOKENS:
            break
        answer.append(token)
    return answer


def agreement(ours: list[list[int]], theirs: list[list[int]]) -> float:
    """The share of answers that are token for token the same."""
    return sum(a == b for a, b in zip(ours, theirs)) / len(ours)


@pytest.fixture(scope="module")
def hf_answers(adapter):
    model, tokenizer = load_for_inference("mini", [str(adapter)], dtype="float32")
    prompts = [render_prompt(tokenizer, q, mode) for q in QUESTIONS for mode in PROMPT_MODES]
    answers = [a[:a.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in a else a
               for a in greedy(model, tokenizer, prompts)]
    return prompts, [tokenizer(p, add_special_tokens=False).input_ids for p in prompts], answers


def test_the_merged_gguf_tokenizes_as_transformers_and_answers_greedily_the_same(adapter, tmp_path, hf_answers):
    llama_cpp = llama_cpp_or_skip()
    done = export(str(adapter), tmp_path / "out", gguf=True, ollama=True, gguf_type="f32")
    assert {MODEL_GGUF, MODELFILE} <= set(done.files) and "FROM ./model.gguf" in (done.out / MODELFILE).read_text()
    assert json.loads((done.out / "export.json").read_text())["pre_tokenizer_override"] == "qwen2"
    llm = llama_cpp.Llama(str(done.out / MODEL_GGUF), n_ctx=512, n_threads=1, verbose=False)
    prompts, hf_tokens, hf = hf_answers
    assert [llm.tokenize(p.encode(), add_bos=False, special=True) for p in prompts] == hf_tokens
    gguf = [gguf_greedy(llm, tokens) for tokens in hf_tokens]
    assert agreement(gguf, hf) >= 0.9, [(llm.detokenize(a), llm.detokenize(b)) for a, b in zip(gguf, hf) if a != b]
    # The GGUF carries the mode chat template, and llama-cpp-python's own Jinja renderer reads it alike.
    template = llm.metadata["tokenizer.chat_template"]
    assert template == (done.out / "chat_template.jinja").read_text()
    formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(template, "<｜end▁of▁sentence｜>", BOS)
    tokenizer = load_tokenizer(resolve_model_path("mini"))
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    for mode, kwargs in {"auto": {}, "standard": {"thinking": True}, "no_think": {"thinking": False}}.items():
        expected = render_prompt(tokenizer, "What is 2 + 2?", mode, instruction=None)
        assert formatter(messages=messages, **kwargs).prompt == expected


def test_the_gguf_lora_on_the_base_gguf_answers_greedily_as_base_plus_adapter(adapter, tmp_path, hf_answers):
    llama_cpp = llama_cpp_or_skip()
    done = export(str(adapter), tmp_path / "out", gguf_lora=True, ollama=True, gguf_type="f32")
    assert {ADAPTER_GGUF, BASE_GGUF, MODELFILE} <= set(done.files) and MODEL_GGUF not in done.files
    assert "FROM ./base.gguf\nADAPTER ./adapter.gguf" in (done.out / MODELFILE).read_text()
    llm = llama_cpp.Llama(str(done.out / BASE_GGUF), lora_path=str(done.out / ADAPTER_GGUF), n_ctx=512, n_threads=1,
                          verbose=False)
    _, hf_tokens, hf = hf_answers
    gguf = [gguf_greedy(llm, tokens) for tokens in hf_tokens]
    assert agreement(gguf, hf) >= 0.9, [(llm.detokenize(a), llm.detokenize(b)) for a, b in zip(gguf, hf) if a != b]
