"""Which dtype and backend inference runs in."""

from __future__ import annotations

from typing import Literal

import torch

from ..runtime import cpu_supports_bf16
from .errors import InferenceError

DTypeName = Literal["auto", "float32", "bfloat16"]
BackendName = Literal["torch", "onnx"]
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16")
BACKENDS: tuple[str, ...] = ("torch", "onnx")


def check_runner_arguments(batch_size: int, backend: str) -> None:
    """The batch size and backend every runner (classifier, embedder) takes, refused as a user's mistake."""
    if batch_size < 1:
        raise InferenceError(f"batch_size must be >= 1, got {batch_size}")
    if backend not in BACKENDS:
        raise InferenceError(f"backend must be one of {BACKENDS}, got {backend!r}")


def bf16_supported(device: str | torch.device = "cpu") -> bool:
    """Whether `device` runs bfloat16 natively (CUDA with bf16, or a CPU with AVX512-BF16 / AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # the CPU's own flags: oneDNN's check also says yes where bf16 is emulated (slower than float32)
        return cpu_supports_bf16()
    return False


def resolve_dtype(dtype: DTypeName | torch.dtype | None, device: str | torch.device = "cpu") -> torch.dtype:
    """The torch dtype to run in. "auto" (or None): bfloat16 where the device runs it natively (the bf16 parity
    tests keep top-1 predictions unchanged on the fixture clips), float32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.bfloat16):
            raise InferenceError(f"dtype must be float32 or bfloat16, got {dtype}")
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if bf16_supported(device) else torch.float32
    if dtype == "float32":
        return torch.float32
    if dtype == "bfloat16":
        return torch.bfloat16
    raise InferenceError(f"dtype must be one of {DTYPES}, got {dtype!r}")
