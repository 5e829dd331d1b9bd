"""Reports over results folders: collecting, tables, plots (as real PNG files)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from PIL import Image

from autothink_lite.metrics import efficiency_f1
from autothink_lite.report import ReportError, collect, write_report
from fake_runs import write_eval_dir, write_run_dir

EVAL_KEYS = ["base standard", "base no_think", "base auto", "stage1 auto", "stage2 auto", "stage3 auto"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run_dir(tmp_path_factory.mktemp("runs") / "r1-1.5b")


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    return write_eval_dir(tmp_path_factory.mktemp("evals") / "results", benchmarks=("math500", "mini"), seed=1,
                          stages=(3,))


@pytest.fixture(scope="module")
def single_report(run_dir, tmp_path_factory):
    return write_report([run_dir], tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def compared_report(run_dir, eval_dir, tmp_path_factory):
    return write_report([run_dir, eval_dir], tmp_path_factory.mktemp("compared"))


def test_collect_reads_every_run_and_prompt_mode_of_an_eval_folder_base_first(eval_dir):
    results = collect([eval_dir])
    assert list(results["benchmarks"]) == ["math500", "mini"]
    assert list(results["benchmarks"]["mini"]) == ["base standard", "base no_think", "base auto", "stage3 auto"]
    stage3 = results["benchmarks"]["mini"]["stage3 auto"]
    assert stage3["samples"] == 60 and set(stage3["levels"]) == {"1", "2", "3", "4", "5"}
    assert results["training"] == {}


def test_a_run_folder_is_recognised_by_its_eval_subfolder_and_brings_its_training_metrics(run_dir):
    results = collect([run_dir])
    assert list(results["benchmarks"]["mini"]) == EVAL_KEYS
    stages = results["training"]["r1-1.5b"]
    assert list(stages) == [1, 2, 3]
    assert sum("autothink/think_rate" in row for row in stages[3]) == 30


def test_e_f1_compares_each_run_with_the_base_standard_and_no_think_runs(run_dir):
    summaries = collect([run_dir])["benchmarks"]["mini"]
    std, no, stage3 = summaries["base standard"], summaries["base no_think"], summaries["stage3 auto"]
    expected = efficiency_f1(stage3["accuracy"], stage3["tokens"], std["accuracy"], std["tokens"],
                             no["accuracy"], no["tokens"])
    assert stage3["e_f1"] == pytest.approx(expected) and expected > 0


def test_several_folders_keep_their_runs_apart_and_each_is_measured_against_its_own_base(run_dir, eval_dir):
    both = collect([run_dir, eval_dir])["benchmarks"]["mini"]
    assert "r1-1.5b/stage3 auto" in both and "results/stage3 auto" in both
    alone = collect([eval_dir])["benchmarks"]["mini"]
    assert both["results/stage3 auto"]["e_f1"] == pytest.approx(alone["stage3 auto"]["e_f1"])


def test_folders_with_the_same_name_still_get_distinct_labels(tmp_path):
    first = write_eval_dir(tmp_path / "a" / "eval", stages=(1,))
    second = write_eval_dir(tmp_path / "b" / "eval", stages=(1,), seed=3)
    keys = collect([first, second])["benchmarks"]["mini"]
    assert "a/stage1 auto" in keys and "b/stage1 auto" in keys


def test_a_folder_without_results_is_refused_with_the_layout_expected(tmp_path):
    with pytest.raises(ReportError, match=r"<run>/<benchmark>/<mode>\.jsonl"):
        collect([tmp_path])
    with pytest.raises(ReportError, match="no such folder"):
        collect([tmp_path / "missing"])


def test_report_has_the_summary_and_level_tables_with_e_f1(single_report):
    text = single_report.read_text()
    assert "| run | accuracy % | tokens | think-rate % | acc think % | acc no-think % | E-F1 |" in text
    assert "| stage3 auto |" in text and "| base no_think |" in text
    assert "L5 think % / acc %" in text
    row = next(line for line in text.splitlines() if line.startswith("| stage3 auto |"))
    assert re.search(r"\| \d+\.\d \|$", row), "stage 3 gets a numeric E-F1"


def test_report_embeds_every_plot_it_writes_with_relative_links(single_report):
    text = single_report.read_text()
    links = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", text)
    assert sorted(links) == ["accuracy_vs_tokens_mini.png", "think_rate_by_level_mini.png",
                             "token_histograms_mini.png", "training_r1-1.5b.png"]
    for link in links:
        assert (single_report.parent / link).is_file()


def test_report_summarises_the_training_curves_of_each_stage(single_report):
    text = single_report.read_text()
    assert "## Training" in text
    assert re.search(r"\| 3 \| 30 \| [\d.]+ → [\d.]+ \| [\d.]+ → [\d.]+ \|", text)


def test_plots_are_valid_pngs_of_a_readable_size(single_report):
    for png in single_report.parent.glob("*.png"):
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG"
            width, height = image.size
        assert width >= 800 and height >= 450, (png.name, image.size)
        assert png.stat().st_size > 20_000, f"{png.name} looks empty"


def test_several_runs_are_compared_in_one_table_and_across_benchmarks(compared_report):
    text = compared_report.read_text()
    mini = text.split("## mini")[1].split("## ")[0]
    assert "| r1-1.5b/stage3 auto |" in mini and "| results/stage3 auto |" in mini
    assert "## All benchmarks" in text
    assert "| run | math500 acc % / tokens | mini acc % / tokens | mean acc % | mean tokens |" in text
    assert re.search(r"\| results/stage3 auto \| [\d.]+ / \d+ \| [\d.]+ / \d+ \| [\d.]+ \| \d+ \|", text)
    assert re.search(r"\| r1-1.5b/stage3 auto \| - \| [\d.]+ / \d+ \| - \| - \|", text)


def test_a_benchmark_without_levels_gets_no_level_table_or_level_plot(tmp_path):
    eval_dir = write_eval_dir(tmp_path / "eval", benchmarks=("aime24",))
    for path in eval_dir.glob("*/aime24/*.jsonl"):
        rows = [dict(json.loads(line), level=None) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = write_report([eval_dir], tmp_path / "out")
    assert "by difficulty level" not in report.read_text()
    assert not (tmp_path / "out" / "think_rate_by_level_aime24.png").exists()
    assert (tmp_path / "out" / "accuracy_vs_tokens_aime24.png").is_file()


def test_training_without_autothink_metrics_gets_no_training_plot(tmp_path):
    run = write_run_dir(tmp_path / "run", stages=(1,))
    shutil.rmtree(run / "eval")
    (run / "stage1" / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 0.1}) + "\n")
    report = write_report([run], tmp_path / "out")
    assert "## Training" in report.read_text()
    assert not (tmp_path / "out" / "training_run.png").exists()
