"""Evaluation: generate on a benchmark in one prompt mode, grade, and summarise as the paper does.

Every sample is appended to `<out>/<mode>.jsonl` as soon as its batch finishes, so a killed evaluation
resumes where it stopped without redoing finished samples. Summaries (pass@1 averaged over samples, mean
tokens, think-rate, accuracy of think vs no-think samples, each also per difficulty level) are pure
functions of those rows.

Each results file knows what produced it: `<mode>.provenance.json` beside it holds the model and adapters
(sha256 of their weights; a Hub model by its id), the benchmark (sha256 of its problems), the prompt mode
and everything that decides how a sample is drawn (max tokens, temperature, top-p, seed, 4-bit, dtype), and
every row carries that provenance's fingerprint. A resume reuses only rows of the same fingerprint; a file
holding other rows is refused (or, told to overwrite, replaced), so results of two models never mix. More
samples or a larger limit extend a file; batch size is a speed knob and is not part of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from autothink_lite.grading import is_correct
from autothink_lite.metrics import efficiency_f1
from autothink_lite.prompts import detect_mode, extract_answer, render_prompt, split_completion

logger = logging.getLogger(__name__)


class EvalError(ValueError):
    """An evaluation that cannot run as asked (bad settings, results of another evaluation in the way), with the fix."""


@dataclass
class EvalSettings:
    samples: int = 1
    max_new_tokens: int = 1024
    temperature: float = 0.6
    top_p: float = 0.95
    batch_size: int = 32
    seed: int = 0

    def check(self) -> None:
        for flag, value in (("--samples", self.samples), ("--max-new-tokens", self.max_new_tokens),
                            ("--batch-size", self.batch_size)):
            if value < 1:
                raise EvalError(f"{flag} {value}: must be at least 1")
        if not self.temperature > 0:
            raise EvalError(f"--temperature {self.temperature}: sampling needs a temperature above 0 (paper: 0.6)")
        if not 0 < self.top_p <= 1:
            raise EvalError(f"--top-p {self.top_p}: must be in (0, 1] (paper: 0.95)")


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
    from autothink_lite.generation import generate

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
                           top_p=settings.top_p, seed=settings.seed + start, batch_size=settings.batch_size)
        new_rows = []
        for record, completions in zip(chunk, outputs):
            for sample, completion in enumerate(completions):
                if (record["id"], sample) not in done:
                    row = sample_row(record, sample, prompt_mode, completion.text, completion.num_tokens,
                                     completion.finished, tokenizer)
                    if fingerprint:
                        row["provenance"] = fingerprint
                    new_rows.append(row)
        with out_file.open("a") as f:
            f.writelines(json.dumps(row) + "\n" for row in new_rows)
        rows.extend(new_rows)
        logger.info("%s: %d / %d problems", prompt_mode, min(start + settings.batch_size, len(todo)), len(todo))
    return rows


def evaluate_model(
    model_name: str,
    adapters: list[str],
    benchmarks: list[str],
    modes: list[str],
    settings: EvalSettings,
    out_dir: Path,
    *,
    label: str | None = None,
    load_in_4bit: bool = False,
    dtype: str = "float32",
    limit: int | None = None,
    overwrite: bool = False,
) -> str:
    """Evaluate a base (+ adapters) on benchmarks x modes into `out_dir/<label>/<benchmark>/<mode>.jsonl`.

    Every results file is checked before the model is loaded: one holding samples of another evaluation
    (see `provenance`) raises EvalError, or with `overwrite` is deleted and redone."""
    from autothink_lite.data import load_benchmark

    settings.check()
    if limit is not None and limit < 1:
        raise EvalError(f"--limit {limit}: give at least 1 problem per benchmark, or leave --limit out for all")
    check_writable(out_dir, "--output")
    label = label or run_label(adapters)
    adapters = [resolve_adapter(a) for a in adapters]
    identity = {"model": model_identity(model_name), "adapters": [weights_identity(Path(a), ADAPTER_FILES)
                                                                  for a in adapters]}
    plan = []
    for benchmark in benchmarks:
        records = load_benchmark(benchmark)
        benchmark_id = {"name": benchmark, "sha256": records_sha256(records)}
        records = records[:limit] if limit else records
        for mode in modes:
            out_file = out_dir / label / benchmark_slug(benchmark) / f"{mode}.jsonl"
            prov = provenance(identity, benchmark_id, mode, settings, load_in_4bit=load_in_4bit, dtype=dtype)
            plan.append((records, mode, out_file, prepare_results_file(out_file, prov, overwrite=overwrite)))
    model, tokenizer = load_model_for_eval(model_name, adapters, load_in_4bit=load_in_4bit, dtype=dtype)
    for records, mode, out_file, fingerprint in plan:
        evaluate_mode(model, tokenizer, records, mode, settings, out_file, fingerprint)
    return label


def check_writable(folder: Path, flag: str, error: type[Exception] = EvalError) -> None:
    """Fail before any work when `folder` cannot be created or written to (read-only, or a file in the way).

    Raises `error` (the caller's own error type, e.g. RecipeError for a run folder) naming `flag` as the fix."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".autothink-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise error(f"cannot write to {folder} ({err.strerror or err}): pass another {flag}, or make "
                    "that folder writable") from None


