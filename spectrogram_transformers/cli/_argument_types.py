"""argparse `type=` functions that refuse out-of-range values at parse time (one line, exit 2), before any model
is loaded: a threshold outside [0, 1] would otherwise silently find no events, an infinite hop overflow later."""

from __future__ import annotations

import argparse
import math

__all__ = ["non_negative_seconds", "positive_int", "positive_seconds", "probability", "torch_device"]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def probability(text: str) -> float:
    """A threshold: a finite number in [0, 1]."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"must be a probability between 0 and 1, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A duration: finite and > 0."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def non_negative_seconds(text: str) -> float:
    """A duration that may be zero (a minimum event length or gap): finite and >= 0."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def torch_device(text: str) -> str:
    """A torch device that exists here: `cpu`, `cuda`, `cuda:1`, `mps`, ... (checked against this torch build)."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}: use cpu, cuda, cuda:N or mps") from None
    if device.type == "cpu":
        return text
    backend = getattr(torch, device.type, None)
    if device.type == "mps":
        available, count = torch.backends.mps.is_available(), 1
    elif backend is not None and hasattr(backend, "is_available"):
        available = bool(backend.is_available())
        count = backend.device_count() if available and hasattr(backend, "device_count") else 0
    else:
        available, count = False, 0
    if not available:
        build = (
            "a CPU-only torch build"
            if device.type == "cuda" and torch.version.cuda is None
            else "no such device visible"
        )
        raise argparse.ArgumentTypeError(f"device {text!r} is not available here ({build}); use --device cpu")
    if device.index is not None and device.index >= count:
        raise argparse.ArgumentTypeError(
            f"device {text!r} does not exist: this machine has {count} {device.type} device(s)"
        )
    return text
