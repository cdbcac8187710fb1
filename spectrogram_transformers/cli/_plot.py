"""`--plot` of `classify` and `detect`: one-line errors before any model runs (missing extra, unknown file type)."""

from pathlib import Path

__all__ = ["check_plot_argument"]


def check_plot_argument(path: str) -> Path:
    """The `--plot` path, or SystemExit with one line when matplotlib is missing or cannot write that file type."""
    try:
        from ..plotting import check_plot_path

        return check_plot_path(path)
    except (ImportError, ValueError) as error:
        raise SystemExit(f"--plot: {error}") from None
