"""Recipes: one YAML per model with all three stages in it, loaded into typed, validated dataclasses.

Every field carries its help text and default. Validation happens once, on load: an unknown key, a wrong
type, a value outside its choices or an impossible combination raises `RecipeError` naming the recipe file,
the field and the fix. Command-line overrides (`--set grpo.learning_rate=1e-5`) are applied to the raw YAML
before validation, so they get the same checks. A `--set grpo.X` wins over every stage's own `grpo.X` in
the file (a `--set stages.N.grpo.X` wins over both for its stage).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import logging
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autothink_lite.errors import AutoThinkError
from autothink_lite.grpo_fields import grpo_config_fields
from autothink_lite.prompts import INSTRUCTION, PROMPT_MODES
from autothink_lite.rewards import StageShaping
from autothink_lite.runs import RunFolder

logger = logging.getLogger(__name__)

MINIATURE = "mini"  # model / dataset name of the built-in miniature R1 and its arithmetic task


class RecipeError(AutoThinkError, ValueError):
    """A recipe (or an override) that cannot run, with the field at fault and how to fix it."""


def _field(default: Any, help: str, choices: tuple | None = None, internal: bool = False, **kwargs: Any) -> Any:
    metadata = {"help": help, "choices": choices, "internal": internal}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


@dataclass
class ModelConfig:
    name_or_path: str = _field(MINIATURE, "base model: 'mini' (built-in miniature R1), a Hub id or a local folder")
    load_in_4bit: bool = _field(True, "load the base 4-bit (bitsandbytes nf4, double quantisation); else full precision")
    dtype: str = _field("bfloat16", "compute dtype of the base and LoRA", ("float32", "bfloat16", "float16"))
    backend: str = _field("auto", "auto: unsloth when installed and a GPU is present, else transformers + peft",
                          ("auto", "transformers", "unsloth"))
    fast_inference: bool = _field(False, "unsloth only: generate rollouts with its vLLM engine, which shares the "
                                         "model's weights (the one way to roll out a 4-bit base with vLLM)")
    gpu_memory_utilization: float = _field(0.5, "unsloth + vLLM only: share of the GPU vLLM may take (its weights, "
                                                "shared with training, and its KV cache)")
    revision: str | None = _field(None, "Hub revision (branch, tag or commit) of the base model")


@dataclass
class LoraSettings:
    r: int = _field(16, "LoRA rank")
    alpha: int = _field(32, "LoRA alpha (scale = alpha / r)")
    dropout: float = _field(0.0, "LoRA dropout")
    target_modules: list[str] = _field(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "module names LoRA adapts (Qwen2 names by default)",
    )


@dataclass
class DataConfig:
    train: str = _field(MINIATURE, "training problems: 'mini', a Hub dataset id or a local JSON / JSONL / parquet file")
    split: str = _field("train", "dataset split to train on")
    problem_field: str = _field("problem", "column with the problem text")
    answer_field: str = _field("answer", "column with the gold answer")
    limit: int | None = _field(None, "use only the first N problems (None: all)")
    prompt_mode: str = _field("auto", "prompt mode of the rollouts (AutoThink trains with the ellipsis prompt)",
                              PROMPT_MODES)
    system_prompt: str | None = _field(None, "optional system prompt")
    instruction: str | None = _field(INSTRUCTION, "suffix of the user turn (the paper's instruction)")


@dataclass
class GRPOSettings:
    """A recipe's `grpo:` section, shared by the stages; any stage may override it under its own `grpo:` key.

    Keys are trl `GRPOConfig` fields under trl's names. The fields below are those AutoThink gives a default
    of its own; any other GRPOConfig field may be set as well (`optim`, `weight_decay`, ...: kept in
    `trl_options` and passed to trl as they are). `prompts_per_step` is AutoThink's own addition, not a trl
    field: trl's gradient accumulation is derived from it (`trainer.grpo_args`)."""

    prompts_per_step: int = _field(16, "AutoThink's own: prompts per optimizer step over all processes "
                                       "(paper: 128 / 64 / 64)")
    max_steps: int = _field(100, "optimizer steps of the stage")
    learning_rate: float = _field(2e-5, "AdamW learning rate (paper, full fine-tune: 1e-6; LoRA wants ~1e-5..5e-5)")
    lr_scheduler_type: str = _field("constant", "learning-rate schedule", ("constant", "constant_with_warmup", "cosine", "linear"))
    warmup_steps: int = _field(0, "warm-up steps")
    num_generations: int = _field(8, "samples per prompt, the GRPO group (paper: 8)")
    per_device_train_batch_size: int = _field(8, "completions per forward/backward pass per process (memory knob)")
    max_completion_length: int = _field(1024, "response token budget (paper: 8K / 16K / 24K)")
    temperature: float = _field(0.6, "rollout sampling temperature (paper: 0.6)")
    top_p: float = _field(1.0, "rollout nucleus sampling")
    beta: float = _field(0.0, "KL coefficient (paper: 0, no reference model)")
    epsilon: float = _field(0.2, "lower clip range (paper: 0.2)")
    epsilon_high: float = _field(0.2, "upper clip range (paper: 0.2)")
    entropy_coef: float = _field(0.001, "entropy bonus (paper: 0.001)")
    loss_type: str = _field("dapo", "token-level loss as in the paper ('dapo'), or trl's others",
                            ("dapo", "bnpo", "grpo", "dr_grpo"))
    num_iterations: int = _field(1, "PPO epochs per rollout batch (paper: 1)")
    max_grad_norm: float = _field(1.0, "gradient clipping (paper: 1.0)")
    mask_truncated_completions: bool = _field(False, "drop truncated completions from the loss")
    gradient_checkpointing: bool = _field(False, "trade compute for activation memory")
    use_vllm: bool = _field(False, "generate rollouts with vLLM (GPU extra)")
    vllm_gpu_memory_utilization: float = _field(0.3, "share of the GPU the colocated vLLM engine may take")
    logging_steps: int = _field(1, "log metrics every N steps")
    save_steps: int = _field(10, "checkpoint every N steps (resume point)")
    save_total_limit: int = _field(2, "checkpoints kept per stage")
    report_to: list[str] = _field(["tensorboard"], "where metrics go besides the console and metrics.csv: tensorboard, wandb, none")
    seed: int = _field(0, "random seed")
    trl_options: dict = _field({}, "the other GRPOConfig fields the recipe sets, passed to trl as they are",
                               internal=True)

    def as_recipe(self) -> dict[str, Any]:
        """The settings as a recipe's `grpo:` section writes them: trl's other options beside the rest."""
        values = dataclasses.asdict(self)
        options = values.pop("trl_options")
        return {**values, **options}


