"""`spectrogram-transformers` command line: one subcommand per module of this package.

Each subcommand module provides `add_arguments(parser)` and `run(args) -> int`. Only the module of the
subcommand being run is imported (`--help` and `--version` import none, so they answer without torch), and
subcommand modules keep heavy or optional imports (training stack, plotting, ONNX Runtime) inside `run`, so
`--help` and the inference commands work on a base install.

One flag style for every subcommand, applied here once: options are shown in kebab-case (`--batch-size`) and
the snake_case spelling (`--batch_size`) is accepted as a hidden alias; `args.<dest>` is whatever the module
declared.
"""

import argparse
import importlib
import re
import sys
from collections.abc import Iterable, Sequence

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

# name -> one-line help; the module is `spectrogram_transformers.cli.<name>` (see _MODULES for the exceptions)
SUBCOMMANDS: dict[str, str] = {
    "list": "list the shipped model variants and training recipes",
    "convert": "convert an original checkpoint into a model directory",
    "export": "export a model directory to another format (transformers' native AST, ONNX)",
    "train": "fine-tune a model with a recipe (ESC-50, Speech Commands, AudioSet, ...)",
    "pretrain": "SSAST self-supervised pre-training on unlabeled audio",
    "classify": "classify audio files (sliding windows for long files)",
    "detect": "sound-event detection (HTS-AT frame outputs): labelled start/end times",
    "embed": "embeddings of audio files (the model's pooled vector, optionally its tokens) to a parquet/jsonl/csv file",
    "average": "average the weights of several checkpoints of one run",
    "ensemble": "evaluate the averaged predictions of several models",
    "evaluate": "a model's metrics on a whole split (recipe, local or Hub dataset), beside the paper's figure",
    "demo": "a web page (Gradio) to try a model: top labels, timeline, events",
}


# a submodule named `list` would shadow the builtin in this package's namespace once imported
_MODULES: dict[str, str] = {"list": "listing"}


_SNAKE_OPTION = re.compile(r"--[a-z0-9]+(?:_[a-z0-9]+)+")


def _package_version() -> str:
    from .. import __version__

    return __version__


def _kebab(option: str) -> str:
    """`--data_dir` -> `--data-dir` (the leading dashes and single-dash options stay as they are)."""
    if not option.startswith("--"):
        return option
    return "--" + option[2:].replace("_", "-")


def _snake(option: str) -> str:
    if not option.startswith("--"):
        return option
    return "--" + option[2:].replace("-", "_")


def apply_flag_style(parser: argparse.ArgumentParser) -> None:
    """Show every long option of `parser` in kebab-case and accept its snake_case spelling as a hidden alias.

    Runs after a subcommand module declared its arguments (argument groups included), so the modules need no
    particular style; an option declared in both spellings becomes one. `dest` is left as declared.
    """
    # argparse keeps the options of the parser and of all its groups in these two shared tables
    actions: list[argparse.Action] = parser._actions
    table: dict[str, argparse.Action] = parser._option_string_actions
    for action in actions:
        if not action.option_strings:
            continue
        shown = list(dict.fromkeys(_kebab(option) for option in action.option_strings))
        accepted = set(shown) | {_snake(option) for option in shown} | set(action.option_strings)
        for option in accepted:
            other = table.get(option)
            if other is not None and other is not action:
                raise ValueError(f"{parser.prog}: {option} names two options ({other.dest} and {action.dest})")
            table[option] = action
        action.option_strings = shown

    # help texts that name one of these options in snake_case name it as shown
    def as_shown(text: str | None) -> str | None:
        return text and _SNAKE_OPTION.sub(lambda match: _kebab(match[0]) if match[0] in table else match[0], text)

    for action in actions:
        action.help = as_shown(action.help)
    for group in parser._action_groups:
        group.title, group.description = as_shown(group.title), as_shown(group.description)
    parser.description = as_shown(parser.description)


def _add_subcommands(parser: argparse.ArgumentParser, with_arguments: Iterable[str]) -> None:
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    with_arguments = set(with_arguments)
    for name, help_text in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        if name in with_arguments:
            module = importlib.import_module(f"{__name__}.{_MODULES.get(name, name)}")
            module.add_arguments(subparser)
            apply_flag_style(subparser)
            subparser.set_defaults(_run=module.run)


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser; `commands` limits which subcommand modules are imported (default: all)."""
    parser = argparse.ArgumentParser(
        prog="spectrogram-transformers", description="AST, HTS-AT and SSAST audio spectrogram transformers"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    _add_subcommands(parser, SUBCOMMANDS if commands is None else commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # the top level has no option that takes a value: the first word is the subcommand (if it is one)
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser([command] if command in SUBCOMMANDS else []).parse_args(argv)
    from .errors import run_command

    return run_command(args._run, args)


if __name__ == "__main__":
    sys.exit(main())
