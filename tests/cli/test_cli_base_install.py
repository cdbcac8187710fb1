"""The command line on a base install (no `[train]` extra): `--help` of every subcommand, `convert`,
`classify`, `detect` and `export` work; `train`, `pretrain` and `ensemble` say in one line which extra to install.

Each command runs in a subprocess whose import system cannot see the training stack: every meta-path finder
is wrapped so that `datasets`, `accelerate`, scikit-learn, scipy, ... are not found (`importlib.util.find_spec`
returns None, as on a machine where they were never installed), and the subprocess reports any of them that
ended up imported anyway.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from spectrogram_transformers.cli import SUBCOMMANDS
from testing_utils.fixtures import fixture_path
from testing_utils.training import tiny_ast_dir, tone_wav_bytes

# what a base install lacks: the [train] extra, its dependencies, and optional extras' packages
ABSENT = ("datasets", "accelerate", "evaluate", "sklearn", "scipy", "tensorboard", "pandas", "pyarrow", "librosa",
          "torchaudio", "matplotlib", "onnx", "onnxruntime", "gradio", "peft")  # fmt: skip

# argv: absent module names (comma-separated), then a JSON list of command lines run one after the other in
# this one process (interpreter start-up dominates on small machines); prints a JSON list of
# {"status", "stdout", "stderr"} and exits 97 if any absent module was imported
RUN_WITHOUT_EXTRAS = """
import contextlib, io, json, sys, traceback
ABSENT = set(sys.argv[1].split(","))

class HideAbsent:
    def __init__(self, finder):
        self._finder = finder

    def __getattr__(self, name):
        return getattr(self._finder, name)

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            return None
        find_spec = getattr(self._finder, "find_spec", None)
        return None if find_spec is None else find_spec(name, path, target)

sys.meta_path[:] = [HideAbsent(finder) for finder in sys.meta_path]
from spectrogram_transformers.cli import main
results = []
for argv in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit:  # what the console script does with it
            if isinstance(exit.code, str):
                print(exit.code, file=sys.stderr)
            status = exit.code if isinstance(exit.code, int) or exit.code is None else 1
        except BaseException:
            traceback.print_exc()
            status = 1
    results.append({"status": status or 0, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
imported = sorted({name.partition(".")[0] for name in sys.modules} & ABSENT)
if imported:
    print("IMPORTED:", ",".join(imported), file=sys.stderr)
    sys.exit(97)
"""


def run_base_cli(*command_lines: list[str], cwd: Path) -> list[dict]:
    """Run the command lines in one subprocess without the training stack; their status, stdout and stderr."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_EXTRAS, ",".join(ABSENT), json.dumps(command_lines)],
        capture_output=True, text=True, cwd=cwd, env=environment, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_blocker_hides_the_training_stack(tmp_path):
    check = "import importlib.util; print(importlib.util.find_spec('datasets'), importlib.util.find_spec('numpy') is not None)"
    code = RUN_WITHOUT_EXTRAS.split("from spectrogram_transformers.cli")[0] + check
    result = subprocess.run(
        [sys.executable, "-c", code, ",".join(ABSENT)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "True"]


@pytest.mark.slow
def test_help_of_every_subcommand_on_a_base_install(tmp_path):
    results = run_base_cli(["--help"], *([name, "--help"] for name in SUBCOMMANDS), cwd=tmp_path)
    for name in SUBCOMMANDS:
        assert name in results[0]["stdout"]
    for name, result in zip(SUBCOMMANDS, results[1:]):
        assert result["status"] == 0 and "usage:" in result["stdout"], (name, result)


@pytest.mark.slow
def test_convert_classify_detect_on_a_base_install(tmp_path):
    """The HTS-AT fixture checkpoint converted, then a WAV classified and its events detected, without extras."""
    checkpoint = tmp_path / "htsat.safetensors"
    save_file(load_file(str(fixture_path("htsat_e12_d2222.state_dict.safetensors"))), str(checkpoint))
    model_dir = tmp_path / "model"
    audio = tmp_path / "tone.wav"
    audio.write_bytes(tone_wav_bytes(440, 3.0, 32000, seed=0))
    converted, classified, detected = run_base_cli(
        ["convert", "--source", "original-htsat", "--checkpoint", str(checkpoint), "--output", str(model_dir)],
        ["classify", str(audio), "--model", str(model_dir), "--json"],
        ["detect", str(audio), "--model", str(model_dir), "--threshold", "0.0"],
        cwd=tmp_path,
    )
    assert converted["status"] == 0, converted["stderr"]
    assert (model_dir / "config.json").exists()
    assert classified["status"] == 0, classified["stderr"]
    assert str(audio) in classified["stdout"]
    assert detected["status"] == 0, detected["stderr"]
    assert detected["stdout"].strip()


@pytest.mark.slow
def test_export_to_transformers_format_on_a_base_install(tmp_path):
    model_dir = tiny_ast_dir(tmp_path / "tiny", max_length=100)
    (exported,) = run_base_cli(
        ["export", str(model_dir), "--format", "transformers", "--output", str(tmp_path / "native")], cwd=tmp_path
    )
    assert exported["status"] == 0, exported["stderr"]
    assert '"audio-spectrogram-transformer"' in (tmp_path / "native" / "config.json").read_text()


@pytest.mark.slow
def test_training_commands_name_the_extra_in_one_line(tmp_path):
    results = run_base_cli(
        ["train"],  # the offline main job
        ["train", "--recipe", "esc50", "--model", "ast-base-f10-t10-1024"],
        ["pretrain", "--data", "x", "--model", "y"],
        ["ensemble", "--models", "a", "b", "--recipe", "esc50"],
        cwd=tmp_path,
    )
    for result in results:
        assert result["status"] != 0
        lines = result["stderr"].strip().splitlines()
        assert len(lines) == 1, result["stderr"]
        assert "pip install 'spectrogram-transformers[train]'" in lines[0] and "datasets" in lines[0]


def test_offline_job_without_espeak_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    """`train` with the training stack but no espeak-ng on PATH (issue 10.2): one line, nothing written."""
    from spectrogram_transformers.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["train", "--output_dir", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert (
        message.count("\n") == 1
        and message.startswith("error: ")
        and "espeak-ng" in message
        and "apt-get install espeak-ng" in message
    )
    assert not (tmp_path / "out").exists()
