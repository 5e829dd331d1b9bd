"""Reports: the evaluation results of one or more runs as comparison tables, PNG plots and `report.md`.

Input folders are either run folders of `autothink run` (RUN_DIR/eval/<run>/<benchmark>/<mode>.jsonl plus
RUN_DIR/stage{n}/metrics.jsonl) or bare evaluation folders (EVAL_DIR/<run>/<benchmark>/<mode>.jsonl).
Every number is recomputed from the per-sample rows with `results.summarize`, so a report never drifts
from the results it shows.

Plots use matplotlib's object API (`Figure`, which renders PNG through Agg) rather than pyplot: no global
backend switch and no pyplot state, so reports can be drawn inside a host process such as the Gradio app.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from autothink_lite.errors import AutoThinkError
from autothink_lite.results import (
    ResultKey,
    add_efficiency_f1,
    format_level_table,
    format_table,
    read_eval_dir,
    read_rows,
    summarize,
)
from autothink_lite.runs import RunFolder, check_writable

logger = logging.getLogger(__name__)

THINK_COLOR, NO_THINK_COLOR = "tab:red", "tab:blue"
BASELINE_STYLE = {  # marker, colour, size of the two reference runs in the accuracy-vs-tokens plot
    "standard": ("*", "black", 260),
    "no_think": ("s", "dimgray", 110),
}
DPI = 120


class ReportError(AutoThinkError, ValueError):
    """A folder holds no results to report on, with the layout that was expected."""


# ------------------------------------------------------------------------------------------ collecting


def collect(dirs: Iterable[str | Path]) -> dict[str, Any]:
    """Everything a report shows, read from run folders or evaluation folders.

    Returns {"sources": {label: path}, "benchmarks": {benchmark: {ResultKey: summary}},
    "tokens": {benchmark: {ResultKey: {"think": [...], "no_think": [...]}}},
    "training": {label: {stage: [metrics rows]}}}. With several folders each key carries its folder's label
    as its source ("runA/stage3 auto"), and E-F1 is computed against that folder's own base runs, since it
    compares a model with itself.
    """
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise ReportError("no folders given: pass one or more run folders (from `autothink run`) or eval folders")
    labels = source_labels(dirs)
    out: dict[str, Any] = {"sources": {}, "benchmarks": {}, "tokens": {}, "training": {}}
    for directory, label in zip(dirs, labels):
        if not directory.is_dir():
            raise ReportError(f"{directory}: no such folder; pass a run folder (from `autothink run`) or an eval folder")
        runs = run_folders_in(directory)
        if runs:
            raise ReportError(f"{directory} holds run folders ({', '.join(p.name for p in runs[:5])}), not results: "
                              f"pass the runs themselves, e.g. {' '.join(str(p) for p in runs[:2])}")
        out["sources"][label or directory.name] = str(directory)
        try:
            found = read_eval_dir(eval_dir_of(directory))
        except OSError as err:
            raise ReportError(f"{directory}: cannot read it ({err}); pass a run or eval folder you can read") from None
        for benchmark, results in found.items():
            summaries = {key: summarize(rows) for key, rows in results.items()}
            add_efficiency_f1(summaries)
            for key, rows in results.items():
                out["benchmarks"].setdefault(benchmark, {})[key.with_source(label)] = summaries[key]
                out["tokens"].setdefault(benchmark, {})[key.with_source(label)] = tokens_by_mode(rows)
        training = read_training(directory)
        if training:
            out["training"][label or directory.name] = training
    out["benchmarks"] = dict(sorted(out["benchmarks"].items()))
    out["tokens"] = dict(sorted(out["tokens"].items()))
    if not out["benchmarks"] and not out["training"]:
        raise ReportError(
            f"no results in {', '.join(map(str, dirs))}: expected RUN_DIR/eval/<run>/<benchmark>/<mode>.jsonl "
            "(from `autothink run`) or EVAL_DIR/<run>/<benchmark>/<mode>.jsonl (from `autothink eval`)"
        )
    return out


def source_labels(dirs: list[Path]) -> list[str]:
    """'' for a single folder (keys stay "base standard"); else each folder's name, made unique."""
    if len(dirs) == 1:
        return [""]
    names = [d.parent.name if d.name == "eval" else d.name for d in dirs]
    labels: list[str] = []
    for name in names:
        label = re.sub(r"[\s/]+", "_", name) or "run"  # a key shows as "label/run mode": one word, no '/'
        labels.append(label if label not in labels else f"{label}_{len(labels) + 1}")
    return labels


def run_folders_in(directory: Path) -> list[Path]:
    """The run folders inside `directory` when it is their parent (runs/), not a run or eval folder itself."""
    if RunFolder.is_run(directory):
        return []
    return sorted(d for d in directory.iterdir() if d.is_dir() and RunFolder.is_run(d))


def eval_dir_of(directory: Path) -> Path:
    """A run folder keeps its evaluations in eval/; any other folder is taken as an evaluation folder."""
    run = RunFolder(directory)
    return run.eval_dir if run.eval_dir.is_dir() else directory


def tokens_by_mode(rows: list[dict[str, Any]]) -> dict[str, list[int]]:
    return {mode: [r["tokens"] for r in rows if r["mode"] == mode] for mode in ("think", "no_think")}


def read_training(directory: Path) -> dict[int, list[dict[str, float]]]:
    """{stage: metrics rows} from RUN_DIR/stage{n}/metrics.jsonl, stages in order."""
    run = RunFolder(directory)
    stages = {stage: read_rows(run.metrics_file(stage)) for stage in run.stages()}
    return {stage: rows for stage, rows in stages.items() if rows}


# --------------------------------------------------------------------------------------------- plots


PALETTE = [f"C{i}" for i in range(10) if i != 7]  # C7 is grey, the no-think reference's colour
SOURCE_MARKERS = ("o", "^", "D", "v", "P", "X")  # one per results folder when several are compared


def key_colors(keys: Iterable[ResultKey]) -> dict[ResultKey, str]:
    """One colour per run/mode, the same in every plot; the two reference runs in black and grey."""
    keys = list(keys)
    others = [k for k in keys if not k.is_reference]
    return {key: BASELINE_STYLE[key.mode][1] if key.is_reference else PALETTE[others.index(key) % len(PALETTE)]
            for key in keys}


def key_markers(keys: Iterable[ResultKey]) -> dict[ResultKey, str]:
    """Reference runs: star (standard) / square (no-think); other runs: one marker shape per results folder."""
    keys = list(keys)
    sources = list(dict.fromkeys(k.source for k in keys))
    return {key: BASELINE_STYLE[key.mode][0] if key.is_reference
            else SOURCE_MARKERS[sources.index(key.source) % len(SOURCE_MARKERS)] for key in keys}


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", dpi=DPI)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    logger.info("plot written to %s", path)
    return path


def plot_accuracy_vs_tokens(summaries: dict[ResultKey, dict[str, Any]], path: Path, title: str) -> Path | None:
    """Accuracy against mean tokens, one point per run/mode; the base standard and no-think runs as
    reference lines, so the paper's goal (up and to the left of `base standard`) is visible at a glance."""
    keys = [k for k, s in summaries.items() if s.get("samples")]
    if not keys:
        return None
    colors, markers = key_colors(keys), key_markers(keys)
    fig = _new_figure(9, 6)
    ax = fig.add_subplot()
    for key in keys:
        s = summaries[key]
        x, y = s["tokens"], 100 * s["accuracy"]
        if key.is_reference:
            size = BASELINE_STYLE[key.mode][2]
            ax.axhline(y, color=colors[key], linestyle="--", linewidth=1, alpha=0.6)
            ax.axvline(x, color=colors[key], linestyle="--", linewidth=1, alpha=0.6)
            label = text = f"{key} (reference)"
        else:
            size = 70
            label = key
            text = f"{key} (E-F1 {s['e_f1']:.1f})" if s.get("e_f1") else key  # 0 = no gain on both axes
        ax.scatter([x], [y], marker=markers[key], s=size, color=colors[key], edgecolors="white", linewidths=0.8,
                   label=label, zorder=3)
        ax.annotate(text, (x, y), xytext=(7, 5), textcoords="offset points", fontsize=8, color=colors[key])
    _draw_trajectories(ax, summaries, keys)
    ax.text(0.01, 0.99, "better: higher and further left", transform=ax.transAxes, ha="left", va="top",
            fontsize=8, color="dimgray")
    ax.set_title(title)
    ax.set_xlabel("mean response length (tokens per sample)")
    ax.set_ylabel("accuracy (pass@1, %)")
    ax.grid(True, alpha=0.3)
    _pad_limits(ax)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="run / prompt mode",
              title_fontsize=8)
    return _save(fig, path)


def plot_bias_frontier(curves: dict[str, list[tuple[float, dict[str, Any]]]],
                       references: dict[ResultKey, dict[str, Any]], path: Path, title: str) -> Path | None:
    """Accuracy against tokens as the think bias moves: one line per model through its (bias, summary)
    points, each labelled with its bias, and the base's standard / no-think runs as reference lines."""
    if not any(curves.values()):
        return None
    fig = _new_figure(9, 6)
    ax = fig.add_subplot()
    for key, s in references.items():
        if s.get("samples"):
            color = BASELINE_STYLE[key.mode][1]
            ax.axhline(100 * s["accuracy"], color=color, linestyle="--", linewidth=1, alpha=0.6)
            ax.axvline(s["tokens"], color=color, linestyle="--", linewidth=1, alpha=0.6)
            ax.scatter([s["tokens"]], [100 * s["accuracy"]], marker=BASELINE_STYLE[key.mode][0],
                       s=BASELINE_STYLE[key.mode][2], color=color, label=f"{key} (reference)", zorder=3)
    for i, (name, points) in enumerate(curves.items()):
        points = sorted(points, key=lambda p: p[1]["tokens"])
        color = PALETTE[i % len(PALETTE)]
        xs, ys = [p[1]["tokens"] for p in points], [100 * p[1]["accuracy"] for p in points]
        ax.plot(xs, ys, marker="o", color=color, label=f"{name} (ellipsis prompt)", zorder=2)
        for (bias, _), x, y in zip(points, xs, ys):
            ax.annotate(f"{bias:+g}", (x, y), xytext=(5, -10), textcoords="offset points", fontsize=8, color=color)
    ax.text(0.01, 0.99, "labels: think bias (> 0 thinks more); better: higher and further left",
            transform=ax.transAxes, ha="left", va="top", fontsize=8, color="dimgray")
    ax.set_title(title)
    ax.set_xlabel("mean response length (tokens per sample)")
    ax.set_ylabel("accuracy (pass@1, %)")
    ax.grid(True, alpha=0.3)
    _pad_limits(ax)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _draw_trajectories(ax: Any, summaries: dict[ResultKey, dict[str, Any]], keys: list[ResultKey]) -> None:
    """A faint line through base -> stage1 -> stage2 -> stage3 of one folder and prompt mode: the path the
    training took across the accuracy/length plane."""
    groups: dict[tuple[str, str], list[str]] = {}
    for key in keys:
        if not key.is_reference:
            groups.setdefault((key.source, key.mode), []).append(key)
    for members in groups.values():
        if len(members) > 1:
            ax.plot([summaries[k]["tokens"] for k in members], [100 * summaries[k]["accuracy"] for k in members],
                    color="gray", linewidth=1, linestyle=":", alpha=0.7, zorder=1)


def _pad_limits(ax: Any) -> None:
    """Room around the points for their labels (matplotlib's default margins clip the annotations)."""
    ax.margins(x=0.12, y=0.12)
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, -2), min(high, 102))


def plot_think_rate_by_level(summaries: dict[ResultKey, dict[str, Any]], path: Path, title: str) -> Path | None:
    """Think-rate and accuracy per difficulty level, one line per run/mode (benchmarks with levels only).
    AutoThink's target shape: think-rate rising with the level, accuracy kept."""
    keys = [k for k, s in summaries.items() if s.get("levels")]
    if not keys:
        return None
    colors, markers = key_colors(keys), key_markers(keys)
    fig = _new_figure(12, 5)
    think_ax, acc_ax = fig.subplots(1, 2)
    for key in keys:
        levels = summaries[key]["levels"]
        xs = sorted(int(level) for level in levels)
        style = dict(color=colors[key], label=key, marker=markers[key], linewidth=2)
        if key.is_reference:  # forced modes sit at 100% / 0% think-rate: references, drawn quietly
            style.update(linestyle="--", linewidth=1, alpha=0.7)
        think_ax.plot(xs, [100 * levels[str(x)]["think_rate"] for x in xs], **style)
        acc_ax.plot(xs, [100 * levels[str(x)]["accuracy"] for x in xs], **style)
    all_levels = sorted({int(level) for k in keys for level in summaries[k]["levels"]})
    for ax, what in ((think_ax, "think-rate (% of samples that reason)"), (acc_ax, "accuracy (pass@1, %)")):
        ax.set_xticks(all_levels)
        ax.set_xlabel("difficulty level (1 = easiest)")
        ax.set_ylabel(what)
        ax.set_ylim(-4, 104)
        ax.grid(True, alpha=0.3)
    think_ax.set_title("think-rate by level")
    acc_ax.set_title("accuracy by level")
    acc_ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, title="run / prompt mode",
                  title_fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_token_histograms(tokens: dict[str, dict[str, list[int]]], path: Path, title: str) -> Path | None:
    """Response-length histograms per run/mode, stacked by the mode the model chose (think / no-think), on
    shared bins so the panels compare directly."""
    keys = [k for k, t in tokens.items() if t["think"] or t["no_think"]]
    if not keys:
        return None
    longest = max(max(t["think"] + t["no_think"]) for t in (tokens[k] for k in keys))
    bins = np.linspace(0, max(longest, 1), 31)
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    height = 3.3 * nrows + 0.5
    # Fixed margins instead of constrained layout: with a dozen panels the layout solver costs seconds.
    fig = Figure(figsize=(4.3 * ncols, height), dpi=DPI)
    fig.subplots_adjust(left=0.7 / (4.3 * ncols), right=1 - 0.15 / (4.3 * ncols), bottom=0.55 / height,
                        top=1 - 0.95 / height, wspace=0.3, hspace=0.45)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False)).ravel()
    for index, (ax, key) in enumerate(zip(axes, keys)):
        think, no_think = tokens[key]["think"], tokens[key]["no_think"]
        ax.hist([no_think, think], bins=bins, stacked=True, color=[NO_THINK_COLOR, THINK_COLOR],
                label=[_mode_label("no-think", no_think), _mode_label("think", think)])
        rate = 100 * len(think) / (len(think) + len(no_think))
        ax.set_title(f"{key}\nthink-rate {rate:.0f}%", fontsize=9)
        if index >= len(keys) - ncols:  # the lowest panel of each column
            ax.set_xlabel("response length (tokens)")
            ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_ylabel("samples")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(title)
    return _save(fig, path)


def _mode_label(name: str, values: list[int]) -> str:
    return f"{name}: {len(values)}, mean {np.mean(values):.0f} tok" if values else f"{name}: 0"


TRAINING_PANELS = (  # metrics.jsonl key, axis label, scale
    ("autothink/think_rate", "think-rate (%)", 100),
    ("autothink/tokens", "mean completion length (tokens)", 1),
    ("autothink/accuracy", "accuracy (%)", 100),
)