# GRPOConfig fields that AutoThink sets itself, with where their value comes from.
SET_BY_AUTOTHINK = {
    "output_dir": "the stage folder of the run folder: set output_dir or --output",
    "gradient_accumulation_steps": "derived from prompts_per_step, num_generations and per_device_train_batch_size",
    "use_cpu": "true when no GPU is visible",
    "bf16": "from model.dtype on a GPU",
    "fp16": "from model.dtype on a GPU",
    "remove_unused_columns": "false: the reward reads the answer, prompt id, mode and level columns",
    "data_seed": "the grpo seed",
}
# Keys of recipes written before the grpo section took trl's names.
RENAMED_GRPO_KEYS = {"kl_beta": "beta", "micro_batch_size": "per_device_train_batch_size"}


@dataclass
class StageConfig:
    gamma: float = _field(1.0, "batch balance threshold; >= 1 disables the balance (paper: 0.5 in stage 1)")
    slope: float = _field(2.0, "batch balance slope, the paper's lambda")
    length_alpha: float = _field(0.0, "length shaping of correct samples (paper stage 3: 0.05); 0 disables")
    length_beta: float = _field(0.0, "length shaping of wrong samples (paper stage 3: 0.05); 0 disables")
    degenerate_penalty: bool = _field(True, "reward -2 for wrong outputs that repeat an n-gram or hold a giant token")
    length_cap: int | None = _field(None, "baseline instead of AutoThink: reward 1 for a correct answer within this "
                                          "many tokens, else 0 (ThinkPrune-style; use with the standard prompt)")
    grpo: dict = _field({}, "GRPO settings (GRPOConfig fields, prompts_per_step) that differ from the recipe's `grpo:` in this stage")

    @property
    def shaping(self) -> StageShaping:
        return StageShaping(gamma=self.gamma, slope=self.slope, alpha=self.length_alpha, beta=self.length_beta,
                            degenerate_penalty=self.degenerate_penalty, length_cap=self.length_cap)


