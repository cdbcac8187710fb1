"""The error type of inference: a user's mistake, which the command line prints as one line."""

from ..errors import InvalidInputError


class InferenceError(InvalidInputError):
    """A user's mistake (unreadable audio, a model that cannot classify, a missing tool): the message says what
    to change; the command line prints it as one line."""
