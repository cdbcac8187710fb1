"""The `TrainingArguments` fields as command-line flags, shared by `train` and `pretrain`.

Every field of transformers' `TrainingArguments` becomes a flag whose default is "not given", so a recipe's
defaults apply unless the user overrides them; `training_overrides` collects the ones given.
"""

import argparse
import dataclasses
import importlib.util
from collections.abc import Iterable
from typing import Any

__all__ = ["add_training_argument_overrides", "require_training_extra", "training_overrides"]

# import name -> distribution, of the `[train]` extra's packages that training imports
TRAINING_MODULES = {"datasets": "datasets", "accelerate": "accelerate", "sklearn": "scikit-learn"}


def require_training_extra(command: str, modules: Iterable[str] = tuple(TRAINING_MODULES)) -> None:
    """Exit with one line naming the `[train]` extra when a training dependency is not installed.

    Checked before anything imports the training stack, so a base install gets this line instead of a
    `ModuleNotFoundError` traceback from deep inside `datasets` or `Trainer`.
    """
    missing = [TRAINING_MODULES[name] for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"error: `spectrogram-transformers {command}` needs the training dependencies ({', '.join(missing)} "
            "missing): pip install 'spectrogram-transformers[train]'"
        )


def add_training_argument_overrides(parser: argparse.ArgumentParser, title: str) -> None:
    """Add every `TrainingArguments` field (as `HfArgumentParser` spells it) to `parser`, defaulting to absent."""
    from transformers import HfArgumentParser, TrainingArguments

    group = parser.add_argument_group(title)
    for action in HfArgumentParser(TrainingArguments)._actions:
        if action.dest == "help":
            continue
        kwargs = {"dest": action.dest, "default": argparse.SUPPRESS, "help": action.help}
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            kwargs["action"] = "store_true" if isinstance(action, argparse._StoreTrueAction) else "store_false"
        else:
            kwargs.update(type=action.type, nargs=action.nargs, const=action.const, choices=action.choices)
        group.add_argument(*action.option_strings, **kwargs)


def training_overrides(args: argparse.Namespace, own_flags: Iterable[str] = ()) -> dict[str, Any]:
    """The `TrainingArguments` fields given on the command line (flags the subcommand owns excluded)."""
    from transformers import TrainingArguments

    names = {field.name for field in dataclasses.fields(TrainingArguments)} - set(own_flags)
    return {key: value for key, value in vars(args).items() if key in names}
