"""An exported ONNX model run by ONNX Runtime, standing in for the PyTorch classifier it came from.

`OnnxAudioModel(directory)` runs what `spectrogram_transformers.onnx_export.export_onnx` wrote (`model.onnx` with
the model's `config.json` and `preprocessor_config.json` beside it) and returns the same `logits` (and HTS-AT's
`framewise_logits`). It lives with inference, below the exporter, so that `AudioClassifier(..., backend="onnx")`
needs nothing from the export code. Needs the `[onnx]` extra (`onnx`, `onnxruntime`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers.utils import ModelOutput

__all__ = ["EXPORT_FILE", "METADATA_FILE", "OnnxAudioModel", "OnnxClassifierOutput", "graph_precision", "require_onnx"]

EXPORT_FILE = "model.onnx"
METADATA_FILE = "onnx_export.json"


def require_onnx():
    """(onnx, onnxruntime), or an ImportError naming the `[onnx]` extra."""
    try:
        import onnx
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            "ONNX export and inference need the onnx extra: pip install 'spectrogram-transformers[onnx]'"
        ) from error
    return onnx, onnxruntime


@dataclass
class OnnxClassifierOutput(ModelOutput):
    """`OnnxAudioModel`'s outputs: a dict that also reads as attributes (`.logits`), as transformers' outputs."""

    logits: torch.FloatTensor | None = None
    framewise_logits: torch.FloatTensor | None = None


# operators that compute in integers: what ONNX Runtime's quantisers (dynamic or static) put in a graph
_INTEGER_OPERATORS = frozenset(
    {
        "MatMulInteger",
        "ConvInteger",
        "QLinearMatMul",
        "QLinearConv",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
        "QAttention",
    }
)


def graph_precision(model_file: str | Path) -> str:
    """ "int8" when the ONNX graph computes any operator in integers (a quantised export), else "float32".

    Read from the graph itself rather than the export metadata, so a model quantised by other tools, or one
    whose metadata file was lost, is still described as what it is."""
    onnx, _ = require_onnx()
    graph = onnx.load(str(model_file), load_external_data=False).graph
    return "int8" if any(node.op_type in _INTEGER_OPERATORS for node in graph.node) else "float32"


class OnnxAudioModel:
    """An exported model run by ONNX Runtime, called like the PyTorch classifier it came from.

    `OnnxAudioModel(path)(features)` returns float32 torch tensors in a dict that also reads as attributes:
    `logits` (B, labels), and for HTS-AT `framewise_logits` (B, frames, labels). `path` is the directory `export_onnx` wrote (or its
    `model.onnx`). `config` is the model's config (labels in `config.id2label`); `precision` what the graph
    computes in: "float32", or "int8" for a quantised export (its inputs and outputs stay float32).

    Args:
        path: export directory or its `model.onnx`.
        threads: ONNX Runtime intra-op threads (default: ONNX Runtime's choice, one per physical core).
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        from transformers import AutoConfig

        import spectrogram_transformers  # noqa: F401  (registers this package's configs)

        _, onnxruntime = require_onnx()
        path = Path(path)
        directory = path.parent if path.suffix == ".onnx" else path
        model_file = path if path.suffix == ".onnx" else path / EXPORT_FILE
        if not model_file.is_file():
            raise FileNotFoundError(
                f"no ONNX model at {model_file}; write one with `spectrogram-transformers export --format onnx`"
            )
        metadata_file = directory / METADATA_FILE
        self.metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
        self.config = AutoConfig.from_pretrained(str(directory))
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime's own types (InvalidProtobuf, Fail, ...): a corrupt or foreign file
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ValueError(
                f"{model_file} is not a readable ONNX model ({reason}); it may be truncated or not an ONNX file: "
                "export it again with `spectrogram-transformers export --format onnx`"
            ) from None
        self.precision: str = graph_precision(model_file)
        model_input = self.session.get_inputs()[0]
        self.input_name: str = model_input.name
        self.input_shape: tuple = tuple(model_input.shape)  # ("batch", frames, mel)
        self.output_names: tuple[str, ...] = tuple(output.name for output in self.session.get_outputs())

    @property
    def main_input_name(self) -> str:
        return self.input_name

    def _check(self, features: np.ndarray) -> np.ndarray:
        expected = self.input_shape[1:]
        if features.ndim != 3 or tuple(features.shape[1:]) != tuple(expected):
            raise ValueError(
                f"{self.input_name} must have shape (batch, {', '.join(map(str, expected))}); got {tuple(features.shape)}. "
                "Use the model's feature extractor (saved beside the ONNX model) to turn audio into features."
            )
        if features.shape[0] == 0:
            raise ValueError(f"{self.input_name} is an empty batch")
        if not np.issubdtype(features.dtype, np.floating):
            raise TypeError(f"{self.input_name} must be floating point, got {features.dtype}")
        return np.ascontiguousarray(features, dtype=np.float32)

    def __call__(self, features: np.ndarray | torch.Tensor | None = None, **inputs) -> OnnxClassifierOutput:
        """Features (B, frames, mel) positionally or by the model's input name -> {output name: tensor}."""
        if features is None:
            if self.input_name not in inputs:
                raise TypeError(f"pass the features positionally or as {self.input_name}=...")
            features = inputs.pop(self.input_name)
        inputs.pop("attention_mask", None)  # the feature extractor's, not a model input
        if inputs:
            raise TypeError(f"unexpected inputs {sorted(inputs)}; the ONNX model takes {self.input_name} only")
        if isinstance(features, torch.Tensor):
            features = features.detach().to("cpu", torch.float32).numpy()
        outputs = self.session.run(list(self.output_names), {self.input_name: self._check(np.asarray(features))})
        return OnnxClassifierOutput(
            **{name: torch.from_numpy(value).float() for name, value in zip(self.output_names, outputs)}
        )