MAX_THINK_BIAS = 100.0  # |think bias| allowed (steering.check_bias); beyond it the decision is certain in float32


@dataclass
class EvalSettings:
    """How models are evaluated: a recipe's `eval:` section, and the defaults of `autothink eval`'s flags."""

    benchmarks: list[str] = _field([MINIATURE], "benchmarks evaluated after training (see `autothink eval`)")
    modes: list[str] = _field(["auto"], "prompt modes for the trained stages; the base also gets standard + no_think")
    samples: int = _field(1, "samples per problem (pass@1 is averaged over them; paper: 16)")
    max_new_tokens: int = _field(1024, "generation budget (paper: 32768)")
    temperature: float = _field(0.6, "sampling temperature (paper: 0.6)")
    top_p: float = _field(0.95, "nucleus sampling (paper: 0.95)")
    limit: int | None = _field(None, "evaluate only the first N problems of each benchmark")
    batch_size: int = _field(32, "prompts per generation batch")
    seed: int = _field(0, "sampling seed; `autothink run` uses the recipe's grpo.seed", internal=True)
    think_bias: float = _field(0.0, "logit bias against </think> at the decision point: > 0 thinks more, < 0 skips "
                                    "more (`autothink eval --think-bias`, `autothink sweep`)", internal=True)

    def problems(self) -> list[tuple[str, str]]:
        """(field, what is wrong with its value) for every value no evaluation can run with."""
        found = [(name, "must be at least 1") for name in ("samples", "max_new_tokens", "batch_size")
                 if getattr(self, name) < 1]
        if self.limit is not None and self.limit < 1:
            found.append(("limit", "give at least 1 problem per benchmark, or leave the limit out for all"))
        if not self.temperature > 0:
            found.append(("temperature", "sampling needs a temperature above 0 (paper: 0.6)"))
        if not 0 < self.top_p <= 1:
            found.append(("top_p", "must be in (0, 1] (paper: 0.95)"))
        if not abs(self.think_bias) <= MAX_THINK_BIAS:
            found.append(("think_bias", f"give a number between -{MAX_THINK_BIAS:g} and {MAX_THINK_BIAS:g} "
                                        "(positive thinks more, 0 is off)"))
        return found


@dataclass
class Recipe:
    name: str = _field("unnamed", "short name of the recipe, used in output folders and model cards")
    description: str = _field("", "what the recipe is for and what it assumes")
    output_dir: str = _field("runs/unnamed", "where stages, evaluations and the summary are written")
    gpu_memory_gb: float | None = _field(None, "memory of the card the recipe is sized for (fit check); None: the card found")
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    data: DataConfig = field(default_factory=DataConfig)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    stages: dict[int, StageConfig] = field(default_factory=dict)
    eval: EvalSettings = field(default_factory=EvalSettings)
    source: str = field(default="<dict>", metadata={"help": "file the recipe came from", "internal": True})

    @property
    def run(self) -> RunFolder:
        """The run folder this recipe writes (`output_dir`)."""
        return RunFolder(self.output_dir)

    def stage_grpo(self, stage: int) -> GRPOSettings:
        """The GRPO settings of one stage: the recipe's, with the stage's overrides applied."""
        overrides = self.stages[stage].grpo
        own = {f.name for f in dataclasses.fields(GRPOSettings) if not f.metadata.get("internal")}
        options = {**self.grpo.trl_options, **{k: v for k, v in overrides.items() if k not in own}}
        return dataclasses.replace(self.grpo, **{k: v for k, v in overrides.items() if k in own}, trl_options=options)


# ---------------------------------------------------------------------------------------------- loading


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe YAML, apply `key.sub=value` overrides, validate, and return it."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe {path} not found: pass a YAML file such as recipes/mini.yaml")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML ({err}); fix the syntax at the position shown") from None
    for item in overrides or []:
        apply_override(raw, item, source=str(path))
    shared_overrides_win(raw, overrides or [])
    return recipe_from_dict(raw, source=str(path))


