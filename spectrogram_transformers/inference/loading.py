"""Loading a classifier (or, for embeddings, an encoder) and its feature extractor: a PyTorch model directory or
Hub id, or an exported ONNX graph with the preprocessor config saved beside it."""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import InferenceError


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _cannot_load_message(name: str, reason: str) -> str:
    """Why `name` gave no model config, in the user's terms: a path that does not exist and is no valid Hub id is
    "no such directory or Hub id" (transformers would say "Repo id must be in the form 'repo_name'...")."""
    if Path(name).exists():
        return f"cannot load a model from {name}: {reason}"
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return f"{name}: no such directory or Hub id"
    return f"{name}: no such directory or Hub id ({reason})"


def load_torch_classifier(model: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """(classifier in eval mode on `device` in `dtype`, its feature extractor) from a directory or Hub id; a
    base or pre-training model (which would get a random head) or a missing extractor is an InferenceError."""
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModelForAudioClassification,
    )

    name = str(model)
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InferenceError(_cannot_load_message(name, first_line)) from None
    architectures = list(getattr(config, "architectures", None) or [])
    wrong_kind = InferenceError(
        f"{name} holds {', '.join(architectures) or f'a {type(config).__name__} model'}, not an audio-classification "
        "model: classify and detect need a fine-tuned classifier (AST, SSAST or HTS-AT ...ForAudioClassification; a "
        "pre-training checkpoint must be fine-tuned first)"
    )
    # a saved base or pre-training model would load into the classifier with a random head: refuse it
    if architectures and not any(architecture.endswith("ForAudioClassification") for architecture in architectures):
        raise wrong_kind
    try:
        loaded = AutoModelForAudioClassification.from_pretrained(name)
    except ValueError as error:
        if "Unrecognized configuration class" in str(error):  # no audio-classification class for this config
            raise wrong_kind from None
        # unreadable weights: truncated or foreign safetensors, a refused pickle (the message names the file)
        raise InferenceError(f"cannot load the weights of {name}: {_first_line(error)}") from None
    except KeyError as error:  # CheckpointKeyError: weights of another family or another shape than config.json
        raise InferenceError(
            f"the weights in {name} do not fit its config.json (another model family or size?): {_first_line(error)}"
        ) from None
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise InferenceError(f"{name} has no usable preprocessor_config.json: {str(error).splitlines()[0]}") from None
    return loaded.to(device=device, dtype=dtype).eval(), feature_extractor


def load_onnx_classifier(path: str | Path):
    """The exported ONNX model (`export --format onnx`: a directory with model.onnx, or the file) and the feature
    extractor saved beside it."""
    from transformers import AutoFeatureExtractor

    from .onnx_runtime import OnnxAudioModel

    path = Path(path)
    directory = path.parent if path.suffix == ".onnx" else path
    try:
        model = OnnxAudioModel(str(path))
    except ImportError as error:  # the [onnx] extra is missing
        raise InferenceError(str(error)) from None
    except (FileNotFoundError, OSError, ValueError) as error:
        raise InferenceError(f"cannot load an ONNX model from {path}: {str(error).splitlines()[0]}") from None
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(str(directory))
    except (OSError, ValueError) as error:
        raise InferenceError(
            f"no feature extractor (preprocessor_config.json) beside {path}: {str(error).splitlines()[0]}"
        ) from None
    _check_onnx_graph_fits(model, feature_extractor, directory)
    return model, feature_extractor


def _check_onnx_graph_fits(model, feature_extractor, directory: Path) -> None:
    """Refuse, when loading, a config.json or preprocessor_config.json that does not fit the graph: labels that
    are not the graph's outputs would print wrong names silently; another input length fails on every file."""
    import numpy as np

    num_labels = len(model.config.id2label)
    for output in model.session.get_outputs():
        width = output.shape[-1] if output.shape else None
        if isinstance(width, int) and width != num_labels:
            raise InferenceError(
                f"{directory}: config.json names {num_labels} labels but the ONNX graph's {output.name!r} has "
                f"{width} outputs; use the config.json that was exported with this model.onnx"
            )
    expected = tuple(model.input_shape[1:])
    if all(isinstance(size, int) for size in expected):
        silence = np.zeros(int(feature_extractor.sampling_rate // 10), dtype=np.float32)
        features = feature_extractor(silence, sampling_rate=feature_extractor.sampling_rate, return_tensors="np")
        got = tuple(np.asarray(features[model.input_name]).shape[1:])
        if got != expected:
            raise InferenceError(
                f"{directory}: preprocessor_config.json makes features of shape {got} but the ONNX graph takes "
                f"{expected}; use the preprocessor_config.json that was exported with this model.onnx"
            )


ENCODER_MODEL_TYPES = ("ast", "ssast", "htsat")


def load_torch_encoder(model: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """(base model — the encoder without any head — in eval mode on `device` in `dtype`, its feature extractor)
    from a directory or Hub id holding any model of this package: a fine-tuned classifier, an SSAST pre-training
    checkpoint or a bare encoder. `AutoModel` keeps the encoder's weights and drops the heads."""
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    name = str(model)
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InferenceError(_cannot_load_message(name, first_line)) from None
    if getattr(config, "model_type", None) not in ENCODER_MODEL_TYPES:
        raise InferenceError(
            f"{name} holds a {getattr(config, 'model_type', type(config).__name__)!r} model; embeddings need an AST, "
            "SSAST or HTS-AT model of this package"
        )
    encoder = AutoModel.from_pretrained(name)
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise InferenceError(f"{name} has no usable preprocessor_config.json: {str(error).splitlines()[0]}") from None
    return encoder.to(device=device, dtype=dtype).eval(), feature_extractor