# ------------------------------------------------------------------------------------------ provenance

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
MODEL_FILES = ("config.json", "*.safetensors", "*.bin", "tokenizer.json", "tokenizer_config.json",
               "chat_template.jinja")
LOCATION_KEYS = {"base_model_name_or_path", "_name_or_path"}  # where a config was saved from, not what it is
# What differs between two provenances, in the words of the error message.
PROVENANCE_WORDS = {"model": "base model", "adapters": "adapter weights", "benchmark": "benchmark problems",
                    "mode": "prompt mode", "max_new_tokens": "max new tokens", "temperature": "temperature",
                    "top_p": "top-p", "seed": "seed", "load_in_4bit": "4-bit loading", "dtype": "dtype"}


def provenance(identity: dict[str, Any], benchmark: dict[str, str], mode: str, settings: EvalSettings, *,
               load_in_4bit: bool, dtype: str) -> dict[str, Any]:
    """What produced a results file: everything that decides what one of its rows can be."""
    return {**identity, "benchmark": benchmark, "mode": mode, "max_new_tokens": settings.max_new_tokens,
            "temperature": settings.temperature, "top_p": settings.top_p, "seed": settings.seed,
            "load_in_4bit": load_in_4bit, "dtype": dtype}


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


def resolve_adapter(adapter: str) -> str:
    """A local folder holding the adapter (a Hub id is downloaded, or fails with a HubError saying why)."""
    from autothink_lite.hub import pull_adapter
    from autothink_lite.modeling import check_adapter

    check_adapter(adapter)
    return pull_adapter(adapter)


def model_identity(model_name: str) -> dict[str, Any]:
    """A Hub model by its id; a local folder (the miniature included) by the sha256 of its weights and config."""
    from autothink_lite.modeling import resolve_model_path

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


def load_model_for_eval(model_name: str, adapters: list[str], *, load_in_4bit: bool, dtype: str) -> tuple[Any, Any]:
    """vLLM when it is installed and a GPU is present (one adapter at most), else transformers + peft."""
    from autothink_lite.generation import VLLMEngine, vllm_available
    from autothink_lite.modeling import load_for_inference, load_tokenizer, resolve_model_path

    if not (vllm_available() and len(adapters) <= 1):
        return load_for_inference(model_name, adapters, load_in_4bit=load_in_4bit, dtype=dtype)
    from autothink_lite.hub import pull_adapter

    adapter = pull_adapter(adapters[0]) if adapters else None
    rank = json.loads((Path(adapter) / "adapter_config.json").read_text())["r"] if adapter else 64
    path = resolve_model_path(model_name)
    logger.info("generating with vLLM%s", f" + LoRA {adapter}" if adapter else "")
    return VLLMEngine(path, adapter, lora_rank=rank, load_in_4bit=load_in_4bit), load_tokenizer(path)


def run_label(adapters: list[str]) -> str:
    """`base` without adapters; else the last adapter's name (a stage folder for runs/x/stage3/final)."""
    if not adapters:
        return "base"
    path = Path(adapters[-1])
    return path.parent.name if path.name == "final" else path.name


def benchmark_slug(benchmark: str) -> str:
    return Path(benchmark).stem if benchmark.endswith((".json", ".jsonl")) else benchmark.replace("/", "__")


BASE_RUN = "base"
ROW_KEYS = {"id", "mode", "correct", "tokens", "answer"}  # what a summary reads from a results row
MODE_ORDER = ("standard", "no_think", "auto")


