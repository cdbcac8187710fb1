"""A Gradio page for a saved model: upload or record audio, see the top-k labels and, for long audio or HTS-AT,
a timeline of what was heard when (the `plotting` figures) with the table of detected events.

People judge an audio model by listening and looking; Gradio pages are how models on the Hub are tried.
Nothing here computes a prediction of its own: `DemoAnalyser.analyse` runs `inference.AudioClassifier.classify`
(what `classify` prints) and, for HTS-AT or audio longer than one window, `detection.detect` (what `detect`
prints), then draws them with `plotting`.

Run it with `spectrogram-transformers demo --model DIR_OR_HUB_ID` (`cli/demo.py`), or in a Hugging Face
Space with an `app.py` that calls `build_demo` (`examples/space/app.py`). Gradio and matplotlib are the
optional `[demo]` extra, imported only when a page is built. The page needs no network: no analytics, no
fonts or scripts from elsewhere (Gradio ships its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from transformers.utils import logging

if TYPE_CHECKING:
    import gradio
    from matplotlib.figure import Figure

    from .inference import AudioClassifier, FilePrediction

__all__ = [
    "DEFAULT_MAX_DURATION_S",
    "DEMO_EXTRA_MESSAGE",
    "UPLOAD_CACHE_CLEANUP",
    "Analysis",
    "DemoAnalyser",
    "build_demo",
    "figure_to_array",
]

DEMO_EXTRA_MESSAGE = 'the demo needs gradio and matplotlib: pip install "spectrogram-transformers[demo]"'
# Longest upload analysed, in seconds (read from the header before decoding): the page decodes an upload whole for
# its spectrogram, about 2 GB per hour of audio, so one small FLAC of hours of silence could take the server's memory.
DEFAULT_MAX_DURATION_S = 600.0
# Gradio's `delete_cache`: every minute, uploads older than 5 minutes are deleted (and all of them when the server
# restarts), so uploads do not pile up on the server's disk.
UPLOAD_CACHE_CLEANUP = (60, 300)
FAMILY_NAMES = {"ast": "AST", "htsat": "HTS-AT", "ssast": "SSAST"}
# labels listed on the page before "... and N more"
LABELS_SHOWN = 30
logger = logging.get_logger(__name__)


@dataclass
class Analysis:
    """What the page shows for one upload. `message` is set (and the rest empty) when the upload was refused."""

    labels: list[tuple[str, float]] = field(default_factory=list)  # top-k, best first
    events: list[dict] = field(default_factory=list)  # detected events (frame-level models)
    figure: Figure | None = None
    duration: float = 0.0
    message: str = ""


class DemoAnalyser:
    """A loaded model and the steps the page runs on each upload.

    Args:
        model: an `inference.AudioClassifier`, or a model directory / Hub id to load one from (with
            `classifier_kwargs`: device, batch_size, dtype, backend, as `classify` takes them).
        top_k: labels shown.
        threshold: probability threshold of the detected events.
        max_duration: longest audio analysed, in seconds (None: no limit). Longer uploads are refused from their
            header, before anything is decoded (and decoding stops there when the header does not say).
    """

    def __init__(
        self,
        model: AudioClassifier | str | Path,
        *,
        top_k: int = 5,
        threshold: float = 0.5,
        max_duration: float | None = DEFAULT_MAX_DURATION_S,
        **classifier_kwargs: Any,
    ):
        from .inference import AudioClassifier

        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
        if max_duration is not None and not (max_duration > 0 and np.isfinite(max_duration)):
            raise ValueError(f"max_duration must be a positive number of seconds, got {max_duration}")
        self.max_duration = max_duration
        if isinstance(model, AudioClassifier):
            self.classifier, self.model_name = model, str(model.config.name_or_path or type(model.model).__name__)
        else:
            self.classifier, self.model_name = AudioClassifier(model, **classifier_kwargs), str(model)
        self.top_k = top_k
        self.threshold = threshold
        model_type = getattr(self.classifier.config, "model_type", "")
        self.family = FAMILY_NAMES.get(model_type, model_type or type(self.classifier.model).__name__)
        # HTS-AT's token-semantic head gives frame-level probabilities: events with start and end times
        self.frame_level = self.classifier.has_frame_outputs

    @property
    def labels(self) -> list[str]:
        return list(self.classifier.label_names)

    def _too_long(self, name: str, duration: float | None) -> str:
        return _too_long_text(name, duration, self.max_duration)

    def describe(self) -> str:
        """Markdown: the model's name, family, labels and sampling rate."""
        labels = self.labels
        listed = ", ".join(labels[:LABELS_SHOWN]) + (
            f", ... and {len(labels) - LABELS_SHOWN} more" if len(labels) > LABELS_SHOWN else ""
        )
        input_seconds = self.classifier.input_seconds
        kind = "multi-label (sigmoid)" if self.classifier.multi_label else "single-label (softmax)"
        events = "long audio: events from window scores"
        if self.frame_level:
            config = self.classifier.config
            step = (
                f"{input_seconds * config.frames_per_step / config.num_frames:g} s"
                if input_seconds
                else "the model's time step"
            )
            events = f"frame outputs: event times to {step}"
        return "\n".join(
            [
                f"**Model:** `{self.model_name}` ({self.classifier.description})  ",
                f"**Family:** {self.family} ({events})  ",
                f"**Sampling rate:** {self.classifier.sampling_rate} Hz"
                + (f", {input_seconds:g} s per window" if input_seconds else "")
                + f"; {kind}  ",
                f"**Labels ({len(labels)}):** {listed}",
            ]
        )

    def analyse(self, audio_path: str | Path | None) -> Analysis:
        """Classify an uploaded file (and detect events for HTS-AT or long audio); a bad upload gives a message."""
        if audio_path is None:
            return Analysis(message="Upload or record audio to classify it.")
        name = Path(audio_path).name
        try:
            return self._analyse(Path(audio_path))
        except (ValueError, OSError) as error:  # undecodable, empty, unreadable: the user's file (InferenceError too)
            text = str(error).replace(str(audio_path), name)  # the upload's temporary path means nothing to the user
            return Analysis(message=f"Error: {text}" if name in text else f"Error: {name}: {text}")
        except Exception as error:  # a bug of ours: say so on the page, keep the traceback for the server log
            logger.exception("demo: analysing %s failed", audio_path)
            return Analysis(
                message=f"Error: {name}: internal error ({type(error).__name__}: {error}); see the server's log"
            )

    def _analyse(self, path: Path) -> Analysis:
        from .detection import detect
        from .plotting import plot_classification, plot_detection_result

        rate = self.classifier.sampling_rate
        info, blocks = self.classifier.stream(path)
        if self.max_duration is not None and info.duration is not None and info.duration > self.max_duration:
            blocks.close()
            return Analysis(message=self._too_long(path.name, info.duration))
        # what `classify FILE` runs (the decoded file, default windows); whole here, for the spectrogram
        pieces, samples = [], 0
        for block in blocks:
            pieces.append(block)
            samples += len(block)
            if self.max_duration is not None and samples > self.max_duration * rate:  # the header did not say
                blocks.close()
                return Analysis(message=self._too_long(path.name, None))
        waveform = np.concatenate(pieces)
        del pieces
        prediction: FilePrediction = self.classifier.classify(
            waveform, name=path.name, top_k=self.top_k, progress=False
        )
        if not (self.frame_level or len(prediction.windows) > 1):
            figure = plot_classification(prediction, waveform, rate, title=path.name)
            return Analysis(labels=prediction.labels, figure=figure, duration=prediction.duration)
        # what `detect FILE --threshold T` runs (default windows)
        detection = detect(self.classifier, waveform, name=path.name, threshold=self.threshold, progress=False)
        figure = plot_detection_result(detection, waveform, rate, top_k=self.top_k)
        return Analysis(labels=prediction.labels, events=detection.events, figure=figure, duration=prediction.duration)


