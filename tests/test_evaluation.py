"""`autothink eval` on the miniature: real generation, grading, resumable JSONL, summaries and tables."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from autothink_lite.problems import PAPER_BENCHMARKS, DataError, load_benchmark
from autothink_lite.results import format_level_table, format_table, read_rows, summarize, summarize_dir


def eval_command(out, *extra):
    return [sys.executable, "-m", "autothink_lite.cli", "eval", "--benchmarks", "mini", "--output", str(out),
            "--max-new-tokens", "160", *extra]


@pytest.fixture(scope="module")
def base_eval(tmp_path_factory):
    """The shipped miniature in all three modes on 15 held-out problems (3 per level)."""
    out = tmp_path_factory.mktemp("eval")
    subprocess.run(eval_command(out, "--limit", "15", "--batch-size", "15"), check=True, capture_output=True,
                   timeout=300)
    return out


def test_eval_writes_one_graded_row_per_sample_and_mode(base_eval):
    for mode in ("standard", "auto", "no_think"):
        rows = read_rows(base_eval / "base" / "mini" / f"{mode}.jsonl")
        assert len(rows) == 15 and {r["level"] for r in rows} == {1, 2, 3, 4, 5}
        for row in rows:
            assert row["prompt_mode"] == mode and row["mode"] in ("think", "no_think")
            assert row["tokens"] == row["reasoning_tokens"] + row["answer_tokens"]
            assert row["correct"] == (row["answer"] == row["gold"])
    assert all(r["mode"] == "no_think" for r in read_rows(base_eval / "base" / "mini" / "no_think.jsonl"))
    assert all(r["mode"] == "think" for r in read_rows(base_eval / "base" / "mini" / "standard.jsonl"))


def test_eval_summary_has_the_papers_metrics_per_level_and_e_f1(base_eval):
    summaries = json.loads((base_eval / "summary.json").read_text())["mini"]
    assert set(summaries) == {"base standard", "base auto", "base no_think"}
    standard, no_think = summaries["base standard"], summaries["base no_think"]
    assert standard["think_rate"] == 1.0 and no_think["think_rate"] == 0.0
    assert standard["tokens"] > no_think["tokens"]
    assert set(standard["levels"]) == {"1", "2", "3", "4", "5"}
    assert "e_f1" in summaries["base auto"]
    table = format_table(summaries)
    assert "| base auto |" in table and "E-F1" in table
    assert "L5 think % / acc %" in format_level_table(summaries)


def test_a_killed_eval_resumes_without_repeating_samples(tmp_path):
    out = tmp_path / "eval"
    results = out / "base" / "mini" / "auto.jsonl"
    command = eval_command(out, "--modes", "auto", "--samples", "2", "--limit", "40", "--batch-size", "4")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while not (results.is_file() and len(read_rows(results)) >= 8):
        assert proc.poll() is None, "the eval finished before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {(r["id"], r["sample"]) for r in read_rows(results)}
    assert 8 <= len(done_before) < 80
    with results.open("a") as f:
        f.write('{"id": "cut off mid-wri')  # what a kill during a write leaves behind
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    rows = read_rows(results)
    keys = Counter((r["id"], r["sample"]) for r in rows)
    assert len(keys) == 80 and max(keys.values()) == 1, "every (problem, sample) exactly once"
    assert done_before <= set(keys)


def test_summaries_count_every_sample_of_every_level():
    rows = [{"level": lvl, "mode": m, "correct": c, "tokens": t, "answer": "1"}
            for lvl, m, c, t in [(1, "no_think", True, 10), (1, "think", True, 50), (5, "think", False, 90),
                                 (5, "no_think", False, 12)]]
    s = summarize(rows)
    assert s["accuracy"] == 0.5 and s["think_rate"] == 0.5 and s["tokens"] == 40.5
    assert s["accuracy_think"] == 0.5 and s["accuracy_no_think"] == 0.5
    assert s["levels"]["1"]["accuracy"] == 1.0 and s["levels"]["5"]["accuracy"] == 0.0


def test_summarize_dir_reads_the_results_layout(base_eval):
    assert set(summarize_dir(base_eval)) == {"mini"}


@pytest.mark.parametrize("name", PAPER_BENCHMARKS)
def test_the_papers_benchmarks_load_offline_with_problem_and_answer(name):
    records = load_benchmark(name)
    assert len(records) == {"math500": 500, "minerva": 272, "olympiad": 675, "aime24": 30, "amc23": 83}[name]
    assert all(r["problem"] and r["answer"] not in (None, "") for r in records)
    if name == "math500":
        assert Counter(r["level"] for r in records).keys() == {1, 2, 3, 4, 5}


def test_a_local_jsonl_benchmark_with_levels_loads(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"problem": "What is 1 + 1?", "answer": "2", "level": 1}\n')
    assert load_benchmark(str(path)) == [{"id": "0", "problem": "What is 1 + 1?", "answer": "2", "level": 1}]


def test_a_file_missing_its_answer_column_names_the_column_and_the_fix(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "What is 1 + 1?", "solution": "2"}\n')
    with pytest.raises(DataError, match=r"no problem column 'problem'.*question, solution.*problem_field"):
        load_benchmark(str(path))


def test_an_unknown_benchmark_lists_the_known_ones():
    with pytest.raises(DataError, match="math500, minerva, olympiad, aime24, amc23"):
        load_benchmark("math501")
