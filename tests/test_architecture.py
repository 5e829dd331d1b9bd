"""The package's imports follow the data flow: no import circle, hidden or not, and the pure logic stays pure."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "autothink_lite"
# The only package imports allowed inside functions: the CLI imports a command's modules when it runs (unsloth
# must come before transformers), and the miniature package builds its model on first use only.
LAZY_IMPORTS_ALLOWED = {"autothink_lite.cli", "autothink_lite.miniature"}
# Pure logic: no torch, trl, transformers or peft, directly or through the package modules it imports.
PURE = ("prompts", "grading", "rewards", "metrics", "fitcheck", "errors", "grpo_fields", "config", "runs", "results",
        "adapters", "hub_client")
HEAVY = ("torch", "trl", "transformers", "peft", "accelerate", "bitsandbytes", "vllm", "unsloth")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(module: str) -> list[tuple[str, bool]]:
    """(imported name, at module level?) for every import in the module, function bodies included. A
    `from package import name` counts as importing the submodule when `name` is one."""
    tree = ast.parse(MODULES[module].read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.append((sub if sub in MODULES else node.module, id(node) in top_level))
    return found


def package_graph() -> dict[str, set[str]]:
    return {module: {name for name, _ in imports_of(module) if name in MODULES and name != module}
            for module in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path a -> b -> ... -> a, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_circle_even_through_imports_inside_functions():
    cycle = find_cycle(package_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_circle_finder_finds_a_circle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_package_imports_sit_at_the_top_of_each_module():
    hidden = [f"{module} imports {name} inside a function" for module in MODULES if module not in LAZY_IMPORTS_ALLOWED
              for name, top in imports_of(module) if name.startswith("autothink_lite") and not top]
    assert not hidden, hidden


def test_the_pure_modules_import_no_torch_or_trl_even_through_other_modules():
    graph = package_graph()
    for pure in PURE:
        seen, todo = set(), [f"autothink_lite.{pure}"]
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo += graph[module]
        heavy = sorted({f"{module} imports {name}" for module in seen for name, _ in imports_of(module)
                        if name.split(".")[0] in HEAVY})
        assert not heavy, f"{pure}: {heavy}"


def module_map() -> list[str]:
    """The modules of the package's docstring map, in its order ('miniature/' stands for the subpackage)."""
    import autothink_lite

    text = autothink_lite.__doc__.split("Module map")[1]
    return [f"autothink_lite.{name}" for name in re.findall(r"(?m)(?:^  |;  )([a-z_]+)/? +\S", text)]


def test_the_module_map_lists_every_module_and_each_imports_only_those_above_it():
    order = module_map()
    top = {module if module.count(".") == 1 else module.rsplit(".", 1)[0] for module in MODULES} - {"autothink_lite"}
    assert set(order) == top, f"map and package differ: {sorted(set(order) ^ top)}"
    graph = package_graph()
    for module, imported in graph.items():
        if module == "autothink_lite":
            continue
        owner = module if module.count(".") == 1 else module.rsplit(".", 1)[0]
        for name in imported - {"autothink_lite"}:
            target = name if name.count(".") == 1 else name.rsplit(".", 1)[0]
            if target != owner:
                assert order.index(target) < order.index(owner), f"{module} imports {name}, listed below it"


def test_every_error_class_of_the_package_derives_from_autothinkerror_which_the_cli_catches():
    errors = {f"{module}.{node.name}": [getattr(base, "id", None) for base in node.bases]
              for module, path in MODULES.items() for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, ast.ClassDef) and node.name.endswith("Error") and node.name != "AutoThinkError"}
    assert len(errors) >= 9, errors
    assert {name: bases for name, bases in errors.items() if "AutoThinkError" not in bases} == {}
    assert "except AutoThinkError" in MODULES["autothink_lite.cli"].read_text()