def apply_override(raw: dict, item: str, source: str = "<override>") -> None:
    """Set `a.b.c=value` in a raw recipe dict; the value is parsed as YAML (numbers, lists, null)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"override {item!r}: write KEY=VALUE, e.g. grpo.learning_rate=1e-5 or stages.1.grpo.max_steps=5")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or type(err).__name__
        raise RecipeError(f"override {item!r}: {value!r} is not a valid value ({problem}); write a number, a word, "
                          "or a list such as [a, b], and quote the whole --set argument in the shell") from None
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        key = int(part) if part.isdigit() else part
        if node.get(key) is None:  # absent, or an empty section such as `2:` in the YAML
            node[key] = {}
        node = node[key]
        if not isinstance(node, dict):
            raise RecipeError(f"{source}: override {item!r}: {part!r} is not a section")
    node[parts[-1]] = parsed


def shared_overrides_win(raw: dict, overrides: list[str]) -> None:
    """`--set grpo.X=v` applies to every stage: drop the stages' own `grpo.X` from the file, saying so.

    Without this a stage that sets X (mini.yaml sets max_steps in every stage) would silently keep its value.
    A `--set stages.N.grpo.X` on the command line still wins for stage N, whatever the order of the two.
    """
    keys = [item.partition("=")[0].strip() for item in overrides]
    stage_keys = {key for key in keys if key.startswith("stages.")}
    stages = raw.get("stages")
    if not isinstance(stages, dict):
        return
    for key in dict.fromkeys(keys):
        section, _, name = key.partition(".")
        if section != "grpo" or not name or "." in name:
            continue
        for stage, body in stages.items():
            grpo = body.get("grpo") if isinstance(body, dict) else None
            if isinstance(grpo, dict) and name in grpo and f"stages.{stage}.grpo.{name}" not in stage_keys:
                logger.info("--set %s=%s replaces stages.%s.grpo.%s=%s of the recipe", key,
                            (raw.get("grpo") or {}).get(name), stage, name, grpo[name])
                del grpo[name]


def recipe_from_dict(raw: dict, source: str = "<dict>") -> Recipe:
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: a recipe is a mapping of sections (model, lora, data, grpo, stages, eval)")
    raw = dict(raw)
    stages_raw = raw.pop("stages", None)
    recipe = _build(Recipe, raw, source, "")
    recipe.source = source
    recipe.stages = _build_stages(stages_raw, source)
    _check_combinations(recipe)
    return recipe


def _build_stages(raw: Any, source: str) -> dict[int, StageConfig]:
    if not isinstance(raw, dict) or not raw:
        raise RecipeError(f"{source}: stages: give the stages to run as a mapping 1:, 2:, 3: (each may be empty)")
    stages = {}
    for key, body in raw.items():
        if str(key) not in ("1", "2", "3"):
            raise RecipeError(f"{source}: stages.{key}: AutoThink has stages 1, 2 and 3; rename or remove it")
        stage = _build(StageConfig, body or {}, source, f"stages.{key}.")
        checked = _build_grpo(stage.grpo, source, f"stages.{key}.grpo.")  # names and types of overrides
        values = checked.as_recipe()
        stage.grpo = {name: values[name] for name in stage.grpo}  # the converted values (3e-5 -> float)
        stages[int(key)] = stage
    return dict(sorted(stages.items()))


def _build_grpo(raw: Any, source: str, prefix: str) -> GRPOSettings:
    """GRPOSettings from a `grpo:` mapping: AutoThink's typed fields, and any other trl GRPOConfig field as it is."""
    _check_mapping(raw, source, prefix)
    own = {f.name for f in dataclasses.fields(GRPOSettings) if not f.metadata.get("internal")}
    trl_fields = grpo_config_fields()
    options = {}
    for name, value in raw.items():
        where = f"{prefix}{name}"
        if name in own:
            continue
        if name in SET_BY_AUTOTHINK:
            raise RecipeError(f"{source}: {where}: AutoThink sets this GRPOConfig field itself "
                              f"({SET_BY_AUTOTHINK[name]}); remove it")
        if name in RENAMED_GRPO_KEYS:
            raise RecipeError(f"{source}: unknown key {where}: the grpo section takes trl's names now; write "
                              f"{RENAMED_GRPO_KEYS[name]} (trl GRPOConfig's name) instead of {name}")
        if name not in trl_fields:
            close = difflib.get_close_matches(str(name), [*own, *trl_fields], n=1)
            raise RecipeError(f"{source}: unknown key {where}: allowed keys here are trl GRPOConfig's fields and "
                              f"prompts_per_step{'; the closest is ' + close[0] if close else ''}")
        options[name] = _check_trl_value(value, trl_fields[name], source, where)
    settings = _build(GRPOSettings, {k: v for k, v in raw.items() if k in own}, source, prefix)
    settings.trl_options = options
    return settings


