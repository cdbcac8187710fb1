"""`pipeline("audio-feature-extraction", model=DIR)`: embeddings of this package's models as a transformers pipeline.

Why a task of its own. transformers splits feature extraction by modality: "feature-extraction" is text (it loads
a tokenizer and feeds `input_ids`), "image-feature-extraction" is images (an image processor); audio has no such
task. "audio-feature-extraction" is its audio counterpart, registered with the public
`PIPELINE_REGISTRY.register_pipeline` (type "audio": the feature extractor is loaded, no tokenizer) and `AutoModel`
as its model class, so that a classifier, an SSAST pre-training checkpoint or a bare encoder all load as the
encoder alone.

It runs the same code as `spectrogram_transformers.inference.AudioEmbedder` (decoding, windows, features, the
encoder call), so it returns the same vectors: per window the base model's `pooler_output`, and the file's vector
is their mean. Inputs are those of the audio-classification pipeline: a file path, the bytes of a file, a 1-D
array at the model's rate, or `{"array" or "raw": array, "sampling_rate": rate}` at any rate.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline

from .registration import finish_pipeline_module

__all__ = ["TASK", "AudioFeatureExtractionPipeline", "register_embedding_pipeline"]

TASK = "audio-feature-extraction"
# windows whose features are computed in one call of the feature extractor (then yielded one by one)
_FEATURE_GROUP = 16


class AudioFeatureExtractionPipeline(ChunkPipeline):
    """Embeddings of audio with an AST, SSAST or HTS-AT model of this package.

    `pipe(audio)` returns `{"embedding", "window_embeddings", "window_starts"}` (lists of floats; torch tensors
    with `return_tensors=True`): the file's vector (the mean over windows), each window's `pooler_output`, and the
    window starts in seconds. `tokens=True` adds `"tokens"` (windows, time, frequency, hidden), `"prefix_tokens"`
    (AST / SSAST cls and distillation tokens) and `"token_hop_s"`. `window`, `hop` (seconds) and
    `short_clip` ("pad" or "crop") are those of `AudioEmbedder.embed` (docs/embeddings.md).
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = True
    _load_tokenizer = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        from .inference import AudioEmbedder

        if self.feature_extractor is None:
            raise ValueError("audio-feature-extraction needs the model's feature extractor (preprocessor_config.json)")
        self.embedder = AudioEmbedder.from_model(
            self.model, self.feature_extractor, device=self.model.device, dtype=self.model.dtype
        )

    def _sanitize_parameters(
        self,
        tokens: bool | None = None,
        window: float | None = None,
        hop: float | None = None,
        short_clip: str | None = None,
        return_tensors: bool | None = None,
        **kwargs: Any,
    ):
        preprocess = {
            key: value
            for key, value in (("window", window), ("hop", hop), ("short_clip", short_clip))
            if value is not None
        }
        forward = {} if tokens is None else {"tokens": tokens}
        postprocess = {
            key: value for key, value in (("tokens", tokens), ("return_tensors", return_tensors)) if value is not None
        }
        return preprocess, forward, postprocess

    def _decode(self, inputs: Any) -> np.ndarray:
        """Mono float32 waveform at the model's rate of any input the audio-classification pipeline accepts."""
        from .feature_extraction import load_audio, resample, to_mono_float32

        rate = self.embedder.sampling_rate
        if isinstance(inputs, (str, os.PathLike)):
            return self.embedder.decode(inputs)  # soundfile, ffmpeg for other formats
        if isinstance(inputs, (bytes, bytearray)):
            return load_audio(bytes(inputs), target_sr=rate)[0]
        if isinstance(inputs, dict):
            if "sampling_rate" not in inputs or not ("raw" in inputs or "array" in inputs):
                raise ValueError(
                    'a dict input needs "array" (or "raw") with the audio and "sampling_rate" with its rate'
                )
            array = inputs["raw"] if inputs.get("raw") is not None else inputs["array"]
            return resample(to_mono_float32(array), inputs["sampling_rate"], rate)
        if isinstance(inputs, (np.ndarray, torch.Tensor)):
            return to_mono_float32(inputs)  # raw audio is at the model's rate, as in transformers' audio pipelines
        raise TypeError(
            f"expected a file path, bytes, an array or a dict with 'array' and 'sampling_rate', got {type(inputs).__name__}"
        )

    def preprocess(self, inputs: Any, window: float | None = None, hop: float | None = None, short_clip: str = "pad"):
        from .inference import InferenceError, window_starts
        from .inference.embeddings import SHORT_CLIP_MODES
        from .inference.windows import window_and_hop_samples

        embedder = self.embedder
        if short_clip not in SHORT_CLIP_MODES:
            raise InferenceError(f"short_clip must be one of {SHORT_CLIP_MODES}, got {short_clip!r}")
        if short_clip == "crop" and not embedder.can_crop:
            raise InferenceError(
                "short_clip='crop' needs AST or SSAST: HTS-AT's Swin windows need its whole input image"
            )
        waveform = self._decode(inputs)
        window_samples, hop_samples = window_and_hop_samples(
            window, hop, embedder.input_samples, embedder.sampling_rate
        )
        window_samples = min(window_samples or len(waveform), len(waveform))
        hop_samples = min(hop_samples or window_samples, window_samples)
        max_length = embedder.cropped_frames(window_samples) if short_clip == "crop" else None
        starts = window_starts(len(waveform), window_samples, hop_samples)
        for first in range(0, len(starts), _FEATURE_GROUP):
            group = starts[first : first + _FEATURE_GROUP]
            features = embedder.features([waveform[start : start + window_samples] for start in group], max_length)
            for index, row in enumerate(features):
                yield {
                    embedder.input_name: row[None],
                    "crop": max_length is not None,
                    "start_s": group[index] / embedder.sampling_rate,
                    "is_last": first + index == len(starts) - 1,
                }

    def _forward(self, model_inputs: dict[str, Any], tokens: bool = False) -> dict[str, Any]:
        from .inference import token_grid

        is_last, start_s, crop = model_inputs.pop("is_last"), model_inputs.pop("start_s"), model_inputs.pop("crop")
        crop = bool(crop[0] if isinstance(crop, list) else crop)
        output = self.embedder.encode(model_inputs[self.embedder.input_name], interpolate_pos_encoding=crop)
        result = {"pooled": output.pooler_output, "is_last": is_last, "start_s": start_s}
        if tokens:
            result["prefix_tokens"], result["tokens"] = token_grid(self.embedder.config, output.last_hidden_state)
        return result

    def postprocess(self, model_outputs: list[dict[str, Any]], tokens: bool = False, return_tensors: bool = False):
        def as_output(values: torch.Tensor):
            values = values.float().cpu()
            return values if return_tensors else values.tolist()

        pooled = torch.cat([output["pooled"] for output in model_outputs])  # (windows, hidden)
        starts = [output["start_s"] for output in model_outputs]
        starts = [start[0] if isinstance(start, list) else start for start in starts]
        result = {
            "embedding": as_output(pooled.float().mean(dim=0)),
            "window_embeddings": as_output(pooled),
            "window_starts": starts,
        }
        if tokens:
            result["tokens"] = as_output(torch.cat([output["tokens"] for output in model_outputs]))
            prefixes = [output["prefix_tokens"] for output in model_outputs]
            result["prefix_tokens"] = None if prefixes[0] is None else as_output(torch.cat(prefixes))
            grid_steps = model_outputs[0]["tokens"].shape[1]
            result["token_hop_s"] = self.embedder.token_hop_seconds(grid_steps)
        return result


def register_embedding_pipeline() -> None:
    """Register the "audio-feature-extraction" task (a new task: nothing of transformers' is replaced)."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is not AudioFeatureExtractionPipeline:
        PIPELINE_REGISTRY.register_pipeline(
            TASK, pipeline_class=AudioFeatureExtractionPipeline, pt_model=AutoModel, type="audio"
        )


# registers the pipelines if `transformers.pipelines` was first imported by this module's own imports
finish_pipeline_module(__name__)