def plot_training(stages: dict[int, list[dict[str, float]]], path: Path, title: str) -> Path | None:
    """Think-rate, mean tokens and accuracy per training step, stages one after another on a single x-axis
    (each stage's trainer counts its steps from 1). Thin: every logged step; bold: a running mean."""
    if not any(_series(rows, TRAINING_PANELS[0][0])[0] for rows in stages.values()):
        return None
    panels = [p for p in TRAINING_PANELS if any(_series(rows, p[0])[0] for rows in stages.values())]
    fig = _new_figure(10, 2.6 * len(panels) + 0.6)
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True))
    offset = 0
    for index, (stage, rows) in enumerate(stages.items()):
        last = max((r.get("step", 0) for r in rows), default=0)
        color = f"C{index}"
        for ax, (metric, _, scale) in zip(axes, panels):
            steps, values = _series(rows, metric)
            if metric == "autothink/tokens":
                _plot_mode_tokens(ax, rows, offset, color)
            if steps:
                xs = [offset + s for s in steps]
                ys = [scale * v for v in values]
                ax.plot(xs, ys, color=color, linewidth=0.8, alpha=0.35)
                ax.plot(xs, _running_mean(ys), color=color, linewidth=2, label=f"stage {stage}")
        for ax in axes:
            ax.axvspan(offset + 0.5, offset + last + 0.5, color=color, alpha=0.06)
            if offset:
                ax.axvline(offset + 0.5, color="gray", linestyle="--", linewidth=1)
        offset += last
    for ax, (_, label, _) in zip(axes, panels):
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axes[0].set_ylim(-4, 104)
    tokens_axes = [ax for ax, panel in zip(axes, panels) if panel[0] == "autothink/tokens"]
    if tokens_axes:
        tokens_axes[0].legend(handles=[Line2D([], [], color="gray", linewidth=2, label="all samples"),
                                       Line2D([], [], color="gray", linestyle="--", label="think samples"),
                                       Line2D([], [], color="gray", linestyle=":", label="no-think samples")],
                              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    axes[-1].set_xlabel("training step (stages in sequence)")
    fig.suptitle(title)
    return _save(fig, path)


def _plot_mode_tokens(ax: Any, rows: list[dict[str, float]], offset: int, color: str) -> None:
    """Mean length of think and no-think samples (dashed / dotted), behind the overall mean."""
    for metric, style in (("autothink/tokens_think", "--"), ("autothink/tokens_no_think", ":")):
        steps, values = _series(rows, metric)
        if steps:
            ax.plot([offset + s for s in steps], _running_mean(values), color=color, linestyle=style, linewidth=1,
                    alpha=0.8)


def _series(rows: list[dict[str, float]], metric: str) -> tuple[list[int], list[float]]:
    """Steps and values of one metric; trl's closing summary line and NaN (mode absent) are left out."""
    pairs = [(int(r["step"]), float(r[metric])) for r in rows
             if metric in r and "step" in r and r[metric] is not None and not math.isnan(float(r[metric]))]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _running_mean(values: list[float]) -> list[float]:
    window = max(1, len(values) // 15)
    return [float(np.mean(values[max(0, i - window + 1):i + 1])) for i in range(len(values))]


# -------------------------------------------------------------------------------------------- report


def write_report(dirs: Iterable[str | Path], out_dir: str | Path) -> Path:
    """Write `out_dir/report.md` with the tables and PNG plots of the runs in `dirs`; returns its path."""
    results = collect(dirs)
    out = Path(out_dir)
    check_writable(out, "--out", ReportError)
    lines = ["# AutoThink report", "", "Results read from:", ""]
    lines += [f"- `{label}`: `{path}`" for label, path in results["sources"].items()]
    lines += ["", _METHOD_NOTE, ""]
    if len(results["benchmarks"]) > 1:
        lines += ["## All benchmarks", "", overview_table(results["benchmarks"]), ""]
    for benchmark, summaries in results["benchmarks"].items():
        lines += benchmark_section(benchmark, summaries, results["tokens"][benchmark], out)
    if results["training"]:
        lines += ["## Training", ""]
        for label, stages in results["training"].items():
            lines += training_section(label, stages, out, several=len(results["training"]) > 1)
    path = out / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    logger.info("report written to %s", path)
    return path


_METHOD_NOTE = (
    "Accuracy is pass@1 averaged over samples; tokens are mean response tokens per sample; think-rate is the "
    "share of samples that reason (do not close `</think>` at once). E-F1 (x100) compares each run with the "
    "same folder's `base standard` and `base no_think` runs: the harmonic mean of the accuracy gain and the token "
    "saving, each relative to those two; `-` where those are missing."
)


def benchmark_section(benchmark: str, summaries: dict[str, dict[str, Any]], tokens: dict[str, dict[str, list[int]]],
                      out: Path) -> list[str]:
    slug = slugify(benchmark)
    lines = [f"## {benchmark}", "", format_table(summaries), ""]
    levels = format_level_table(summaries)
    if levels:
        lines += ["Think-rate % / accuracy % by difficulty level:", "", levels, ""]
    plots = (
        ("Accuracy against response length", plot_accuracy_vs_tokens(
            summaries, out / f"accuracy_vs_tokens_{slug}.png", f"{benchmark}: accuracy vs response length")),
        ("Think-rate and accuracy by difficulty level", plot_think_rate_by_level(
            summaries, out / f"think_rate_by_level_{slug}.png", f"{benchmark}: adaptive thinking by difficulty")),
        ("Response length by the mode the model chose", plot_token_histograms(
            tokens, out / f"token_histograms_{slug}.png", f"{benchmark}: response length, think vs no-think")),
    )
    for caption, path in plots:
        if path is not None:
            lines += [f"![{caption}]({path.name})", ""]
    return lines


def training_section(label: str, stages: dict[int, list[dict[str, float]]], out: Path, several: bool) -> list[str]:
    lines = [f"### {label}", ""] if several else []
    lines += ["Means over the first and last tenth of each stage's logged steps:", "",
              "| stage | logged steps | think-rate % first → last | tokens first → last | accuracy % first → last |",
              "|---|---|---|---|---|"]
    for stage, rows in stages.items():
        cells = [_first_last(rows, key, scale) for key, scale in
                 (("autothink/think_rate", 100), ("autothink/tokens", 1), ("autothink/accuracy", 100))]
        lines.append(f"| {stage} | {len(_series(rows, 'autothink/think_rate')[0])} | " + " | ".join(cells) + " |")
    lines.append("")
    path = plot_training(stages, out / f"training_{slugify(label)}.png", f"{label}: training curves")
    if path is not None:
        lines += [f"![Training curves of {label}]({path.name})", ""]
    return lines


def _first_last(rows: list[dict[str, float]], metric: str, scale: float) -> str:
    _, values = _series(rows, metric)
    if not values:
        return "-"
    tenth = max(1, len(values) // 10)
    return f"{scale * np.mean(values[:tenth]):.1f} → {scale * np.mean(values[-tenth:]):.1f}"


def overview_table(benchmarks: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Accuracy / tokens of every run on every benchmark side by side, with the unweighted mean over the
    benchmarks (as the paper averages its five sets) where a run has all of them."""
    names = list(benchmarks)
    keys = list(dict.fromkeys(k for summaries in benchmarks.values() for k in summaries))
    lines = ["| run | " + " | ".join(f"{n} acc % / tokens" for n in names) + " | mean acc % | mean tokens |",
             "|---|" + "---|" * (len(names) + 2)]
    for key in keys:
        found = [benchmarks[n].get(key) for n in names]
        cells = ["-" if s is None else f"{100 * s['accuracy']:.1f} / {s['tokens']:.0f}" for s in found]
        complete = [s for s in found if s is not None]
        if len(complete) == len(names):
            cells += [f"{100 * np.mean([s['accuracy'] for s in complete]):.1f}",
                      f"{np.mean([s['tokens'] for s in complete]):.0f}"]
        else:
            cells += ["-", "-"]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def slugify(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "results"
