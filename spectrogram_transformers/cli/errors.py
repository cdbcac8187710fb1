"""The one error boundary of every subcommand: a user's mistake or an environment problem becomes ONE line on
stderr and exit status 2; a genuine bug keeps its traceback.

Exit statuses: 0 success; 1 some input files could not be read (the command lists them and goes on); 2 a user
error (this module; argparse uses 2 for bad flags as well); 130 interrupted (Ctrl+C).
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable

__all__ = ["EXIT_INTERRUPTED", "EXIT_UNREADABLE_INPUTS", "EXIT_USER_ERROR", "run_command", "user_error_message"]

EXIT_UNREADABLE_INPUTS = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

# OSError numbers that are the environment's doing, with what to do about them
_OS_ERROR_ADVICE = {
    errno.ENOSPC: "no space left on device while writing {path}: free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded while writing {path}: free some space or write elsewhere",
    errno.EROFS: "{path} is on a read-only file system: choose a writable location",
    errno.EACCES: "permission denied: {path}",
    errno.EPERM: "operation not permitted: {path}",
    errno.ELOOP: "{path} is a symbolic link loop (it points back to itself): fix or remove the link",
    errno.ENOENT: "no such file or directory: {path}",
    errno.EEXIST: "{path} already exists (as a file?): choose another path or remove it",
    errno.ENOTDIR: "{path} is not a directory (a file is in the way): choose another path",
    errno.EISDIR: "{path} is a directory, not a file",
    errno.ENAMETOOLONG: "file name too long: {path}",
}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _os_error_message(error: OSError) -> str:
    path = error.filename if error.filename is not None else "a file"
    advice = _OS_ERROR_ADVICE.get(error.errno)
    if advice is not None:
        return advice.format(path=path)
    if error.errno is not None and error.strerror:
        return f"{error.strerror}: {path}"
    return _first_line(error)  # transformers' "can't load ... from <repo>" and similar: already a sentence


def user_error_message(error: BaseException) -> str | None:
    """The one line to print for a user's mistake or an environment problem, or None for a bug (re-raised)."""
    from ..errors import UserError

    if isinstance(error, UserError):
        return _first_line(error) if isinstance(error, OSError) else str(error).strip()
    # modeling's checkpoint errors (modeling/checkpoint.py, kept free of package imports for the remote code)
    if type(error).__name__ == "CheckpointKeyError":
        return f"the weights do not fit the model's config: {error}"
    if type(error).__name__ == "CheckpointReadError":
        return str(error)
    if isinstance(error, OSError):
        return _os_error_message(error)
    if isinstance(error, MemoryError):
        return "out of memory: use a smaller --batch-size, shorter inputs, or a machine with more memory"
    if isinstance(error, ModuleNotFoundError) and error.name:
        package = error.name.split(".")[0]
        return f"the optional dependency {package!r} is not installed: pip install {package} (or the matching extra)"
    return None


def run_command(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a subcommand's `run(args)` inside the boundary; return the exit status."""
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exit_:
        if not isinstance(exit_.code, str):
            raise
        message = exit_.code.removeprefix("error: ")  # commands that exit with a message: a user error
    except Exception as error:  # classified below; bugs are re-raised unchanged
        message = user_error_message(error)
        if message is None:
            raise
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR
