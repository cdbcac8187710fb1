"""A Gradio page for a saved model: upload or record audio, see the top-k labels and, for long audio or HTS-AT,
a timeline of what was heard when (the `plotting` figures) with the table of detected events.

People judge an audio model by listening and looking; Gradio pages are how models on the Hub are tried.
Nothing here computes a prediction of its own: `DemoAnalyser.analyse` runs `inference.AudioClassifier`
(what `classify` prints) and, for models with frame-level output, `detection.file_frame_probabilities` +
`detection.detect_events` (what `detect` prints), then draws them with `plotting`.

Run it with `spectrogram-transformers demo --model DIR_OR_HUB_ID` (`cli/demo.py`), or in a Hugging Face
Space with an `app.py` that calls `build_demo` (`examples/space/app.py`). Gradio and matplotlib are the
optional `[demo]` extra, imported only when a page is built. The page needs no network: no analytics, no
fonts or scripts from elsewhere (Gradio ships its own).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import gradio
    from matplotlib.figure import Figure

    from .inference import FilePrediction

__all__ = ["DEMO_EXTRA_MESSAGE", "Analysis", "DemoAnalyser", "build_demo", "figure_to_array"]

DEMO_EXTRA_MESSAGE = "the demo needs gradio and matplotlib: pip install \"spectrogram-transformers[demo]\""
FAMILY_NAMES = {"ast": "AST", "htsat": "HTS-AT", "ssast": "SSAST"}
# labels listed on the page before "... and N more"
LABELS_SHOWN = 30
logger = logging.getLogger(__name__)


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
        model: model directory or Hub id (anything `AutoModelForAudioClassification` loads).
        device: torch device.
        top_k: labels shown.
        threshold: probability threshold of the detected events (frame-level models).
        batch_size: windows per forward pass.
    """

    def __init__(self, model: str | Path, *, device: str = "cpu", top_k: int = 5, threshold: float = 0.5, batch_size: int = 16):
        from .inference import AudioClassifier

        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
        self.model_name = str(model)
        self.classifier = AudioClassifier(model, device=device, batch_size=batch_size)
        self.top_k = top_k
        self.threshold = threshold
        config = self.classifier.model.config
        self.family = FAMILY_NAMES.get(config.model_type, config.model_type)
        # HTS-AT's token-semantic head gives frame-level probabilities: events with start and end times
        self.frame_level = config.model_type == "htsat"

    @property
    def labels(self) -> list[str]:
        return [self.classifier.id2label[index] for index in sorted(self.classifier.id2label)]

    def detection_window(self) -> tuple[float, float]:
        """(window, hop) seconds of detection: the clip the model was trained on, hopping by half of it."""
        window = self.classifier.input_seconds or 10.0
        return window, window / 2

    def describe(self) -> str:
        """Markdown: the model's name, family, labels and sampling rate."""
        labels = self.labels
        listed = ", ".join(labels[:LABELS_SHOWN]) + (f", ... and {len(labels) - LABELS_SHOWN} more" if len(labels) > LABELS_SHOWN else "")
        input_seconds = self.classifier.input_seconds
        kind = "multi-label (sigmoid)" if self.classifier.multi_label else "single-label (softmax)"
        return "\n".join(
            [
                f"**Model:** `{self.model_name}`  ",
                f"**Family:** {self.family}{' (frame-level output: event detection)' if self.frame_level else ''}  ",
                f"**Sampling rate:** {self.classifier.sampling_rate} Hz"
                + (f", {input_seconds:g} s per window" if input_seconds else "")
                + f"; {kind}  ",
                f"**Labels ({len(labels)}):** {listed}",
            ]
        )

    def analyse(self, audio_path: str | Path | None) -> Analysis:
        """Classify an uploaded file (and detect events for frame-level models); a bad upload gives a message."""
        if audio_path is None:
            return Analysis(message="Upload or record audio to classify it.")
        name = Path(audio_path).name
        try:
            return self._analyse(Path(audio_path))
        except (ValueError, OSError) as error:  # undecodable, empty, too short, unreadable: the user's file
            text = str(error).replace(str(audio_path), name)  # the upload's temporary path means nothing to the user
            return Analysis(message=f"Error: {text}" if name in text else f"Error: {name}: {text}")
        except Exception as error:  # a bug of ours: say so on the page, keep the traceback for the server log
            logger.exception("demo: analysing %s failed", audio_path)
            return Analysis(message=f"Error: {name}: internal error ({type(error).__name__}: {error}); see the server's log")

    def _analyse(self, path: Path) -> Analysis:
        from .detection import detect_events, file_frame_probabilities
        from .feature_extraction import load_audio
        from .plotting import plot_classification, plot_detection

        rate = self.classifier.sampling_rate
        waveform, _ = load_audio(str(path), target_sr=rate)
        # the same call as `classify` (AudioClassifier.classify_file = load_audio + classify)
        prediction: FilePrediction = self.classifier.classify(waveform, name=path.name, top_k=self.top_k, progress=False)
        if not self.frame_level:
            figure = plot_classification(prediction, waveform, rate, title=path.name)
            return Analysis(labels=prediction.labels, figure=figure, duration=prediction.duration)
        # the same calls as `detect` (detect_file = file_frame_probabilities + detect_events)
        window, hop = self.detection_window()
        model, extractor = self.classifier.model, self.classifier.feature_extractor
        probabilities, frame_s = file_frame_probabilities(model, extractor, waveform, window, hop, sampling_rate=rate)
        events = detect_events(probabilities, frame_s, model.config.id2label, threshold=self.threshold)
        waveform = waveform[: round(probabilities.shape[0] * frame_s * rate)]
        figure = plot_detection(probabilities, frame_s, events, model.config.id2label, waveform, rate, top_k=self.top_k, title=path.name)
        return Analysis(labels=prediction.labels, events=events, figure=figure, duration=prediction.duration)


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
    Space's `app.py`. `analyser_kwargs` go to `DemoAnalyser` (device, top_k, threshold, batch_size)."""
    gr = _require_gradio()
    analyser = model if isinstance(model, DemoAnalyser) else DemoAnalyser(model, **analyser_kwargs)
    title = title or f"{analyser.family}: {Path(analyser.model_name).name}"

    def run(audio_path: str | None):
        analysis = analyser.analyse(audio_path)
        image = None if analysis.figure is None else figure_to_array(analysis.figure)
        labels = None if not analysis.labels else {label: score for label, score in analysis.labels}
        rows = [[event["label"], round(event["start"], 3), round(event["end"], 3), round(event["score"], 3)] for event in analysis.events]
        status = f"**{analysis.message}**" if analysis.message else f"Analysed {analysis.duration:.2f} s of audio."
        return labels, image, rows, status

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(f"# {title}")
        gr.Markdown(analyser.describe(), elem_id="model-info")
        with gr.Row():
            with gr.Column(scale=1):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio (upload or record)", elem_id="audio-input")
                status = gr.Markdown("Upload or record audio to classify it.", elem_id="status")
                labels = gr.Label(num_top_classes=analyser.top_k, label="Top labels", elem_id="top-labels")
            with gr.Column(scale=2):
                timeline = gr.Image(type="numpy", label="Timeline" if analyser.frame_level else "Labels over time", elem_id="timeline", interactive=False)
                table = gr.Dataframe(
                    headers=["label", "start (s)", "end (s)", "score"], label="Detected events", elem_id="events",
                    interactive=False, visible=analyser.frame_level,
                )
        audio.change(run, inputs=audio, outputs=[labels, timeline, table, status])
    return demo
