"""The one error boundary of every command: a user's mistake or an environment problem is ONE line on stderr
naming the cause, exit 2, no traceback; unreadable inputs are listed, exit 1; out-of-range numbers are refused when
the flags are parsed. A few cases run as real subprocesses (the console entry point as a user meets it); the rest
call the same `main` in-process (the boundary lives in `main`), which keeps the file fast on a busy machine."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from testing_utils.inference_models import tiny_ast_dir, tiny_htsat_dir, tone_file


def run_cli(*arguments: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spectrogram_transformers", *map(str, arguments)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


class Result:
    """`main`'s exit status and stderr, shaped like a CompletedProcess."""

    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_main(capsys, *arguments) -> Result:
    """The command line in this process: `main(argv)`, argparse's exits included."""
    from spectrogram_transformers.cli import main

    capsys.readouterr()
    try:
        status = main([str(argument) for argument in arguments])
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return Result(status, captured.out, captured.err)


def assert_one_line_error(result: subprocess.CompletedProcess, *phrases: str, status: int = 2) -> str:
    """Exit `status`, no traceback, and an `error:` line holding every phrase; returns that line."""
    assert result.returncode == status, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A good AST and HTS-AT, and broken copies of the AST directory (one fault each)."""
    root = tmp_path_factory.mktemp("models")
    ast, htsat = tiny_ast_dir(root / "ast"), tiny_htsat_dir(root / "htsat")
    broken = {}
    for name in ("other_family", "other_shape", "truncated", "not_safetensors", "pickle"):
        broken[name] = shutil.copytree(ast, root / name)
    shutil.copy(htsat / "model.safetensors", broken["other_family"])
    config = json.loads((ast / "config.json").read_text())
    config["hidden_size"] = 64
    (broken["other_shape"] / "config.json").write_text(json.dumps(config))
    (broken["truncated"] / "model.safetensors").write_bytes((ast / "model.safetensors").read_bytes()[:5000])
    (broken["not_safetensors"] / "model.safetensors").write_text("hello")
    (broken["pickle"] / "model.safetensors").unlink()
    torch.save(
        {"weights": torch.zeros(1), "not_a_tensor": np.float64(1.0).__class__}, broken["pickle"] / "pytorch_model.bin"
    )
    return {"ast": ast, "htsat": htsat, **broken}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return tone_file(tmp_path_factory.mktemp("audio") / "tone.wav", 3.0)


@pytest.mark.parametrize(
    ("model", "phrases"),
    [
        ("other_family", ["do not fit its config.json", "encoder weights missing"]),
        ("other_shape", ["do not fit its config.json", "of another shape"]),
        ("truncated", ["model.safetensors", "as safetensors", "truncated"]),
        ("not_safetensors", ["model.safetensors", "as safetensors"]),
        ("pickle", ["refused to unpickle", "pytorch_model.bin", "weights_only=True"]),
    ],
)
def test_unloadable_weights_name_their_cause_and_file(models, clip, model, phrases, capsys):
    line = assert_one_line_error(run_main(capsys, "classify", clip, "--model", models[model]), *phrases)
    assert "not an audio-classification model" not in line  # the old relabelling hid the real cause


@pytest.mark.parametrize(
    ("flags", "phrase"),
    [
        (["--threshold", "2"], "between 0 and 1"),
        (["--threshold", "nan"], "between 0 and 1"),
        (["--class-threshold", "dog=1.5"], "between 0 and 1"),
        (["--hop", "inf"], "finite number of seconds > 0"),
        (["--window", "0"], "finite number of seconds > 0"),
        (["--device", "nonsense"], "unknown device 'nonsense'"),
        (["--batch-size", "0"], "at least 1"),
    ],
)
def test_out_of_range_flags_are_refused_when_parsed(models, clip, flags, phrase, capsys):
    # argparse's own one-line refusal (exit 2) names the flag; nothing is loaded
    result = run_main(capsys, "detect", clip, "--model", models["htsat"], *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert phrase in result.stderr and flags[0] in result.stderr, result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_refused_when_parsed(models, clip, capsys):
    result = run_main(capsys, "classify", clip, "--model", models["ast"], "--device", "cuda")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'cuda' is not available here" in result.stderr and "--device cpu" in result.stderr


def test_corrupt_onnx_graph_and_mismatched_configs_are_one_line(models, clip, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    exported = tmp_path / "onnx"
    assert run_main(capsys, "export", models["ast"], "--format", "onnx", "--output", exported).returncode == 0
    corrupt, five_labels, long_input = (shutil.copytree(exported, tmp_path / name) for name in ("c", "l", "p"))
    (corrupt / "model.onnx").write_bytes((exported / "model.onnx").read_bytes()[:300])
    config = json.loads((exported / "config.json").read_text())
    config["id2label"] = {str(i): f"L{i}" for i in range(5)}
    config["label2id"] = {f"L{i}": i for i in range(5)}
    (five_labels / "config.json").write_text(json.dumps(config))
    preprocessor = json.loads((exported / "preprocessor_config.json").read_text())
    preprocessor["max_length"] = 300
    (long_input / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    assert_one_line_error(
        run_main(capsys, "classify", clip, "--model", corrupt, "--backend", "onnx"),
        "model.onnx",
        "not a readable ONNX model",
    )
    assert_one_line_error(
        run_main(capsys, "classify", clip, "--model", five_labels, "--backend", "onnx"), "5 labels", "3 outputs"
    )
    assert_one_line_error(
        run_main(capsys, "classify", clip, "--model", long_input, "--backend", "onnx"), "(300, 128)", "(100, 128)"
    )


def test_a_symlink_loop_is_named_as_such_and_the_other_files_still_run(models, clip, tmp_path):
    (tmp_path / "loop_a.wav").symlink_to(tmp_path / "loop_b.wav")
    (tmp_path / "loop_b.wav").symlink_to(tmp_path / "loop_a.wav")
    result = run_cli("classify", tmp_path / "loop_a.wav", clip, "--model", models["ast"], "--no-windows")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "symbolic link" in result.stderr and "no such file" not in result.stderr
    assert "tone.wav" in result.stdout


def test_a_subprocess_user_error_is_one_line_with_status_2(models, clip):
    """The console entry point itself (python -m spectrogram_transformers): the boundary is what a user meets."""
    assert_one_line_error(run_cli("classify", clip, "--model", models["truncated"]), "model.safetensors", "truncated")


def test_average_and_convert_never_overwrite_unasked_nor_write_into_a_source(models, tmp_path, capsys):
    first, second = (shutil.copytree(models["ast"], tmp_path / name) for name in ("first", "second"))
    source_weights = (first / "model.safetensors").read_bytes()
    # into a source checkpoint: refused even with --overwrite
    status = run_main(capsys, "average", first, second, "--output", first, "--overwrite")
    assert_one_line_error(status, "source checkpoint")
    assert (first / "model.safetensors").read_bytes() == source_weights
    # into an existing model: only with --overwrite
    existing = shutil.copytree(models["htsat"], tmp_path / "existing")
    kept = (existing / "model.safetensors").read_bytes()
    assert_one_line_error(run_main(capsys, "average", first, second, "--output", existing), "not empty", "--overwrite")
    assert (existing / "model.safetensors").read_bytes() == kept
    assert run_main(capsys, "average", first, second, "--output", existing, "--overwrite").returncode == 0
    # saved weights get the umask's mode, like every other saved file (safetensors alone writes 0600)
    assert (existing / "model.safetensors").stat().st_mode & 0o777 == (existing / "config.json").stat().st_mode & 0o777

    checkpoint = tmp_path / "hf_ast"
    assert (
        run_main(capsys, "export", models["ast"], "--format", "transformers", "--output", checkpoint).returncode == 0
    )
    target = shutil.copytree(models["htsat"], tmp_path / "target")
    kept = (target / "model.safetensors").read_bytes()
    assert_one_line_error(
        run_main(capsys, "convert", "--source", "hf-ast", "--checkpoint", checkpoint, "--output", target),
        "not empty",
        "--overwrite",
    )
    assert (target / "model.safetensors").read_bytes() == kept
    assert_one_line_error(
        run_main(
            capsys, "convert", "--source", "hf-ast", "--checkpoint", checkpoint, "--output", checkpoint, "--overwrite"
        ),
        "--checkpoint",
    )


def test_average_refuses_nan_weights_and_other_architectures(models, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    diverged = shutil.copytree(models["ast"], tmp_path / "diverged")
    weights = load_file(diverged / "model.safetensors")
    save_file(
        {name: torch.full_like(tensor, float("nan")) for name, tensor in weights.items()},
        diverged / "model.safetensors",
        metadata={"format": "pt"},
    )
    assert_one_line_error(
        run_main(capsys, "average", models["ast"], diverged, "--output", tmp_path / "a"), "NaN or infinity", "diverged"
    )
    shorter = tiny_ast_dir(tmp_path / "shorter", max_length=50)
    assert_one_line_error(
        run_main(capsys, "average", models["ast"], shorter, "--output", tmp_path / "b"), "different architectures"
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_convert_of_missing_refused_or_foreign_files_is_one_line(tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(1), "code": print}, evil)
    text = tmp_path / "text.pth"
    text.write_text("not a checkpoint")
    base = ["convert", "--config", "ast-base-f10-t10-1024-audioset"]
    assert_one_line_error(
        run_main(
            capsys,
            *base,
            "--source",
            "original-ast",
            "--checkpoint",
            tmp_path / "missing.pth",
            "--output",
            tmp_path / "o1",
        ),
        "missing.pth",
        "does not exist",
    )
    assert_one_line_error(
        run_main(capsys, *base, "--source", "original-ast", "--checkpoint", evil, "--output", tmp_path / "o2"),
        "refused to unpickle",
        "evil.pth",
    )
    assert_one_line_error(
        run_main(capsys, *base, "--source", "original-ast", "--checkpoint", text, "--output", tmp_path / "o3"),
        "text.pth",
    )
    safetensors_file = tmp_path / "foreign.safetensors"
    from safetensors.torch import save_file

    save_file({"patch_embed.proj.weight": torch.zeros(2)}, safetensors_file)
    assert_one_line_error(
        run_main(
            capsys, *base, "--source", "original-htsat", "--checkpoint", safetensors_file, "--output", tmp_path / "o4"
        ),
        "foreign.safetensors",
    )


def test_pipeline_top_k_below_one_is_refused_with_its_name(models):
    from transformers import pipeline

    classifier = pipeline("audio-classification", model=str(models["ast"]))
    with pytest.raises(ValueError, match="top_k must be a whole number >= 1"):
        classifier(np.zeros(16000, np.float32), top_k=-1)
    assert len(classifier(np.zeros(16000, np.float32), top_k=50)) == 3  # more than the labels: all of them


def test_classify_json_is_valid_json_even_for_nan_scores(models, clip, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    diverged = shutil.copytree(models["ast"], tmp_path / "nan_model")
    weights = load_file(diverged / "model.safetensors")
    weights = {
        name: torch.full_like(tensor, float("nan")) if "classifier" in name else tensor
        for name, tensor in weights.items()
    }
    save_file(weights, diverged / "model.safetensors", metadata={"format": "pt"})
    result = run_main(capsys, "classify", clip, "--model", diverged, "--json", "--dtype", "float32")
    assert result.returncode == 0 and "NaN" not in result.stdout
    parsed = json.loads(result.stdout)
    assert [score for _, score in parsed[0]["labels"]] == [None, None, None]  # NaN scores as JSON null


def test_pretrain_on_an_empty_folder_is_one_line_with_status_2(tmp_path, capsys):
    pytest.importorskip("datasets")
    (tmp_path / "empty").mkdir()
    result = run_main(
        capsys, "pretrain", "--data", tmp_path / "empty", "--output-dir", tmp_path / "out", "--max-steps", "1"
    )
    assert_one_line_error(result, "no audio files", "empty")


def test_export_of_unreadable_weights_is_one_line(models, tmp_path, capsys):
    result = run_main(capsys, "export", models["truncated"], "--format", "transformers", "--output", tmp_path / "out")
    assert_one_line_error(result, "model.safetensors", "truncated")
