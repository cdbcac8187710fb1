"""`Linear`: `nn.Linear` whose CPU inference runs on oneDNN's matmul instead of BLAS `addmm`.

Why: on the CPUs we measured (AMD EPYC with AVX-512, torch 2.13's MKL build) oneDNN's fp32 matmul reaches
~200 GFLOP/s on AST's layer shapes where `F.linear` (MKL `addmm`, plus a copy that broadcasts the bias into
the output first) reaches 148-185; in bf16 it saves that bias copy. The linears are ~70 % of an AST forward,
so this is the largest lever model code has on CPU inference (`benchmarks/bench_ast_model.py`).

The oneDNN op (`torch.ops.mkldnn._linear_pointwise`, the kernel `torch.compile` uses on CPU) has no
autograd and no autocast rule, so it is used only where it cannot change semantics: CPU tensors of one
dtype (float32, or bfloat16 on a CPU that supports it), gradients off, CPU autocast off, and not while
tracing, scripting, compiling or exporting. Everything else — training, autocast, CUDA, ONNX export —
takes `nn.Linear`'s own path. `torch.backends.mkldnn.flags(enabled=False)` turns the fast path off.
Results differ from `F.linear` only by float rounding (a different summation order).

A subclass rather than a function called from the blocks, so state-dict names, `isinstance(m, nn.Linear)`
checks (weight init, PEFT/LoRA targeting) and wrappers that call the layer's `forward` keep working.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from transformers.activations import GELUActivation

_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
_FAST_DTYPES = (torch.float32, torch.bfloat16)


@functools.cache
def _bf16_matmul_supported() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def onednn_linear_applies(inputs: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `Linear` would run `inputs` on oneDNN (see the module doc for the conditions)."""
    if _ONEDNN_LINEAR is None or not torch.backends.mkldnn.enabled:
        return False
    if inputs.device.type != "cpu" or weight.device.type != "cpu" or inputs.dtype != weight.dtype:
        return False
    if inputs.dtype not in _FAST_DTYPES or (inputs.dtype == torch.bfloat16 and not _bf16_matmul_supported()):
        return False
    if torch.is_grad_enabled() or torch.is_autocast_enabled("cpu"):
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
        return False
    return not torch.onnx.is_in_onnx_export() and inputs.dim() >= 2 and inputs.numel() > 0


class Linear(nn.Linear):
    """`nn.Linear` with oneDNN CPU inference (see the module doc); identical parameters and training path."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if onednn_linear_applies(inputs, self.weight):
            return _ONEDNN_LINEAR(inputs.contiguous(), self.weight, self.bias, "none", [], "")
        return super().forward(inputs)


def _hooked(module: nn.Module) -> bool:
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or nn.modules.module._global_forward_hooks
        or nn.modules.module._global_forward_pre_hooks
    )


def _is_exact_gelu(activation: nn.Module) -> bool:
    return type(activation) is GELUActivation and activation.act is nn.functional.gelu


def linear_then_activation(layer: nn.Module, activation: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """`activation(layer(inputs))`; with our `Linear` and exact (erf) GELU on the oneDNN path, one fused call.

    Nothing is fused when either module was replaced (a PEFT/LoRA wrapper, a quantised layer, another
    activation) or carries a forward hook that the fused call would skip.
    """
    if (
        type(layer) is Linear
        and _is_exact_gelu(activation)
        and onednn_linear_applies(inputs, layer.weight)
        and not (_hooked(layer) or _hooked(activation))
    ):
        return _ONEDNN_LINEAR(inputs.contiguous(), layer.weight, layer.bias, "gelu", [], "none")
    return activation(layer(inputs))
