"""`pipeline("audio-classification")` for this package's models: any sampling rate, any length.

transformers' `AudioClassificationPipeline` resamples `{"array", "sampling_rate"}` input with torchaudio (an
ImportError without it) before the feature extractor sees the audio, and gives the extractor the whole array,
which keeps only the model's input length (a 10-minute recording is classified from its first window).

Why a pipeline class and not a feature-extractor hook: the resampling and the cut both happen in the pipeline
(`preprocess` resamples before calling the extractor with the model's rate; `_forward` runs one example), so an
extractor cannot see the original rate, nor run the model over several windows. The class registered for the
"audio-classification" task is `AudioClassificationPipelineForSpectrogramModels`: when the model and feature
extractor are this package's, it builds the windowed pipeline below; for any other model its constructor returns
transformers' own `AudioClassificationPipeline`, so plain transformers models keep their behaviour exactly.

The windowed pipeline is a `ChunkPipeline`, as transformers' ASR pipeline is for long audio: `preprocess` decodes
(a file path as a stream of blocks: soundfile, or ffmpeg read as it comes for other formats and pipes, so memory
does not grow with the file; other inputs whole), resamples with the package's soxr resampler (the same as the
feature extractors', so a dict at any rate equals pre-resampled audio), cuts windows of the model's input every
half window as the audio arrives, and yields one window's features at a time; the pipeline's `batch_size`
batches windows; `postprocess` averages the window probabilities, as `classify` does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from transformers import AudioClassificationPipeline
from transformers.pipelines.audio_classification import ffmpeg_read
from transformers.pipelines.base import ChunkPipeline

from .registration import finish_pipeline_module

__all__ = [
    "AudioClassificationPipelineForSpectrogramModels",
    "SpectrogramAudioClassificationPipeline",
    "register_pipeline",
]

_MODEL_TYPES = ("ast", "ssast", "htsat")
# windows whose features are computed in one call of the feature extractor (then yielded one by one)
_FEATURE_GROUP = 16


def _is_package_model(model: Any, feature_extractor: Any) -> bool:
    from .feature_extraction import ASTFeatureExtractor, HTSATFeatureExtractor

    config = getattr(model, "config", None)
    return getattr(config, "model_type", None) in _MODEL_TYPES and isinstance(
        feature_extractor, (ASTFeatureExtractor, HTSATFeatureExtractor)
    )


class SpectrogramAudioClassificationPipeline(AudioClassificationPipeline, ChunkPipeline):
    """Audio classification with an AST, SSAST or HTS-AT model of this package.

    Inputs are those of `AudioClassificationPipeline`: a file path, the bytes of a file, a 1-D array at the
    model's rate, or `{"array" or "raw": array, "sampling_rate": rate}` at any rate (resampled with soxr, no
    torchaudio). Audio longer than the model's input is classified in windows of the input length every half
    window and the scores are the mean of the window probabilities (softmax, or sigmoid for multi-label models;
    `function_to_apply="none"` averages logits). Use `spectrogram-transformers classify` or
    `spectrogram_transformers.inference.AudioClassifier` for the scores of each window.
    """

    def _decode(self, inputs: Any) -> tuple[np.ndarray, float]:
        """(waveform, its sampling rate) of any input the parent pipeline accepts."""
        from .feature_extraction import load_audio, to_mono_float32

        rate = self.feature_extractor.sampling_rate
        if isinstance(inputs, str) and inputs.startswith(("http://", "https://")):
            from huggingface_hub.utils import httpx

            inputs = httpx.get(inputs, follow_redirects=True).content
        if isinstance(inputs, (bytes, bytearray)):
            try:
                return load_audio(bytes(inputs))
            except ValueError as soundfile_error:  # a format libsndfile does not read: ffmpeg, as the parent does
                try:
                    return ffmpeg_read(bytes(inputs), rate), rate
                except ValueError as ffmpeg_error:
                    raise ValueError(f"{soundfile_error}; ffmpeg: {ffmpeg_error}") from None
        torchcodec = sys.modules.get("torchcodec")  # an AudioDecoder input means torchcodec is imported already
        if torchcodec is not None and isinstance(inputs, torchcodec.decoders.AudioDecoder):
            samples = inputs.get_all_samples()
            inputs = {"array": samples.data, "sampling_rate": samples.sample_rate}
        if isinstance(inputs, dict):
            if not ("sampling_rate" in inputs and ("raw" in inputs or "array" in inputs)):
                raise ValueError(
                    "When passing a dictionary to AudioClassificationPipeline, the dict needs to contain a "
                    '"raw" or "array" key with the audio (numpy array or torch tensor) and a "sampling_rate" key '
                    "with its sampling rate"
                )
            array = inputs["raw"] if inputs.get("raw") is not None else inputs["array"]
            return to_mono_float32(array), inputs["sampling_rate"]
        if isinstance(inputs, (np.ndarray, torch.Tensor)):
            return to_mono_float32(inputs), rate  # raw audio is at the model's rate, as in the parent pipeline
        raise TypeError(
            f"expected a file path, bytes, an array or a dict with 'array' and 'sampling_rate', got {type(inputs).__name__}"
        )

    def _blocks(self, inputs: Any) -> list[np.ndarray] | Iterator[np.ndarray]:
        """Mono blocks at the model's rate: a file path is decoded as a stream (`stream_audio`: soundfile in blocks,
        ffmpeg read as it comes, never the whole file in memory); any other input is decoded whole, one block."""
        from .feature_extraction import resample
        from .feature_extraction.streaming import stream_audio

        target = self.feature_extractor.sampling_rate
        if isinstance(inputs, (str, os.PathLike)) and not str(inputs).startswith(("http://", "https://")):
            _, blocks = stream_audio(inputs, target)
            return blocks
        waveform, rate = self._decode(inputs)
        return [resample(waveform, rate, target)]  # soxr: the extractors' own resampler

    def preprocess(self, inputs: Any):
        from .feature_extraction import WindowStream, model_input_samples

        blocks = self._blocks(inputs)
        window = model_input_samples(self.feature_extractor)
        if window is None:  # an extractor without a fixed input: the whole clip is one window
            blocks = [np.concatenate(list(blocks))]
            window = len(blocks[0])
        windows = WindowStream(blocks, window, max(1, window // 2))
        input_name = self.feature_extractor.model_input_names[0]
        held = None  # the latest window's features: whether it is the last is known only when the next arrives
        for group in _groups(windows, _FEATURE_GROUP):
            features = self.feature_extractor(
                [piece for _, piece in group], sampling_rate=self.feature_extractor.sampling_rate, return_tensors="pt"
            )[input_name]
            if self.dtype is not None:
                features = features.to(dtype=self.dtype)
            for row in features:
                if held is not None:
                    yield {input_name: held, "is_last": False}
                held = row[None]
        yield {input_name: held, "is_last": True}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        is_last = model_inputs.pop("is_last")
        return {"logits": self.model(**model_inputs).logits, "is_last": is_last}

    def postprocess(self, model_outputs: list[dict[str, Any]], top_k: int = 5, function_to_apply: str | None = None):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a whole number >= 1 (labels to return), got {top_k!r}")
        top_k = min(top_k, len(self.model.config.id2label))
        if function_to_apply is None:
            problem_type = self.model.config.problem_type
            function_to_apply = {"regression": "none", "multi_label_classification": "sigmoid"}.get(
                problem_type, "softmax"
            )
        logits = torch.cat([output["logits"] for output in model_outputs]).float()  # (windows, labels)
        if function_to_apply == "softmax":
            scores = logits.softmax(-1)
        elif function_to_apply == "sigmoid":
            scores = logits.sigmoid()
        else:
            scores = logits
        values, ids = scores.mean(dim=0).topk(top_k)
        return [
            {"score": score, "label": self.model.config.id2label[index]}
            for score, index in zip(values.tolist(), ids.tolist())
        ]


def _groups(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    group = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


class AudioClassificationPipelineForSpectrogramModels(AudioClassificationPipeline):
    """What `pipeline("audio-classification")` builds once this package is imported: the windowed, any-rate
    `SpectrogramAudioClassificationPipeline` for this package's models, transformers' own
    `AudioClassificationPipeline` (unchanged) for every other model."""

    def __new__(cls, *args: Any, **kwargs: Any):
        model = kwargs.get("model", args[0] if args else None)
        if _is_package_model(model, kwargs.get("feature_extractor")):
            return SpectrogramAudioClassificationPipeline(*args, **kwargs)
        return AudioClassificationPipeline(*args, **kwargs)


def register_pipeline(registry) -> None:
    """Make `pipeline("audio-classification")` build `AudioClassificationPipelineForSpectrogramModels`, through
    `registry.register_pipeline` (transformers' `PIPELINE_REGISTRY`; called by `registration` once
    `transformers.pipelines` is imported).

    The task keeps its default model, model classes and type; only its implementation changes. The registry's
    "already registered. Overwriting" warning is expected here and kept out of the user's log.
    """
    from transformers.utils import logging as transformers_logging

    entry = registry.supported_tasks["audio-classification"]
    if entry["impl"] is AudioClassificationPipelineForSpectrogramModels:
        return
    registry_logger = transformers_logging.get_logger(type(registry).__module__)
    level = registry_logger.level
    registry_logger.setLevel(transformers_logging.ERROR)
    try:
        registry.register_pipeline(
            "audio-classification",
            pipeline_class=AudioClassificationPipelineForSpectrogramModels,
            pt_model=entry.get("pt"),
            default=entry.get("default"),
            type=entry.get("type"),
        )
    finally:
        registry_logger.setLevel(level)


# registers the pipelines if `transformers.pipelines` was first imported by this module's own imports
finish_pipeline_module(__name__)
