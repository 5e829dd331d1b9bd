"""Problems in, prompt records out: the miniature task, Hub datasets and local JSON / JSONL / parquet files.

A problem record is a dict with `problem`, `answer` and, where the source has one, `level` (difficulty
1-5) and `id`. Training turns records into trl rows (`prompt`, `answer`, `uid`, `prompt_mode`, `level`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from autothink_lite.config import MINIATURE
from autothink_lite.errors import AutoThinkError
from autothink_lite.hub_client import is_local_path
from autothink_lite.miniature import task
from autothink_lite.prompts import INSTRUCTION, render_prompt

logger = logging.getLogger(__name__)

LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet")
SHIPPED_DIR = Path(__file__).parent / "data" / "benchmarks"


@dataclass(frozen=True)
class Benchmark:
    """Where a named benchmark's problems come from and which columns hold what."""

    source: str  # a shipped file name, "mini", or a Hub dataset id
    split: str = "test"
    config: str | None = None
    problem_field: str = "problem"
    answer_field: str = "answer"
    level_field: str | None = None


# The paper's five test sets ship with the package (DeepScaleR's test split; see data/benchmarks/SOURCE.md).
BENCHMARKS = {
    "mini": Benchmark(MINIATURE, split="eval", level_field="level"),
    # The miniature's validation split: tune RL settings here, never on "mini" (which reports results).
    "mini-val": Benchmark(MINIATURE, split="validation", level_field="level"),
    "math500": Benchmark("math.json", level_field="difficulty"),  # MATH level 1-5
    "minerva": Benchmark("minerva.json"),
    "olympiad": Benchmark("olympiad_bench.json"),
    "aime24": Benchmark("aime.json"),
    "amc23": Benchmark("amc.json"),
    "gsm8k": Benchmark("openai/gsm8k", config="main", problem_field="question"),  # Hub, needs a network
}
PAPER_BENCHMARKS = ("math500", "minerva", "olympiad", "aime24", "amc23")


def load_benchmark(name: str, limit: int | None = None) -> list[dict[str, Any]]:
    """A named benchmark (see BENCHMARKS) or a local JSON / JSONL file with problem, answer and optional level."""
    spec = BENCHMARKS.get(name)
    if spec is None:
        if not (is_local_path(name) or name.endswith(LOCAL_SUFFIXES)):
            raise DataError(f"unknown benchmark {name!r}: use one of {', '.join(BENCHMARKS)} or a local "
                            "JSON / JSONL file with problem and answer (and optional level) fields")
        return load_problems(name, limit=limit)
    source = str(SHIPPED_DIR / spec.source) if spec.source.endswith(".json") else spec.source
    records = load_problems(source, spec.split, config=spec.config, problem_field=spec.problem_field,
                            answer_field=spec.answer_field, level_field=spec.level_field, limit=limit)
    if name == "gsm8k":
        for record in records:  # GSM8K's answer is a worked solution ending in "#### 72"
            record["answer"] = str(record["answer"]).split("####")[-1].strip().replace(",", "")
    return records


class DataError(AutoThinkError, ValueError):
    """A dataset that cannot be used (missing file or column, empty), with the fix."""


def load_problems(
    source: str,
    split: str = "train",
    *,
    config: str | None = None,
    problem_field: str = "problem",
    answer_field: str = "answer",
    level_field: str | None = "level",
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Load problems from 'mini' (the miniature task's `split`: train, validation or eval), a local file or a Hub dataset."""
    if source == MINIATURE:
        rows = _miniature_rows(split)
        problem_field, answer_field, level_field = "problem", "answer", "level"
    elif is_local_path(source) or source.endswith(LOCAL_SUFFIXES):
        if not Path(source).expanduser().exists():
            raise DataError(f"{source}: file not found; give an existing JSON / JSONL / parquet path or a Hub "
                            "dataset id")
        rows = _local_rows(Path(source).expanduser())
    else:
        rows = _hub_rows(source, split, config)
    if not rows:
        raise DataError(f"{source}: no problems found in split {split!r}; check the file or the split name")
    if not isinstance(rows[0], dict):
        raise DataError(f"{source}: problem 1 is {rows[0]!r}, not an object; write one "
                        '{"problem": ..., "answer": ...} per problem')
    columns = set(rows[0])
    for role, name in (("problem", problem_field), ("answer", answer_field)):
        if name not in columns:
            raise DataError(
                f"{source}: no {role} column {name!r}; its columns are {', '.join(sorted(columns))}; "
                f"set data.{role}_field (or --{role}-field) to the right one"
            )
    records = []
    for i, row in enumerate(rows[:limit] if limit else rows):
        if not isinstance(row, dict):
            raise DataError(f"{source}: problem {i + 1} is {row!r}, not an object; write one "
                            '{"problem": ..., "answer": ...} per problem')
        missing = [name for name in (problem_field, answer_field) if row.get(name) is None]
        if missing:
            raise DataError(f"{source}: problem {i + 1} has no {missing[0]!r}; give every problem one (or "
                            "remove that problem)")
        record = {"id": str(row.get("id", row.get("unique_id", i))), "problem": row[problem_field],
                  "answer": row[answer_field]}
        level = parse_level(row.get(level_field), source, i) if level_field else None
        if level is not None:
            record["level"] = level
        records.append(record)
    return records


def parse_level(value: Any, source: str, index: int) -> int | None:
    """A difficulty level: 3, "3" or Hendrycks MATH's "Level 3"; its "Level ?" (and "") means none."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip().lower().removeprefix("level").strip()
    if text in ("", "?"):
        return None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is None or not number.is_integer():
        raise DataError(f"{source}: problem {index + 1} has level {value!r}; write a whole number such as 3 "
                        "(or \"Level 3\"), or leave the level out")
    return int(number)


def _local_rows(path: Path) -> list[dict]:
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            return data if isinstance(data, list) else data.get("data", [])
        if path.suffix == ".parquet":
            return list(datasets.load_dataset("parquet", data_files=str(path), split="train"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err}); fix the file or export it again") from None
    raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .json, .jsonl or .parquet")


def _hub_rows(source: str, split: str, config: str | None = None) -> list[dict]:
    try:
        return list(datasets.load_dataset(source, config, split=split))
    except Exception as err:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot load this"
        raise DataError(
            f"{source}: cannot load split {split!r} from the Hugging Face Hub ({type(err).__name__}: {err}); "
            "check the dataset id and split, your network, or pass a local JSON / JSONL file"
        ) from None


def _miniature_rows(split: str) -> list[dict]:
    if split == "train":
        return task.training_mix()
    if split in ("eval", "test"):
        return [dict(r) for r in task.eval_split()]
    if split == "validation":
        return task.validation_split()
    raise DataError(f"mini: unknown split {split!r}; the miniature task has 'train', 'validation' and 'eval'")


def prompt_rows(
    records: list[dict[str, Any]],
    tokenizer: Any,
    prompt_mode: str,
    *,
    system_prompt: str | None = None,
    instruction: str | None = INSTRUCTION,
) -> list[dict[str, Any]]:
    """trl rows: the rendered prompt plus what the reward needs (gold answer, prompt id, mode, level)."""
    strip_bos = _tokenizer_adds_bos(tokenizer)
    rows = []
    for record in records:
        text = render_prompt(tokenizer, record["problem"], prompt_mode, system_prompt=system_prompt,
                             instruction=instruction)
        if strip_bos and text.startswith(tokenizer.bos_token):
            # trl tokenizes string prompts with add_special_tokens=True; the tokenizer adds the BOS back.
            text = text[len(tokenizer.bos_token):]
        rows.append({
            "prompt": text,
            # JSON keeps one column type whatever the gold is (string, list of strings, float).
            "answer": json.dumps(record["answer"]),
            "uid": record["id"],
            "prompt_mode": prompt_mode,
            "level": int(record.get("level", 0)),
        })
    return rows


def _tokenizer_adds_bos(tokenizer: Any) -> bool:
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("1")["input_ids"]
    return bool(ids) and ids[0] == bos


def decode_answer(answer: str) -> Any:
    """The gold answer of a trl row (see `prompt_rows`)."""
    return json.loads(answer)
