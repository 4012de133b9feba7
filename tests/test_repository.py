"""Repository promises: CI runs exactly the README's test command; ruff stays clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    test_command = next(b for b in blocks if "pytest" in b)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command.strip() in ci.splitlines()


def test_ruff_clean() -> None:
    # ruff sits beside the interpreter in a venv that was not activated, so look there before PATH.
    beside = Path(sys.executable).parent / "ruff"
    ruff = str(beside) if beside.is_file() else shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff not installed")
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_tracked_tree_holds_only_what_the_layout_names() -> None:
    """Leftovers (a quantiser's temporary .onnx, an external .data file) never get committed at the top level."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout and packaging", 1)[1].split("```", 2)[1]
    named = {token.rstrip("/") for line in layout.splitlines() if line and not line.startswith(" ")
             for token in (line.split() if "/" not in line.split()[0] else line.split()[:1])}
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    top = {path.split("/", 1)[0] for path in tracked.splitlines()}
    assert top <= named, f"tracked but not in the README's layout: {sorted(top - named)}"


def test_every_runtime_import_is_a_declared_dependency() -> None:
    """`pip install .` alone must run `upscale`: every package the `upscale/` modules import when loaded is in
    [project].dependencies, not merely present because a test or training extra pulled it in (click came with
    ray and moto here while typer had stopped requiring it, and a plain install crashed at start)."""
    import ast
    import importlib.metadata

    import tomllib

    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}
    distributions = importlib.metadata.packages_distributions()
    undeclared = []
    for path in sorted((ROOT / "upscale").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:  # module level: what loading the module imports
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for top in {name.split(".")[0] for name in names} - set(sys.stdlib_module_names) - {"upscale"}:
                owners = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
                if not owners & declared:
                    undeclared.append(f"{path.relative_to(ROOT)}: {top}")
    assert not undeclared, undeclared
