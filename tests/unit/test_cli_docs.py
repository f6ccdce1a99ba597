"""Every CLI command is documented in the README and has an example in its --help."""

from pathlib import Path

import typer.main

from featurestore.cli import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def commands(group, prefix=""):
    click_group = typer.main.get_group(group) if not hasattr(group, "commands") else group
    for name, command in click_group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_command_is_in_the_readme_with_an_example():
    found = dict(commands(app))
    assert {"list", "describe", "validate", "build", "parse", "export", "sync", "get",
            "online up", "online down"} <= set(found)
    for name, command in found.items():
        assert f"featurestore {name}" in README, f"README does not show `featurestore {name}`"
        assert "Example:" in (command.help or ""), f"`featurestore {name} --help` has no example"
