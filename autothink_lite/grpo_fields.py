"""The fields of trl's `GRPOConfig`, read from trl's and transformers' source without importing them.

A recipe's `grpo:` section takes GRPOConfig fields by their trl names; its keys are checked against these
when the recipe is loaded. Importing trl there would import transformers before the command line has had a
chance to import unsloth first (unsloth patches transformers, trl and peft only when it comes first), and
would pull torch into the pure `config`. So the fields are read as the dataclasses declare them: the
annotated assignments of GRPOConfig and of the classes it extends. `tests/test_config.py` checks them
against `dataclasses.fields(GRPOConfig)` of the installed trl.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path

# GRPOConfig and the classes it extends in trl 1.15.0 (requirements.txt pins it), most derived first.
GRPO_CONFIG_CLASSES = (
    ("trl.trainer.grpo_config", "GRPOConfig"),
    ("trl.trainer.base_config", "_BaseConfig"),
    ("transformers.training_args", "TrainingArguments"),
)


@functools.cache
def grpo_config_fields() -> dict[str, str]:
    """{field name: its annotation as written} of GRPOConfig, base classes included."""
    fields: dict[str, str] = {}
    for module, name in reversed(GRPO_CONFIG_CLASSES):  # a subclass's declaration wins
        fields.update(_annotated_fields(module, name))
    return fields


def _annotated_fields(module: str, name: str) -> dict[str, str]:
    package, *path = module.split(".")
    spec = importlib.util.find_spec(package)  # a top-level package is found without being imported
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{package} not found: install the pinned trl and transformers (requirements.txt)")
    source = Path(spec.submodule_search_locations[0], *path[:-1], path[-1] + ".py")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    cls = next((node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name), None)
    if cls is None:
        raise ImportError(f"{module} defines no class {name}: this trl / transformers differs from the pinned one")
    return {stmt.target.id: ast.unparse(stmt.annotation) for stmt in cls.body
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            and not ast.unparse(stmt.annotation).startswith(("ClassVar", "typing.ClassVar"))}
