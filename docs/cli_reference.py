"""Write docs/cli.md, the CLI reference: the `--help` of every featurestore command, generated.

    python docs/cli_reference.py           # write docs/cli.md (make docs)
    python docs/cli_reference.py --check   # exit 1 if docs/cli.md is not what the help says

The commands are found by walking the click command tree, so a new command is in the reference
once it is regenerated (tests/unit/test_cli_docs.py fails until then). The help is rendered by
click's plain formatter at a fixed width, exactly as `TYPER_USE_RICH=0 featurestore ... --help`
prints it on any terminal of 80 columns or more: Typer's rich panels take the terminal's width,
colours and, for their box characters, its encoding, so they would read differently per machine.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import typer.main

from featurestore.cli import app

REFERENCE = Path(__file__).resolve().parent / "cli.md"
REGENERATE = "make docs (or: python docs/cli_reference.py)"
WIDTH = 78  # click's plain help on a terminal of 80 columns or more
FENCE = "```"

HEADER = f"""# CLI reference

<!-- Generated from each command's --help by docs/cli_reference.py: do not edit.
     Regenerate: {REGENERATE}. tests/unit/test_cli_docs.py checks it. -->

Every `featurestore` command and sub-command with its `--help`, as the plain help prints it
(`TYPER_USE_RICH=0 featurestore <command> --help`; in a terminal, `--help` shows the same in
panels). How the commands fit together — the profile lookup, errors, output in a pipe, the
workflows — is in the [README](../README.md).
"""


def command_tree(command, context):
    """(context, command) for `command` and, depth-first in `--help` order, everything below it."""
    yield context, command
    for name in getattr(command, "list_commands", lambda _: [])(context):
        sub_command = command.get_command(context, name)
        if sub_command is not None and not sub_command.hidden:
            yield from command_tree(sub_command, sub_command.context_class(sub_command, info_name=name,
                                                                           parent=context))


def plain_help(command, context) -> str:
    # Typer renders with rich unless the command's markup mode is None; these click objects are
    # built for this walk only, so the app itself is untouched.
    command.rich_markup_mode = None
    return command.get_help(context)


def render() -> str:
    root = typer.main.get_command(app)
    root_context = root.context_class(root, info_name="featurestore", terminal_width=WIDTH,
                                      max_content_width=WIDTH)
    sections = []
    for context, command in command_tree(root, root_context):
        text = plain_help(command, context)
        if FENCE in text:
            raise ValueError(f"`{context.command_path} --help` contains {FENCE}, which would end its code block.")
        sections.append((context.command_path, text))
    contents = "\n".join(f"- [{path}](#{path.replace(' ', '-')})" for path, _ in sections)
    body = "\n".join(f"## {path}\n\n{FENCE}\n{text}\n{FENCE}\n" for path, text in sections)
    return f"{HEADER}\n{contents}\n\n{body}"


def difference(expected: str, actual: str) -> str:
    lines = difflib.unified_diff(actual.splitlines(), expected.splitlines(), "docs/cli.md", "the --help of the CLI",
                                 lineterm="")
    return "\n".join(list(lines)[:60])


def main(argv: list[str]) -> int:
    expected = render()
    if argv == ["--check"]:
        actual = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
        if actual == expected:
            return 0
        print(f"docs/cli.md is not the CLI's --help; regenerate it: {REGENERATE}\n{difference(expected, actual)}",
              file=sys.stderr)
        return 1
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    REFERENCE.write_text(expected, encoding="utf-8", newline="\n")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