def _too_long_text(name: str, duration: float | None, limit: float) -> str:
    length = f"{_minutes(round(duration, 1))} long" if duration is not None else "longer than the limit"
    return f"Error: {name} is {length}; this page analyses at most {_minutes(limit)} of audio (the server's --max-duration)."


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.3g} minutes" if seconds >= 60 else f"{seconds:g} seconds"


def figure_to_array(figure: Figure, dpi: int = 100) -> np.ndarray:
    """RGB pixels [height, width, 3] of a figure (what the page's image shows)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    figure.set_dpi(dpi)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _require_gradio():
    try:
        import gradio
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError(DEMO_EXTRA_MESSAGE) from error
    return gradio


def build_demo(model: str | Path | DemoAnalyser, *, title: str | None = None, **analyser_kwargs: Any) -> gradio.Blocks:
    """The Gradio page of a model (not launched): `build_demo(DIR).launch()`, or `demo = build_demo(ID)` in a
    Space's `app.py`. `analyser_kwargs` go to `DemoAnalyser` (top_k, threshold, max_duration; device, batch_size,
    dtype, backend). Uploads are deleted by Gradio's cache clean-up (`UPLOAD_CACHE_CLEANUP`)."""
    gr = _require_gradio()
    analyser = model if isinstance(model, DemoAnalyser) else DemoAnalyser(model, **analyser_kwargs)
    title = title or f"{analyser.family}: {Path(analyser.model_name).name}"

    def run(audio_path: str | None):
        analysis = analyser.analyse(audio_path)
        image = None if analysis.figure is None else figure_to_array(analysis.figure)
        labels = None if not analysis.labels else {label: score for label, score in analysis.labels}
        rows = [
            [event["label"], round(event["start"], 3), round(event["end"], 3), round(event["score"], 3)]
            for event in analysis.events
        ]
        status = f"**{analysis.message}**" if analysis.message else f"Analysed {analysis.duration:.2f} s of audio."
        return labels, image, rows, status

    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=UPLOAD_CACHE_CLEANUP) as demo:
        gr.Markdown(f"# {title}")
        gr.Markdown(analyser.describe(), elem_id="model-info")
        frequency, age = UPLOAD_CACHE_CLEANUP
        gr.Markdown(
            f"Uploads are deleted from the server {age // 60} to {(age + frequency) // 60} minutes after they arrive."
            + (
                f" Audio longer than {_minutes(analyser.max_duration)} is refused."
                if analyser.max_duration is not None
                else ""
            ),
            elem_id="limits",
        )
        with gr.Row():
            with gr.Column(scale=1):
                audio = gr.Audio(
                    sources=["upload", "microphone"],
                    type="filepath",
                    label="Audio (upload or record)",
                    elem_id="audio-input",
                )
                status = gr.Markdown("Upload or record audio to classify it.", elem_id="status")
                labels = gr.Label(num_top_classes=analyser.top_k, label="Top labels", elem_id="top-labels")
            with gr.Column(scale=2):
                timeline = gr.Image(type="numpy", label="Timeline", elem_id="timeline", interactive=False)
                table = gr.Dataframe(
                    headers=["label", "start (s)", "end (s)", "score"],
                    label="Detected events (HTS-AT, or audio longer than one window)",
                    elem_id="events",
                    interactive=False,
                )
        audio.change(run, inputs=audio, outputs=[labels, timeline, table, status])
    return demo