_SIMPLE_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "list": list, "dict": dict}


def _check_trl_value(value: Any, annotation: str, source: str, where: str) -> Any:
    """A GRPOConfig value checked against its annotation where that is made of plain types (else trl checks it
    when the stage builds its GRPOConfig)."""
    kinds = _annotation_names(ast.parse(annotation, mode="eval").body)
    if not kinds or not kinds <= {*_SIMPLE_TYPES, "None"}:
        return value
    if value is None:
        if "None" in kinds:
            return None
        raise RecipeError(f"{source}: {where}: must be set (GRPOConfig's type: {annotation})")
    if "float" in kinds and "str" not in kinds and isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 3e-5 (no dot) as a string
        except ValueError:
            pass

    def fits(kind: str) -> bool:
        if isinstance(value, bool):  # a bool is an int to isinstance, not to a recipe
            return kind == "bool"
        return isinstance(value, (int, float) if kind == "float" else _SIMPLE_TYPES[kind])

    if not any(fits(kind) for kind in kinds - {"None"}):
        raise RecipeError(f"{source}: {where}: expected {annotation} (GRPOConfig's type), got {value!r}")
    return value


def _annotation_names(node: ast.expr) -> set[str]:
    """{'float', 'None'} for `float | None`; names that are not plain types come back as they are."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _annotation_names(node.left) | _annotation_names(node.right)
    if isinstance(node, ast.Constant) and node.value is None:
        return {"None"}
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        if node.value.id in ("Optional", "Union"):
            parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            return set().union(*(_annotation_names(part) for part in parts)) | (
                {"None"} if node.value.id == "Optional" else set())
        return {node.value.id}
    return {ast.unparse(node)}


def _check_mapping(raw: Any, source: str, prefix: str) -> None:
    if not isinstance(raw, dict):
        raise RecipeError(f"{source}: {prefix.rstrip('.') or 'recipe'}: expected a mapping of keys, got {raw!r}")


def _build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    _check_mapping(raw, source, prefix)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise RecipeError(
            f"{source}: unknown key {prefix}{unknown[0]}: allowed keys here are {', '.join(fields)}"
        )
    values = {}
    for name, value in raw.items():
        where = f"{prefix}{name}"
        hint = hints[name]
        if hint is GRPOSettings:
            values[name] = _build_grpo(value or {}, source, where + ".")
            continue
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value or {}, source, where + ".")
            continue
        values[name] = _check_value(value, hint, fields[name].metadata, source, where)
    return cls(**values)


def _check_value(value: Any, hint: Any, metadata: Any, source: str, where: str) -> Any:
    optional = type(None) in typing.get_args(hint) and isinstance(hint, types.UnionType)
    if value is None:
        if optional:
            return None
        raise RecipeError(f"{source}: {where}: must be set ({metadata['help']})")
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    origin = typing.get_origin(base) or base
    if origin is float and isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 3e-5 (no dot) as a string
        except ValueError:
            pass
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        list: isinstance(value, list) and all(isinstance(v, str) for v in value),
        dict: isinstance(value, dict),
    }[origin]
    if not ok:
        kind = {list: "a list of strings", dict: "a mapping"}.get(origin, origin.__name__)
        raise RecipeError(f"{source}: {where}: expected {kind}, got {value!r} ({metadata['help']})")
    choices = metadata.get("choices")
    if choices and value not in choices:
        raise RecipeError(f"{source}: {where}: {value!r} is not one of {', '.join(map(str, choices))}")
    return float(value) if origin is float else value


def _check_combinations(recipe: Recipe) -> None:
    src = recipe.source
    _check_grpo_values(recipe.grpo, src)  # the shared values too, even where every stage sets its own
    for stage_id, stage in recipe.stages.items():
        g = recipe.stage_grpo(stage_id)
        where = f"{src}: stage {stage_id}"
        _check_grpo_values(g, where)
        if stage.length_cap is not None and (stage.length_cap < 1 or stage.shaping.balances
                                             or stage.shaping.shapes_length):
            raise RecipeError(f"{where}: length_cap replaces AutoThink's rewards: give a positive cap and leave "
                              "gamma (1.0) and length_alpha / length_beta (0) at their defaults")
        if g.num_generations < 2:
            raise RecipeError(f"{where}: grpo.num_generations={g.num_generations}: GRPO compares samples of one prompt; use 2 or more (paper: 8)")
        completions = g.prompts_per_step * g.num_generations
        if completions % g.per_device_train_batch_size:
            raise RecipeError(
                f"{where}: prompts_per_step x num_generations = {completions} completions per step is not divisible by "
                f"per_device_train_batch_size={g.per_device_train_batch_size}: pick a "
                f"per_device_train_batch_size that divides {completions}"
            )
    if recipe.data.limit is not None and recipe.data.limit < 1:
        raise RecipeError(f"{src}: data.limit={recipe.data.limit}: must be at least 1 or leave it unset for all")
    for name, what in recipe.eval.problems():
        raise RecipeError(f"{src}: eval.{name}={getattr(recipe.eval, name)}: {what}")
    if recipe.lora.r < 1 or recipe.lora.alpha < 1 or not recipe.lora.target_modules:
        raise RecipeError(f"{src}: lora: r and alpha must be at least 1 and target_modules non-empty")
    if recipe.model.fast_inference and recipe.model.backend == "transformers":
        raise RecipeError(f"{src}: model.fast_inference needs the unsloth backend: set model.backend to auto or unsloth")
    _check_rollout_engine(recipe)
    bad_modes = [m for m in recipe.eval.modes if m not in PROMPT_MODES]
    if bad_modes:
        raise RecipeError(f"{src}: eval.modes: {bad_modes[0]!r} is not one of {', '.join(PROMPT_MODES)}")


def _check_rollout_engine(recipe: Recipe) -> None:
    """Refuse a 4-bit base with trl's own colocated vLLM engine, which cannot work with the pinned stack.

    trl 1.15 starts that engine with quantization="bitsandbytes" for a 4-bit model, which vLLM 0.31 has only
    through the out-of-tree vllm-bnb-plugin; and even then its weight sync sends the merged 4-bit tensors
    without their quantisation state (trl/generation/vllm_generation.py; trl issue #4973). unsloth's
    fast_inference is the way that works: vLLM loads the 4-bit weights (with the plugin) and training shares
    them, so there is nothing to sync. With backend auto that needs unsloth at run time, which
    `modeling.detect_backend` checks (it refuses fast_inference where auto resolves to transformers)."""
    if not recipe.model.load_in_4bit or recipe.model.fast_inference:
        return
    stages = [stage for stage in recipe.stages if recipe.stage_grpo(stage).use_vllm]
    if stages:
        raise RecipeError(
            f"{recipe.source}: model.load_in_4bit with grpo.use_vllm (stage {stages[0]}): trl's own vLLM engine "
            "cannot roll out from a 4-bit base (vLLM 0.31 has no bitsandbytes without vllm-bnb-plugin, and trl "
            "1.15 syncs 4-bit weights without their quantisation state, trl issue #4973). Fix: set "
            "model.fast_inference: true with model.backend unsloth or auto (vLLM shares unsloth's 4-bit weights; "
            "GPU extra), or model.load_in_4bit: false (a 16-bit base), or grpo.use_vllm: false"
        )


def _check_grpo_values(g: GRPOSettings, where: str) -> None:
    for name in ("max_steps", "prompts_per_step", "per_device_train_batch_size", "max_completion_length", "save_steps",
                 "logging_steps"):
        if getattr(g, name) < 1:
            raise RecipeError(f"{where}: grpo.{name}={getattr(g, name)}: must be at least 1")
    if not g.learning_rate > 0 or not g.temperature > 0:
        raise RecipeError(f"{where}: grpo.learning_rate and grpo.temperature must be positive")
