"""`autothink` command line: build-mini, train, run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger("autothink_lite")


def _recipe(args: argparse.Namespace):
    from autothink_lite.config import load_recipe

    overrides = list(args.set or [])
    if args.output:
        overrides.append(f"output_dir={args.output}")
    return load_recipe(args.recipe, overrides)


def _stages(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"--stages {text!r}: give stage numbers separated by commas, e.g. --stages 1,2,3") from None


def cmd_build_mini(args: argparse.Namespace) -> None:
    from autothink_lite.miniature.build import build_miniature

    path = build_miniature(Path(args.out), seed=args.seed)
    logger.info("miniature R1 written to %s", path)


def cmd_train(args: argparse.Namespace) -> None:
    from autothink_lite.training import train

    for result in train(_recipe(args), _stages(args.stages), overwrite=args.overwrite):
        logger.info("stage %d: %s%s", result.stage, result.adapter, " (already done)" if result.skipped else "")


def cmd_run(args: argparse.Namespace) -> None:
    from autothink_lite.pipeline import run

    recipe = _recipe(args)
    run(recipe, _stages(args.stages), overwrite=args.overwrite)
    summary = Path(recipe.output_dir) / "summary.md"
    if summary.is_file():
        sys.stdout.write(summary.read_text())


def _add_recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML, e.g. recipes/mini.yaml")
    parser.add_argument("--stages", help="stages to run, e.g. 1,2,3 (default: all in the recipe)")
    parser.add_argument("--output", help="run folder (default: the recipe's output_dir)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set grpo.learning_rate=1e-5 --set stages.1.grpo.max_steps=5")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete an earlier run with different training settings in the run folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autothink", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build-mini", help="build the miniature R1 model (tokenizer, SFT) into a folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_build_mini)

    p = sub.add_parser("train", help="train AutoThink stages of a recipe")
    _add_recipe_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="the main job: train all stages, evaluate base and stages, write a summary")
    _add_recipe_args(p)
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from autothink_lite.config import RecipeError
    from autothink_lite.data import DataError

    try:
        args.func(args)
    except (RecipeError, DataError) as err:
        logger.error("%s", err)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
