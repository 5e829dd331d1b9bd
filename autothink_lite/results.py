"""Evaluation results: one row per sample, the files that hold them, and the paper's summaries of them.

A results folder holds `<run>/<benchmark>/<mode>.jsonl`, one JSON row per (problem, sample) as `sample_row`
writes it. Summaries (pass@1 averaged over samples, mean tokens, think-rate, accuracy of think vs no-think
samples, each also per difficulty level) and E-F1 are pure functions of those rows, so a summary, a report
or a model card never drifts from the samples it describes.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from autothink_lite.grading import is_correct
from autothink_lite.metrics import efficiency_f1
from autothink_lite.prompts import detect_mode, extract_answer, split_completion
from autothink_lite.runs import BASE_RUN, run_order

logger = logging.getLogger(__name__)

class ResultKey(str):
    """Which results a summary describes: a run (base, stage3, ...), a prompt mode and, when several results
    folders are compared, the folder's label. It is the text tables and JSON show ("base standard",
    "runA/stage3 auto"), so summaries keyed by it print and serialise as before, and it keeps its parts."""

    run: str
    mode: str
    source: str

    def __new__(cls, run: str, mode: str, source: str = "") -> ResultKey:
        key = super().__new__(cls, f"{source}/{run} {mode}" if source else f"{run} {mode}")
        key.run, key.mode, key.source = run, mode, source
        return key

    def __getnewargs__(self) -> tuple[str, str, str]:  # copy and pickle rebuild it from its parts
        return self.run, self.mode, self.source

    def with_source(self, source: str) -> ResultKey:
        return ResultKey(self.run, self.mode, source)

    @property
    def is_reference(self) -> bool:
        """One of E-F1's two reference runs: the base model under the standard or the no-think prompt."""
        return self.run == BASE_RUN and self.mode in ("standard", "no_think")


BASE_STANDARD = ResultKey(BASE_RUN, "standard")  # E-F1's references: the same model, standard and no-think
BASE_NO_THINK = ResultKey(BASE_RUN, "no_think")
ROW_KEYS = {"id", "mode", "correct", "tokens", "answer"}  # what a summary reads from a results row
MODE_ORDER = ("standard", "no_think", "auto")


def results_file(eval_dir: Path, run: str, benchmark: str, mode: str) -> Path:
    """EVAL_DIR/<run>/<benchmark>/<mode>.jsonl; a benchmark file by its stem, a Hub id with '/' as '__'."""
    slug = Path(benchmark).stem if benchmark.endswith((".json", ".jsonl")) else benchmark.replace("/", "__")
    return Path(eval_dir) / run / slug / f"{mode}.jsonl"


def summarize_dir(eval_dir: Path) -> dict[str, dict[ResultKey, dict[str, Any]]]:
    """{benchmark: {ResultKey: summary}} for every results file under `eval_dir`, with E-F1 against
    `base standard` / `base no_think` where those runs exist."""
    out = {}
    for benchmark, results in read_eval_dir(Path(eval_dir)).items():
        out[benchmark] = {key: summarize(rows) for key, rows in results.items()}
        add_efficiency_f1(out[benchmark])
    return out


def read_eval_dir(eval_dir: Path) -> dict[str, dict[ResultKey, list[dict[str, Any]]]]:
    """{benchmark: {ResultKey: rows}}, runs in order base, stage1, stage2, ..., others; modes in MODE_ORDER."""
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
                results.setdefault(bench_dir.name, {})[ResultKey(run_dir.name, path.stem)] = rows
    return results


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


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Add rows to a results file, one JSON line each (a file cut by a kill is mended by `drop_partial_last_line`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


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


def add_efficiency_f1(summaries: dict[str, dict[str, Any]], standard_key: str = BASE_STANDARD,
                      no_think_key: str = BASE_NO_THINK) -> None:
    """E-F1 of every summary against the standard and no-think runs named (by default the base's), when both
    are present."""
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
