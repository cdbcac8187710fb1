"""`classify` and `detect` on the command line: windows the model sees whole, every readable file classified,
one-line errors for a user's mistakes, dtype / batch size / backend flags, and the real-time factor."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from spectrogram_transformers import SSASTConfig, SSASTForPreTraining
from spectrogram_transformers.cli import main as cli_main
from spectrogram_transformers.inference import (
    AudioClassifier,
    InferenceError,
    resolve_dtype,
    window_starts,
)
from spectrogram_transformers.runtime import cpu_supports_bf16
from testing_utils.inference_models import tiny_ast_dir, tiny_htsat_dir, tone_file

RATE = 16000


@pytest.fixture(scope="module")
def ast_dir(tmp_path_factory):
    return tiny_ast_dir(tmp_path_factory.mktemp("ast"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """good.wav (3 s), good2.flac (2 s at 44.1 kHz), corrupt.wav, and two 3 s files equal for their first 1.2 s."""
    directory = tmp_path_factory.mktemp("audio")
    tone_file(directory / "good.wav", 3.0)
    tone_file(directory / "good2.flac", 2.0, rate=44100, frequency=880.0)
    (directory / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100))
    rng = np.random.default_rng(1)
    shared = 0.1 * rng.standard_normal(int(1.2 * RATE))
    tails = [0.1 * rng.standard_normal(int(1.8 * RATE)), 0.4 * np.sin(np.arange(int(1.8 * RATE)) / 2.0)]
    for name, tail in zip(("same_start_a.wav", "same_start_b.wav"), tails):
        soundfile.write(directory / name, np.concatenate([shared, tail]).astype(np.float32), RATE, subtype="FLOAT")
    return directory


def run_cli(*arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed command line in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "spectrogram_transformers", *arguments],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_a_window_longer_than_the_model_input_is_capped_so_it_is_seen_whole(ast_dir, files, capsys, caplog):
    """--window 10 on a 1.015 s model used to score only each window's first second: two files that differ after
    1.2 s got identical scores."""
    paths = [str(files / "same_start_a.wav"), str(files / "same_start_b.wav")]
    with caplog.at_level("WARNING"):
        assert (
            cli_main(
                [
                    "classify",
                    *paths,
                    "--model",
                    str(ast_dir),
                    "--window",
                    "10",
                    "--hop",
                    "10",
                    "--json",
                    "--dtype",
                    "float32",
                ]
            )
            == 0
        )
    assert "window of 10 s is longer than the model's input (1.015 s)" in caplog.text
    first, second = json.loads(capsys.readouterr().out)
    assert [first["path"], second["path"]] == paths  # each result under its own file, in order
    assert first["window_s"] == pytest.approx(1.015) and first["hop_s"] == pytest.approx(
        1.015
    )  # hop capped to the window
    assert [window["start"] for window in first["windows"]] == pytest.approx(
        [0.0, 1.015, 1.985]
    )  # the whole file is seen
    assert first["windows"][0]["labels"] == second["windows"][0]["labels"]  # the shared first second
    assert first["labels"] != second["labels"]
    # the file score is the mean over windows of the model's own length, computed by hand
    classifier = AudioClassifier(ast_dir, dtype="float32")
    waveform = classifier.decode(paths[0])
    windows = [waveform[start : start + 16240] for start in window_starts(len(waveform), 16240, 16240)]
    expected = classifier.probabilities(windows).mean(axis=0)
    assert dict(first["labels"]) == pytest.approx(
        {classifier.id2label[i]: float(p) for i, p in enumerate(expected)}, abs=1e-6
    )


@pytest.mark.slow  # a fresh interpreter importing torch and transformers: ~10-25 s on 2 shared cores
def test_every_readable_file_is_classified_and_unreadable_ones_listed(ast_dir, files):
    paths = [
        str(files / "good.wav"),
        str(files / "corrupt.wav"),
        str(files / "missing.wav"),
        str(files / "good2.flac"),
    ]
    result = run_cli("classify", *paths, "--model", str(ast_dir), "--no-windows", "--dtype", "float32")
    assert result.returncode == 1
    printed = result.stdout.splitlines()
    assert [line.split(" (")[0] for line in printed] == [paths[0], paths[3]]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "corrupt.wav" in errors[0] and "missing.wav" in errors[1]
    assert "2 of 4 file(s) could not be read" in result.stderr and "x real time" in result.stderr
    assert "Traceback" not in result.stderr


def test_user_mistakes_are_one_line_errors(ast_dir, files, tmp_path, capsys):
    config = SSASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=128,
        num_masked_patches=20,
    )
    SSASTForPreTraining(config).save_pretrained(tmp_path / "pretraining")
    capsys.readouterr()
    cases = [
        (["classify", str(files / "good.wav"), "--model", str(tmp_path / "pretraining")], "SSASTForPreTraining"),
        (["detect", str(files / "good.wav"), "--model", str(tmp_path / "pretraining")], "SSASTForPreTraining"),
        (
            ["detect", str(files / "good.wav"), "--model", str(tmp_path / "no_such_model")],
            "no such directory or Hub id",
        ),
        (
            ["detect", str(files / "good.wav"), "--model", str(ast_dir), "--class-threshold", "cat=0.2"],
            "unknown label",
        ),
        (
            ["classify", str(files / "good.wav"), "--model", str(ast_dir), "--backend", "onnx"],
            "cannot load an ONNX model",
        ),
        (
            ["classify", str(files / "good.wav"), "--model", str(ast_dir), "--backend", "onnx", "--dtype", "bfloat16"],
            "float32",
        ),
    ]
    for arguments, message in cases:
        assert cli_main(arguments) == 2, arguments
        lines = [
            line for line in capsys.readouterr().err.splitlines() if line.strip() and "Loading weights" not in line
        ]
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (arguments, lines)
    # a negative hop is refused when the flags are parsed (argparse's usage + one error line, status 2)
    with pytest.raises(SystemExit) as exit_:
        cli_main(["classify", str(files / "good.wav"), "--model", str(ast_dir), "--hop", "-1"])
    assert (
        exit_.value.code == 2 and "argument --hop: must be a finite number of seconds > 0" in capsys.readouterr().err
    )


@pytest.mark.slow  # a fresh interpreter, as above
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg to write an M4A file")
def test_formats_libsndfile_cannot_read_go_through_ffmpeg_or_say_it_is_missing(ast_dir, files, tmp_path):
    m4a = tmp_path / "clip.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(files / "good.wav"), "-c:a", "aac", str(m4a)], check=True)
    classifier = AudioClassifier(ast_dir, dtype="float32")
    decoded = classifier.decode(m4a)
    assert abs(len(decoded) - 3 * RATE) < 0.05 * RATE  # AAC adds a little padding
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # python only: no ffmpeg
    assert shutil.which("ffmpeg", path=env["PATH"]) is None
    result = run_cli("classify", str(m4a), "--model", str(ast_dir), env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "clip.m4a" in result.stderr and "need ffmpeg, which is not installed" in result.stderr


def test_batch_size_does_not_change_scores_and_bfloat16_keeps_the_top_label(ast_dir, files, capsys):
    path = str(files / "good.wav")
    outputs = {}
    for name, extra in {
        "b1": ["--batch-size", "1"],
        "b7": ["--batch-size", "7"],
        "bf16": ["--dtype", "bfloat16"],
    }.items():
        dtype = [] if name == "bf16" else ["--dtype", "float32"]
        assert cli_main(["classify", path, "--model", str(ast_dir), "--json", *dtype, *extra]) == 0
        captured = capsys.readouterr()
        outputs[name] = json.loads(captured.out)[0]
        assert "x real time" in captured.err
    assert _close(outputs["b1"], outputs["b7"], 1e-6)
    assert len(outputs["b1"]["windows"]) == len(outputs["b7"]["windows"]) == 5
    assert outputs["bf16"]["labels"][0][0] == outputs["b1"]["labels"][0][0]
    assert _close(outputs["bf16"], outputs["b1"], 0.03)


def _close(first: dict, second: dict, tolerance: float) -> bool:
    return all(abs(dict(first["labels"])[label] - score) <= tolerance for label, score in second["labels"]) and [
        label for label, _ in first["labels"]
    ] == [label for label, _ in second["labels"]]


def test_auto_dtype_is_bfloat16_only_where_the_cpu_runs_it(ast_dir):
    native = cpu_supports_bf16()
    assert resolve_dtype("auto") == (torch.bfloat16 if native else torch.float32)
    assert AudioClassifier(ast_dir).dtype == resolve_dtype("auto")
    assert next(AudioClassifier(ast_dir, dtype="bfloat16").model.parameters()).dtype == torch.bfloat16
    with pytest.raises(InferenceError, match="dtype"):
        AudioClassifier(ast_dir, dtype="float16")


def test_library_results_carry_what_a_plot_needs(ast_dir, files, tmp_path):
    classifier = AudioClassifier(ast_dir, dtype="float32", batch_size=3)
    soundfile.write(tmp_path / "nan.wav", np.full(RATE, np.nan, dtype=np.float32), RATE, subtype="FLOAT")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), RATE)
    paths = [files / "good.wav", tmp_path / "missing.wav", tmp_path / "nan.wav", tmp_path / "empty.wav"]
    results = list(classifier.classify_files(paths, top_k=2))
    assert [result.path for result in results] == [str(path) for path in paths]
    prediction, failure, not_a_number, empty = results
    # files libsndfile decodes whose audio is unusable are refused for what they hold (not re-decoded by ffmpeg)
    assert "NaN" in not_a_number.reason and "empty" in empty.reason and "ffmpeg" not in empty.reason
    assert prediction.probabilities.shape == (len(prediction.windows), 3) and prediction.label_names == [
        "dog",
        "siren",
        "speech",
    ]
    assert np.allclose(prediction.probabilities.sum(axis=1), 1.0, atol=1e-5)  # softmax: single-label model
    assert failure.path.endswith("missing.wav") and "no such file" in failure.reason
    assert "probabilities" not in prediction.to_dict()


def test_htsat_classify_uses_its_clip_as_the_window(tmp_path, files):
    directory = tiny_htsat_dir(tmp_path / "htsat")
    prediction = AudioClassifier(directory, dtype="float32").classify_file(files / "good.wav", top_k=1)
    assert prediction.window_s == 2.0 and prediction.hop_s == 1.0 and len(prediction.windows) == 2


@pytest.mark.slow  # two ONNX exports: ~15 s on 2 shared cores
def test_onnx_backend_matches_pytorch_for_classify_and_detect(ast_dir, files, tmp_path, capsys):
    from spectrogram_transformers.detection import detect
    from spectrogram_transformers.onnx_export import export_onnx

    htsat_dir = tiny_htsat_dir(tmp_path / "htsat")
    path = str(files / "good.wav")
    for model_dir, name in ((ast_dir, "ast"), (htsat_dir, "htsat")):
        export_onnx(model_dir, tmp_path / f"{name}-onnx")
        torch_run = AudioClassifier(model_dir, dtype="float32", batch_size=2)
        onnx_run = AudioClassifier(tmp_path / f"{name}-onnx", backend="onnx", batch_size=3)
        assert (
            onnx_run.description.endswith("ONNX Runtime float32") and onnx_run.input_samples == torch_run.input_samples
        )
        expected, got = torch_run.classify_file(path), onnx_run.classify_file(path)
        assert [label for label, _ in got.labels] == [label for label, _ in expected.labels]
        np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=1e-4)
        waveform = torch_run.decode(path)
        expected_events, got_events = (
            detect(torch_run, waveform, threshold=0.5),
            detect(onnx_run, waveform, threshold=0.5),
        )
        assert got_events.source == expected_events.source == ("frames" if name == "htsat" else "windows")
        np.testing.assert_allclose(got_events.frame_probabilities, expected_events.frame_probabilities, atol=1e-4)
    capsys.readouterr()
    assert (
        cli_main(
            [
                "detect",
                path,
                "--model",
                str(tmp_path / "htsat-onnx"),
                "--backend",
                "onnx",
                "--threshold",
                "0",
                "--json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out)[path]["source"] == "frames" and "ONNX Runtime float32" in captured.err


@pytest.mark.slow  # a fresh interpreter, as above
def test_inference_and_detection_never_import_training():
    """Layers: classify, detect and the pipeline depend on feature extraction and modeling only."""
    code = (
        "import sys, spectrogram_transformers.detection, spectrogram_transformers.pipelines, "
        "spectrogram_transformers.cli.classify, spectrogram_transformers.cli.detect; "
        "print(sorted(name for name in sys.modules if name.startswith('spectrogram_transformers.training')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_model_saved_without_problem_type_gets_softmax_scores(tmp_path, capsys):
    """`problem_type` None is transformers' single-label default (its loss is cross-entropy): `classify` and
    `pipeline(...)` score such a model with a softmax of its logits, not a sigmoid."""
    from transformers import pipeline

    from spectrogram_transformers import ASTFeatureExtractor, ASTForAudioClassification

    model_dir = tiny_ast_dir(tmp_path / "model")
    model = ASTForAudioClassification.from_pretrained(model_dir)
    model.config.problem_type = None
    model.save_pretrained(model_dir)
    assert json.loads((model_dir / "config.json").read_text()).get("problem_type") is None
    path = tone_file(tmp_path / "clip.wav", 1.0)  # within the 1.015 s input: one window
    waveform, _ = soundfile.read(path, dtype="float32")
    with torch.no_grad():
        features = ASTFeatureExtractor.from_pretrained(model_dir)(waveform, sampling_rate=RATE, return_tensors="pt")
        expected = torch.softmax(model.eval()(**features).logits[0], dim=-1)
    names = [model.config.id2label[index] for index in range(model.config.num_labels)]
    expected_by_name = {name: float(score) for name, score in zip(names, expected)}

    assert (
        cli_main(
            [
                "classify",
                str(path),
                "--model",
                str(model_dir),
                "--dtype",
                "float32",
                "--top-k",
                str(len(names)),
                "--json",
            ]
        )
        == 0
    )
    (result,) = json.loads(capsys.readouterr().out)
    assert {name: score for name, score in result["labels"]} == pytest.approx(expected_by_name, abs=1e-5)

    classifier = pipeline("audio-classification", model=str(model_dir), top_k=None)
    piped = {row["label"]: row["score"] for row in classifier({"raw": waveform, "sampling_rate": RATE})}
    assert piped == pytest.approx(expected_by_name, abs=1e-5)
    assert sum(piped.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_classify_reports_the_precision_of_the_onnx_graph(ast_dir, files, tmp_path, capsys, quantize):
    """An int8 export is reported as int8, read from the graph (the export's metadata file is not needed)."""
    from spectrogram_transformers.onnx_export import METADATA_FILE, export_onnx

    export_onnx(ast_dir, tmp_path / "onnx", quantize=quantize)
    (tmp_path / "onnx" / METADATA_FILE).unlink()
    assert cli_main(["classify", str(files / "good.wav"), "--model", str(tmp_path / "onnx"), "--backend", "onnx"]) == 0
    report = capsys.readouterr().err
    if quantize == "int8":
        assert "ONNX Runtime int8-quantised" in report and "float32" not in report
    else:
        assert "ONNX Runtime float32" in report and "int8" not in report
