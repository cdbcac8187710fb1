"""Long recordings: seconds of audio per second of compute (the real-time factor) of `classify` and `detect`.

The path measured is the one the command line runs: a file on disk decoded (soundfile) and resampled (soxr),
cut into windows, features and model in batches (`AudioClassifier`), window scores averaged (classification,
AST-base, AudioSet geometry: 10.24 s windows every 5 s) or frame outputs placed on one timeline (detection,
HTS-AT tiny, the paper's Swin-T-sized model, 10 s clips every 5 s). Each model runs in float32 and bfloat16
(weights in bf16), and through ONNX Runtime (fp32 and dynamic int8) when the `[onnx]` extra is installed; all in
one process, one after the other over the same file (on a shared machine, load changes between the runs move
the ratios: repeat the run).

An hour of audio takes tens of minutes per setting on a 2-core CPU, so by default the file is shorter and the
hour is extrapolated: the work is linear in the number of windows (decoding and resampling are a few percent
of it), so `hour = 3600 / realtime_factor` seconds. Pass `--seconds 3600` to measure the hour itself.

    python benchmarks/bench_long_audio.py [--seconds 120] [--batch-size 4] [--threads N] [--skip-onnx]

Weights are random (speed only). Print-outs include the CPU's bf16 flags and the thread count.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from spectrogram_transformers import hub_configs
from spectrogram_transformers.detection import frame_probabilities
from spectrogram_transformers.inference import AudioClassifier
from spectrogram_transformers.runtime import describe_cpu


def write_recording(path: Path, seconds: float, rate: int = 44100) -> None:
    """A recording-like signal (noise bursts, tones, silence) at 44.1 kHz, so both models resample as users' files do."""
    rng = np.random.default_rng(0)
    samples = int(seconds * rate)
    time_axis = np.arange(samples) / rate
    audio = 0.02 * rng.standard_normal(samples)
    audio += 0.2 * np.sin(2 * np.pi * 440 * time_axis) * (np.sin(2 * np.pi * time_axis / 7.0) > 0.5)
    soundfile.write(path, audio.astype(np.float32), rate, subtype="PCM_16")


def save_model(kind: str, directory: Path) -> Path:
    from transformers import AutoModelForAudioClassification

    variant = {"ast": "ast-base-f10-t10-1024-audioset", "htsat": "htsat-tiny-32k-audioset"}[kind]
    torch.manual_seed(0)
    model = AutoModelForAudioClassification.from_config(hub_configs.load_config(variant))
    model.save_pretrained(directory)
    hub_configs.load_feature_extractor(variant).save_pretrained(directory)
    return directory


def export_onnx(model_dir: Path, output: Path, quantize: str | None = None) -> Path | None:
    try:
        from spectrogram_transformers.onnx_export import export_onnx as export
    except ImportError as error:
        print(f"  ONNX: skipped ({error})")
        return None
    export(str(model_dir), output, quantize=quantize)
    return output


def time_run(kind: str, classifier: AudioClassifier, path: Path) -> float:
    start = time.perf_counter()
    waveform = classifier.decode(path)
    if kind == "ast":
        classifier.classify(waveform, window=10.24, hop=5.0, progress=False)
    else:
        frame_probabilities(classifier, waveform, 10.0, 5.0, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the test recording (default 120 s)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--models", nargs="+", default=["ast", "htsat"], choices=["ast", "htsat"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads; CPU: {describe_cpu()}")
    print(
        f"recording: {args.seconds:g} s at 44.1 kHz (decoded and resampled as part of each run), batch {args.batch_size}"
    )

    with tempfile.TemporaryDirectory() as temporary:
        temporary = Path(temporary)
        recording = temporary / "recording.wav"
        write_recording(recording, args.seconds)
        for kind in args.models:
            model_dir = save_model(kind, temporary / kind)
            settings = {
                "float32": AudioClassifier(model_dir, batch_size=args.batch_size, dtype="float32"),
                "bfloat16": AudioClassifier(model_dir, batch_size=args.batch_size, dtype="bfloat16"),
            }
            if not args.skip_onnx:
                for quantize in (None, "int8"):
                    onnx_path = export_onnx(model_dir, temporary / f"{kind}-onnx-{quantize}", quantize)
                    if onnx_path is None:  # no [onnx] extra: said once
                        break
                    settings[f"onnx {quantize or 'float32'}"] = AudioClassifier(
                        onnx_path, batch_size=args.batch_size, backend="onnx"
                    )
            # a short warm-up of each setting, then one timed run of each over the same recording
            warmup = temporary / "warmup.wav"
            write_recording(warmup, 20.0)
            for classifier in settings.values():
                time_run(kind, classifier, warmup)
            elapsed = {name: time_run(kind, classifier, recording) for name, classifier in settings.items()}
            title = {
                "ast": "AST-base (AudioSet, 10.24 s windows, 5 s hop) - classify",
                "htsat": "HTS-AT tiny (10 s clips, 5 s hop) - detect",
            }[kind]
            print(f"\n{title}")
            print(f"  {'setting':<14}{'compute s':>10}{'x real time':>13}{'1 h of audio':>16}{'vs float32':>12}")
            for name, seconds in elapsed.items():
                factor = args.seconds / seconds
                hour = 3600.0 / factor
                measured = "" if args.seconds >= 3600 else " (extrap.)"
                print(
                    f"  {name:<14}{seconds:>10.1f}{factor:>13.1f}{hour / 60:>10.1f} min{measured}{elapsed['float32'] / seconds:>8.2f}x"
                )


if __name__ == "__main__":
    main()
