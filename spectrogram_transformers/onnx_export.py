"""ONNX export of this package's audio-classification models (the ONNX Runtime runner is `inference.onnx_runtime`).

`export_onnx(model_dir, output)` writes `output/model.onnx` with the model's `config.json` and
`preprocessor_config.json` beside it, so the directory is self-contained: `OnnxAudioModel(output)` runs it
and returns the same `logits` (and HTS-AT's `framewise_logits`) as the PyTorch model. The batch axis is
dynamic; the time axis is the one the feature extractor produces (AST/SSAST learn one positional embedding
per patch of `max_length` frames, HTS-AT folds a fixed `num_frames` into its image), so it is fixed.
`quantize="int8"` applies ONNX Runtime's dynamic int8 quantisation to the weights of the linear layers.

Self-attention without a mask (AST, SSAST) is exported as ONE q/k/v MatMul (the model's three projections
concatenated at export time) and ONE ONNX Runtime `com.microsoft::MultiHeadAttention` node per layer instead of MatMul-Softmax-MatMul: ONNX Runtime's CPU kernel for it computes attention in
tiles without materialising the (heads, tokens, tokens) scores (`benchmarks/profile_ast_model.py` shows its
time against PyTorch's attention), and half of an int8 model's time is attention. The graph therefore needs ONNX Runtime (any runtime with
the Microsoft contrib ops); HTS-AT's masked window attention keeps standard ONNX ops.

Needs the `[onnx]` extra (`onnx`, `onnxruntime`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .inference import load_torch_classifier
from .inference.onnx_runtime import (  # the runner lives with inference; its names stay importable here
    EXPORT_FILE,
    METADATA_FILE,
    OnnxAudioModel,
    OnnxClassifierOutput,
    require_onnx,
)
from .modeling.export_transformers import refuse_non_empty_output

__all__ = ["EXPORT_FILE", "METADATA_FILE", "OnnxAudioModel", "OnnxClassifierOutput", "OnnxExportReport", "export_onnx"]

QUANTIZATIONS = ("int8",)
OPSET = 17


ONNXRUNTIME_ATTENTION = "onnxruntime_mha"
_MHA_OP = "spectrogram_transformers::onnxruntime_mha"
_mha_registered = False


def _register_onnxruntime_attention() -> None:
    """Register (once) the custom op that exports as MultiHeadAttention and the attention function using it."""
    global _mha_registered
    if _mha_registered:
        return
    from torch.onnx import symbolic_helper
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    @torch.library.custom_op(_MHA_OP, mutates_args=())
    def onnxruntime_mha(
        query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, num_heads: int, scale: float
    ) -> torch.Tensor:
        """(B, N, H*d) query/key/value -> (B, N, H*d) attention output; what MultiHeadAttention computes."""
        batch, length, width = query.shape

        def heads(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.reshape(batch, -1, num_heads, width // num_heads).transpose(1, 2)

        output = nn.functional.scaled_dot_product_attention(heads(query), heads(key), heads(value), scale=scale)
        return output.transpose(1, 2).reshape(batch, length, width)

    @onnxruntime_mha.register_fake
    def _(query, key, value, num_heads, scale):
        return torch.empty_like(query)

    @symbolic_helper.parse_args("v", "v", "v", "i", "f")
    def multi_head_attention(graph, query, key, value, num_heads, scale):
        output = graph.op("com.microsoft::MultiHeadAttention", query, key, value, num_heads_i=num_heads, scale_f=scale)
        output.setType(query.type())
        return output

    torch.onnx.register_custom_op_symbolic(_MHA_OP, multi_head_attention, 1)

    def onnxruntime_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        """The attention interface's function: MultiHeadAttention for unmasked attention, sdpa otherwise."""
        if attention_mask is not None or dropout:
            return sdpa_attention_forward(
                module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
            )
        batch, heads, length, head_dim = query.shape

        def flat(tensor: torch.Tensor) -> torch.Tensor:  # (B, H, N, d) -> (B, N, H*d)
            return tensor.transpose(1, 2).reshape(batch, -1, heads * head_dim)

        scale = float(scaling) if scaling is not None else head_dim**-0.5
        output = torch.ops.spectrogram_transformers.onnxruntime_mha(flat(query), flat(key), flat(value), heads, scale)
        return output.view(batch, length, heads, head_dim), None

    AttentionInterface.register(ONNXRUNTIME_ATTENTION, onnxruntime_attention)
    _mha_registered = True


def _fuse_qkv_projections(model: nn.Module) -> None:
    """AST/SSAST attention computes q, k and v with one concatenated linear in the exported graph: one MatMul
    (one int8 weight) feeding one MultiHeadAttention node per layer, where the model keeps three `q_proj`/
    `k_proj`/`v_proj` linears (PEFT targets them). HTS-AT's window attention keeps its three projections."""
    for module in model.modules():
        if callable(getattr(module, "fuse_qkv_projections", None)):
            module.fuse_qkv_projections()


