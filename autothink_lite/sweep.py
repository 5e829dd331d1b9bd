"""`autothink sweep`: the think-eagerness knob across a range of biases, a training-free accuracy/tokens frontier.

For a model (and, given an adapter, also its base, the training-free baseline) every bias is evaluated under
the ellipsis prompt with `steering.ThinkBias` (`evaluation.evaluate_model` with `think_bias` set: each bias
is its own resumable results file, labelled e.g. `stage3@bias+2`), plus the base's standard and no-think
runs as E-F1's references. Writes OUT/sweep.md (one table row per model and bias), OUT/sweep.json and
OUT/bias_frontier.png (accuracy against tokens, one line per model).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from autothink_lite.config import EvalSettings
from autothink_lite.evaluation import EvalError, bias_suffix, evaluate_model
from autothink_lite.report import plot_bias_frontier
from autothink_lite.results import BASE_NO_THINK, BASE_STANDARD, ResultKey, format_table, summarize_dir
from autothink_lite.runs import BASE_RUN, run_label

logger = logging.getLogger(__name__)

SWEEP_MODE = "auto"


def sweep(model: str, adapters: list[str], biases: list[float], settings: EvalSettings, out: Path, *,
          load_in_4bit: bool = False, dtype: str = "bfloat16", overwrite: bool = False, engine: str = "auto") -> str:
    """Evaluate every bias for the model (+ adapters) and, with adapters, for the base alone; return the
    markdown table (also written to OUT/sweep.md)."""
    if not biases:
        raise EvalError("--biases: give at least one bias, e.g. --biases -4 -2 0 2 4")
    biases = sorted(set(biases))
    out = Path(out)
    models = {BASE_RUN: []}
    if adapters:
        models[run_label(adapters)] = adapters
    references = dataclasses.replace(settings, modes=["standard", "no_think"], think_bias=0.0)
    evaluate_model(model, [], references, out, load_in_4bit=load_in_4bit, dtype=dtype, overwrite=overwrite,
                   engine=engine)
    for label, model_adapters in models.items():
        for bias in biases:
            logger.info("sweep: %s with think bias %+g", label, bias)
            evaluate_model(model, model_adapters, dataclasses.replace(settings, modes=[SWEEP_MODE], think_bias=bias),
                           out, label=label, load_in_4bit=load_in_4bit, dtype=dtype, overwrite=overwrite, engine=engine)
    text, data = [], {}
    for benchmark, table in summarize_dir(out).items():
        curves = {label: [(bias, table[key]) for bias in biases
                          if (key := ResultKey(label + bias_suffix(bias), SWEEP_MODE)) in table]
                  for label in models}
        refs = {key: table[key] for key in (BASE_STANDARD, BASE_NO_THINK) if key in table}
        rows = {**refs, **{ResultKey(label + bias_suffix(bias), SWEEP_MODE): s
                           for label, points in curves.items() for bias, s in points}}
        plot = plot_bias_frontier(curves, refs, out / f"bias_frontier_{benchmark}.png",
                                  f"{benchmark}: think-bias sweep of {model}")
        text.append(f"## {benchmark}\n\n{format_table(rows)}\n\n![frontier]({plot.name if plot else ''})\n")
        data[benchmark] = {str(k): v for k, v in rows.items()}
    markdown = f"# Think-bias sweep: {model}{' + ' + ', '.join(adapters) if adapters else ''}\n\n" + "\n".join(text)
    (out / "sweep.md").write_text(markdown)
    (out / "sweep.json").write_text(json.dumps({"model": model, "adapters": adapters, "biases": biases,
                                                "results": data}, indent=2, default=str) + "\n")
    return markdown

