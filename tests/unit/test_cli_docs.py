"""docs/cli.md is the `--help` of every CLI command, generated; every command has an example in
its --help; the README points at the reference instead of keeping copies of the help."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from featurestore.cli import app

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "cli.md"
README = (REPO / "README.md").read_text()


def _load_generator():
    spec = importlib.util.spec_from_file_location("cli_reference", REPO / "docs" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli_reference = _load_generator()


def commands(group, prefix=""):
    """Every command and group under `group` by its path, walked here independently of the generator."""
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if hasattr(command, "commands"):
            yield from commands(command, f"{prefix}{name} ")


def test_the_reference_is_the_help_of_every_command():
    expected = cli_reference.render()
    actual = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    if actual != expected:
        pytest.fail(f"docs/cli.md is not the CLI's --help; regenerate it: {cli_reference.REGENERATE}\n"
                    + cli_reference.difference(expected, actual), pytrace=False)


def test_every_command_is_in_the_reference_with_an_example():
    found = dict(commands(typer.main.get_command(app)))
    assert {"list", "describe", "validate", "build", "parse", "export", "sync", "get",
            "online", "online up", "online down"} <= set(found)
    reference = REFERENCE.read_text(encoding="utf-8")
    for name, command in found.items():
        assert f"\n## featurestore {name}\n" in reference, f"docs/cli.md has no section `featurestore {name}`"
        if not hasattr(command, "commands"):
            assert "Example:" in (command.help or ""), f"`featurestore {name} --help` has no example"


def test_the_reference_is_what_the_cli_prints():
    """The generator renders in-process; the CLI's own plain help (rich off) is the same text."""
    printed = subprocess.run(
        [sys.executable, "-c", "from featurestore.cli import app; app(prog_name='featurestore')", "online", "up", "--help"],
        env={**os.environ, "TYPER_USE_RICH": "0", "COLUMNS": "200"}, capture_output=True, text=True, check=True).stdout
    section = f"## featurestore online up\n\n```\n{printed.rstrip()}\n```\n"
    assert section in REFERENCE.read_text(encoding="utf-8"), f"docs/cli.md differs from what the CLI prints:\n{printed}"


def test_the_readme_links_the_reference():
    assert "](docs/cli.md)" in README, "README.md does not link the CLI reference docs/cli.md"