def summarize_dir(eval_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{benchmark: {"<run> <mode>": summary}} for every results file under `eval_dir`, with E-F1 against
    `base standard` / `base no_think` where those runs exist."""
    out = {}
    for benchmark, results in read_eval_dir(Path(eval_dir)).items():
        out[benchmark] = {key: summarize(rows) for key, rows in results.items()}
        add_efficiency_f1(out[benchmark], f"{BASE_RUN} standard", f"{BASE_RUN} no_think")
    return out


def read_eval_dir(eval_dir: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{benchmark: {"<run> <mode>": rows}}, runs in order base, stage1, stage2, ..., others; modes in MODE_ORDER."""
    results: dict[str, dict[str, list]] = {}
    for run_dir in sorted((d for d in eval_dir.iterdir() if d.is_dir()), key=lambda d: run_order(d.name)):
        for bench_dir in sorted(d for d in run_dir.iterdir() if d.is_dir()):
            for path in sorted(bench_dir.glob("*.jsonl"), key=lambda p: mode_order(p.stem)):
                rows = read_rows(path)
                if not rows:
                    logger.warning("%s holds no samples; left out of the report", path)
                    continue
                if not all(isinstance(r, dict) and ROW_KEYS <= r.keys() for r in rows):
                    logger.warning("%s does not hold evaluation samples; left out of the report", path)
                    continue
                results.setdefault(bench_dir.name, {})[f"{run_dir.name} {path.stem}"] = rows
    return results


def run_order(run: str) -> tuple:
    stage = re.fullmatch(r"stage(\d+)", run)
    if run == BASE_RUN:
        return (0, 0, "")
    return (1, int(stage.group(1)), "") if stage else (2, 0, run)


def mode_order(mode: str) -> tuple:
    return (MODE_ORDER.index(mode), "") if mode in MODE_ORDER else (len(MODE_ORDER), mode)


def sample_row(record: dict, sample: int, prompt_mode: str, text: str, num_tokens: int, finished: bool,
               tokenizer: Any) -> dict[str, Any]:
    reasoning, _ = split_completion(text, prompt_mode)
    reasoning_tokens = len(tokenizer(reasoning, add_special_tokens=False)["input_ids"]) if reasoning else 0
    return {
        "id": record["id"],
        "sample": sample,
        "level": record.get("level"),
        "prompt_mode": prompt_mode,
        "mode": detect_mode(text, prompt_mode),
        "tokens": num_tokens,
        "reasoning_tokens": min(reasoning_tokens, num_tokens),
        "answer_tokens": max(num_tokens - reasoning_tokens, 0),
        "finished": finished,
        "answer": extract_answer(text, prompt_mode),
        "gold": record["answer"],
        "correct": is_correct(text, record["answer"], prompt_mode),
        "completion": text,
    }


def drop_partial_last_line(path: Path) -> None:
    """A kill mid-write leaves a last line without its newline; cut it, or the next append would join it."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        logger.warning("%s: dropping a partly written last line (that sample is redone)", path)
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results file; a line cut by a kill mid-write is dropped (that sample is redone)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("%s: skipping a partly written line", path)
    return rows


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """pass@1 (mean correctness over all samples), tokens, think-rate, per-mode accuracy; and per level."""
    rows = list(rows)
    summary = _stats(rows)
    by_level: dict[int, list] = defaultdict(list)
    for row in rows:
        if row.get("level") is not None:
            by_level[int(row["level"])].append(row)
    if by_level:
        summary["levels"] = {str(level): _stats(by_level[level]) for level in sorted(by_level)}
    return summary


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    if not n:
        return {"samples": 0}
    think = [r for r in rows if r["mode"] == "think"]
    no_think = [r for r in rows if r["mode"] == "no_think"]
    out = {
        "samples": n,
        "accuracy": sum(r["correct"] for r in rows) / n,
        "tokens": sum(r["tokens"] for r in rows) / n,
        "think_rate": len(think) / n,
        "format_ok": sum(r["answer"] is not None for r in rows) / n,
    }
    for name, subset in (("think", think), ("no_think", no_think)):
        out[f"accuracy_{name}"] = sum(r["correct"] for r in subset) / len(subset) if subset else None
        out[f"tokens_{name}"] = sum(r["tokens"] for r in subset) / len(subset) if subset else None
    return out


def add_efficiency_f1(summaries: dict[str, dict[str, Any]], standard_key: str, no_think_key: str) -> None:
    """E-F1 of every summary against the standard and no-think runs named, when both are present."""
    std, no = summaries.get(standard_key), summaries.get(no_think_key)
    if not std or not no:
        return
    for summary in summaries.values():
        summary["e_f1"] = efficiency_f1(summary["accuracy"], summary["tokens"], std["accuracy"], std["tokens"],
                                        no["accuracy"], no["tokens"])


def format_table(summaries: dict[str, dict[str, Any]]) -> str:
    """A markdown table: one row per run (model/stage + mode)."""
    lines = ["| run | accuracy % | tokens | think-rate % | acc think % | acc no-think % | E-F1 |",
             "|---|---|---|---|---|---|---|"]

    def pct(value):
        return "-" if value is None else f"{100 * value:.1f}"

    for name, s in summaries.items():
        e_f1 = "-" if s.get("e_f1") is None else f"{s['e_f1']:.1f}"
        lines.append(f"| {name} | {pct(s['accuracy'])} | {s['tokens']:.1f} | {pct(s['think_rate'])} | "
                     f"{pct(s['accuracy_think'])} | {pct(s['accuracy_no_think'])} | {e_f1} |")
    return "\n".join(lines)


def format_level_table(summaries: dict[str, dict[str, Any]]) -> str:
    """Think-rate (and accuracy) by difficulty level, one row per run."""
    levels = sorted({lvl for s in summaries.values() for lvl in s.get("levels", {})}, key=int)
    if not levels:
        return ""
    head = "| run | " + " | ".join(f"L{lvl} think % / acc %" for lvl in levels) + " |"
    lines = [head, "|---|" + "---|" * len(levels)]
    for name, s in summaries.items():
        cells = []
        for lvl in levels:
            stat = s.get("levels", {}).get(lvl)
            cells.append("-" if not stat else f"{100 * stat['think_rate']:.0f} / {100 * stat['accuracy']:.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