class _ClassifierOutputs(nn.Module):
    """The model as a function of its features alone, returning plain tensors (what the ONNX graph holds)."""

    def __init__(self, model: nn.Module, output_names: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.output_names = output_names

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(features, return_dict=True)
        return tuple(outputs[name] for name in self.output_names)


@dataclass
class OnnxExportReport:
    """What `export_onnx` wrote and how closely ONNX Runtime reproduces PyTorch on an example batch."""

    path: Path
    quantize: str | None
    input_name: str
    input_shape: tuple[int, ...]
    output_names: tuple[str, ...]
    max_abs_difference: dict[str, float]
    same_top1: bool

    def summary(self) -> str:
        differences = ", ".join(f"{name} {value:.2e}" for name, value in self.max_abs_difference.items())
        kind = f"{self.quantize}-quantised " if self.quantize else ""
        shape = "(batch, " + ", ".join(map(str, self.input_shape[1:])) + ")"
        return (
            f"wrote {kind}ONNX model {self.path} (input {self.input_name} {shape}, outputs {', '.join(self.output_names)}); "
            f"max |ONNX Runtime - PyTorch| on the example batch: {differences}; top-1 {'unchanged' if self.same_top1 else 'CHANGED'}"
        )


def _example_features(feature_extractor, batch_size: int = 2) -> tuple[str, torch.Tensor]:
    """A batch of the extractor's own output shape: noise through the real front end, so padding is included."""
    rate = int(feature_extractor.sampling_rate)
    generator = np.random.default_rng(0)
    audio = [0.1 * generator.standard_normal(rate * 10).astype(np.float32) for _ in range(batch_size)]
    features = feature_extractor(audio, sampling_rate=rate, return_tensors="pt")
    input_name = feature_extractor.model_input_names[0]
    return input_name, features[input_name].float()


def export_onnx(
    model_dir: str | Path,
    output: str | Path,
    quantize: str | None = None,
    *,
    overwrite: bool = False,
    opset: int = OPSET,
) -> OnnxExportReport:
    """Export the classification model saved in `model_dir` to the directory `output` (see the module doc).

    Args:
        model_dir: a directory saved by this package (AST, SSAST or HTS-AT classification model with its
            feature extractor), or a Hub id.
        output: directory to write `model.onnx`, `config.json`, `preprocessor_config.json` and
            `onnx_export.json` into.
        quantize: None for fp32, "int8" for ONNX Runtime's dynamic int8 quantisation of the weights.
        overwrite: replace the files of an existing non-empty `output`.
    """
    require_onnx()
    if quantize not in (None, *QUANTIZATIONS):
        raise ValueError(f"quantize must be one of {QUANTIZATIONS} or None, got {quantize!r}")
    output = Path(output)
    if output.suffix == ".onnx":
        raise ValueError(
            f"output {output} must be a directory (the model's config and feature extractor go beside model.onnx)"
        )
    refuse_non_empty_output(output, overwrite)

    model, feature_extractor = load_torch_classifier(model_dir)
    _register_onnxruntime_attention()
    input_name, example = _example_features(feature_extractor)
    output_names = ("logits", "framewise_logits") if model.config.model_type == "htsat" else ("logits",)
    wrapper = _ClassifierOutputs(model, output_names).eval()
    with torch.no_grad():
        expected = wrapper(example)
    model.set_attn_implementation(ONNXRUNTIME_ATTENTION)
    _fuse_qkv_projections(model)

    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        fp32_path = Path(scratch) / EXPORT_FILE
        # the tracer warns at every shape check of the forward; the export is verified below instead
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: no onnxscript needed
            torch.onnx.export(
                wrapper,
                (example,),
                str(fp32_path),
                input_names=[input_name],
                output_names=list(output_names),
                dynamic_axes={name: {0: "batch"} for name in (input_name, *output_names)},
                opset_version=opset,
                dynamo=False,
            )
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # MatMuls only: the patch-embedding (and HTS-AT head) convolutions ran slower as ConvInteger and
            # are a tiny share of the work; keeping them fp32 also keeps their accuracy
            quantize_dynamic(
                str(fp32_path), str(output / EXPORT_FILE), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"]
            )
        else:
            shutil.copyfile(fp32_path, output / EXPORT_FILE)

    model.config.save_pretrained(output)
    feature_extractor.save_pretrained(output)
    metadata = {
        "format": "onnx",
        "opset": opset,
        "quantize": quantize,
        "input_name": input_name,
        "input_shape": ["batch", *example.shape[1:]],
        "output_names": list(output_names),
        "source": str(model_dir),
    }
    (output / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")

    runner = OnnxAudioModel(output)
    produced = runner(example)
    differences = {name: (produced[name] - value).abs().max().item() for name, value in zip(output_names, expected)}
    same_top1 = bool(torch.equal(produced["logits"].argmax(-1), expected[0].argmax(-1)))
    return OnnxExportReport(
        path=output / EXPORT_FILE,
        quantize=quantize,
        input_name=input_name,
        input_shape=tuple(example.shape),
        output_names=output_names,
        max_abs_difference=differences,
        same_top1=same_top1,
    )
