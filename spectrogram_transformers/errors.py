"""The one base class of the errors a user can fix: the command line prints them as one line and exits 2.

A `UserError` says what is wrong with what the user gave (a file, a model directory, a flag, the data) or with
the environment (disk, device), and what to do about it. Anything else reaching the command line is a bug and
keeps its traceback. This module imports nothing, so every layer (inference, training, the CLI) can use it.
"""

__all__ = ["InvalidInputError", "UserError"]


class UserError(Exception):
    """A mistake the user can fix or an environment problem; the message names the cause and what to do."""


class InvalidInputError(UserError, ValueError):
    """A value the user gave (data, model, option) that cannot work; still a ValueError for callers that catch one."""
