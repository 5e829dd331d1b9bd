"""Reproduce the paper's comparison in miniature, from scratch on CPU: one table, one command.

    python experiments/reproduce_mini.py [--seeds 0 1 2] [--jobs 2] [--out runs/reproduce] [--set KEY=VALUE ...]

For each seed: the base under the standard, no-think and ellipsis prompts; AutoThink stages 1-3
(recipes/mini.yaml) under the ellipsis prompt; a length-cap baseline (recipes/baselines/mini-length-cap.yaml:
ThinkPrune-style, the same GRPO budget, the standard prompt) under the standard prompt; all on the
miniature's held-out eval split. Prints and writes OUT/results.md (mean ± sd over seeds: accuracy, tokens,
think-rate, think-rate on levels 1 and 5, E-F1 against the base's standard/no-think runs; the issue's
targets), OUT/results.json, OUT/think_rate_by_level.png and OUT/accuracy_vs_tokens.png (seed means), and
the same two per seed (OUT/*_per_seed.png).

Resumable: rerunning the same command keeps finished stages and evaluation samples. `--set` overrides apply
to both recipes (e.g. `--set eval.limit=20` for a quick look), `--autothink-set` / `--baseline-set` to one;
`--report-only` re-aggregates what is there.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from autothink_lite.errors import AutoThinkError
from autothink_lite.reproduce import (
    AUTOTHINK,
    LENGTH_CAP,
    check_budgets,
    plan_jobs,
    run_job,
    run_jobs,
    write_results,
)

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2, help="jobs at once; the CPU cores are split between them")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "mini.yaml"))
    parser.add_argument("--baseline", default=str(ROOT / "recipes" / "baselines" / "mini-length-cap.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a value of both recipes, e.g. --set eval.limit=20")
    parser.add_argument("--autothink-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a value of the AutoThink recipe only, e.g. --autothink-set stages.3.grpo.max_steps=5")
    parser.add_argument("--baseline-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a value of the baseline recipe only, e.g. --baseline-set stages.1.length_cap=48")
    parser.add_argument("--report-only", action="store_true", help="only aggregate the results already there")
    parser.add_argument("--job", choices=[AUTOTHINK, LENGTH_CAP], help=argparse.SUPPRESS)  # one child job
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if args.job:
        run_job(args.job, args.recipe if args.job == AUTOTHINK else args.baseline, args.out, args.seed,
                args.overrides)
        return ""
    started = time.monotonic()
    overrides = {AUTOTHINK: [*args.overrides, *args.autothink_set], LENGTH_CAP: [*args.overrides, *args.baseline_set]}
    recipes = {AUTOTHINK: args.recipe, LENGTH_CAP: args.baseline}
    budgets = check_budgets(recipes, overrides)
    jobs = None
    if not args.report_only:
        jobs = plan_jobs(Path(__file__).resolve(), args.out, args.seeds, recipes, overrides)
        run_jobs(jobs, args.jobs)
    wall = None if args.report_only else time.monotonic() - started
    text = write_results(args.out, args.seeds, overrides, jobs, wall, budgets)
    print(text)
    print(f"\nresults in {args.out}: results.md, results.json, think_rate_by_level.png, accuracy_vs_tokens.png, "
          "think_rate_by_level_per_seed.png, accuracy_vs_tokens_per_seed.png")
    return text


if __name__ == "__main__":
    try:
        main()
    except AutoThinkError as err:
        logging.getLogger("reproduce_mini").error("%s", err)
        sys.exit(2)
