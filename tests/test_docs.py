"""The documentation cannot drift from the tools: every `upscale`, `upscale-train` and `upscale-export` command in
README.md and docs/*.md parses with the commands' own parsers (nothing runs), the Python API example runs, the
README stays short and speaks to users, and --help shows flags without value placeholders."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from upscale.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^(?:\$ )?(?:[A-Z_]+=\S+ )*(upscale(?:-train|-export)?) (.*)$")


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(page, program, arguments) of every command line in the pages' code blocks, continuations joined."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```[a-z]*\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                match = COMMAND.match(line.strip())
                if match:
                    found.append((page.name, match.group(1), shlex.split(match.group(2), comments=True)))
    return found


def parser_for(program: str):
    if program == "upscale":
        return typer.main.get_command(app)
    torch = pytest.importorskip("torch")  # noqa: F841 - the training and export apps import it
    if program == "upscale-train":
        from upscale.train.cli import app as train_app

        return typer.main.get_command(train_app)
    from upscale.export.cli import app as export_app

    return typer.main.get_command(export_app)


def test_every_documented_command_parses() -> None:
    commands = documented_commands()
    assert len(commands) > 30 and {p for _, p, _ in commands} == {"upscale", "upscale-train", "upscale-export"}
    for page, program, args in commands:
        command = parser_for(program)
        try:
            context = command.make_context(program, list(args), resilient_parsing=False)
            if hasattr(command, "resolve_command"):  # the `upscale` group: parse the subcommand's own options
                head = getattr(context, "_protected_args", None) or getattr(context, "protected_args", [])
                name, sub, rest = command.resolve_command(context, [*head, *context.args])
                sub.make_context(name, rest, parent=context)
        except typer.Exit as done:  # an eager option that answers and stops (--list-archs, --version)
            assert done.exit_code == 0, (page, program, args)
        except Exception as exc:  # click's UsageError/BadParameter: the page shows a command that would fail
            pytest.fail(f"{page}: `{program} {shlex.join(args)}` does not parse: {exc}")


def test_the_api_example_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)[0]
    exec(compile(code, "docs/api.md", "exec"), {"__name__": "__main__"})
    assert len(list((tmp_path / "upscaled").glob("*.png"))) == 3 and (tmp_path / "run.json").is_file()


def test_the_readme_is_short_and_speaks_to_users() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    for page in PAGES:
        text = page.read_text()
        assert not re.search(r"\bissue \d|\blent\b|\.\./shared", text, re.I), page.name
        sessions = [m for m in re.finditer(r"\bsessions?\b", text, re.I)
                    if not re.search(r"(onnxruntime|trial|one|CUDA|half-thread|The|imports,)\W*$",
                                     text[max(0, m.start() - 30):m.start()], re.I)]
        assert not sessions, (page.name, [text[max(0, m.start() - 40):m.end()] for m in sessions])


@pytest.mark.parametrize("command", ["dir", "image", "eval", "info"])
def test_help_shows_flags_without_a_value_placeholder(command: str) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    shown = CliRunner().invoke(app, [command, "--help"], env=env)
    assert shown.exit_code == 0 and "--help" in shown.output
    assert "<bool>" not in shown.output and "BOOLEAN" not in shown.output
