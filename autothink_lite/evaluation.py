"""Evaluation: generate on a benchmark in one prompt mode, grade, and summarise as the paper does.

Every sample is appended to `<out>/<mode>.jsonl` as soon as its batch finishes, so a killed evaluation
resumes where it stopped without redoing finished samples. Summaries (pass@1 averaged over samples, mean
tokens, think-rate, accuracy of think vs no-think samples, each also per difficulty level) are pure
functions of those rows.
"""

from __future__ import annotations

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


@dataclass
class EvalSettings:
    samples: int = 1
    max_new_tokens: int = 1024
    temperature: float = 0.6
    top_p: float = 0.95
    batch_size: int = 32
    seed: int = 0


def evaluate_mode(
    model: Any,
    tokenizer: Any,
    records: list[dict[str, Any]],
    prompt_mode: str,
    settings: EvalSettings,
    out_file: Path,
) -> list[dict[str, Any]]:
    """Rows of (problem, sample) in `prompt_mode`, resuming from what `out_file` already holds."""
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
                    new_rows.append(sample_row(record, sample, prompt_mode, completion.text,
                                               completion.num_tokens, completion.finished, tokenizer))
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
) -> str:
    """Evaluate a base (+ adapters) on benchmarks x modes into `out_dir/<label>/<benchmark>/<mode>.jsonl`."""
    from autothink_lite.data import load_benchmark

    label = label or run_label(adapters)
    model, tokenizer = load_model_for_eval(model_name, adapters, load_in_4bit=load_in_4bit, dtype=dtype)
    for benchmark in benchmarks:
        records = load_benchmark(benchmark, limit=limit)
        for mode in modes:
            evaluate_mode(model, tokenizer, records, mode, settings,
                          out_dir / label / benchmark_slug(benchmark) / f"{mode}.jsonl")
    return label


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
