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
