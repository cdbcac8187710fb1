"""The package's pipeline ships with every saved classifier (`custom_pipelines` in config.json): without the
package, `pipeline("audio-classification", model=DIR, trust_remote_code=True)` gives the package's scores at
44.1 kHz and on a 30 s clip (windows averaged); with the package, the registered pipeline serves (no remote code)."""

import json
import os
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForAudioClassification, pipeline

from spectrogram_transformers.modeling.remote_code import remote_code_custom_pipelines
from testing_utils.fixtures import TESTS_DIR
from testing_utils.tiny_models import save_tiny_ast, save_tiny_htsat


def test_remote_code_pipeline_equals_the_package_pipeline(tmp_path):
    directories = [save_tiny_ast(tmp_path / "ast"), save_tiny_htsat(tmp_path / "htsat")]
    model = AutoModelForAudioClassification.from_pretrained(directories[0])
    model.save_pretrained(tmp_path / "resaved")
    assert "custom_pipelines" in json.loads((tmp_path / "resaved" / "config.json").read_text())
    assert not hasattr(model.config, "custom_pipelines")  # so pipeline(model=model, ...) needs no remote code
    generator = torch.Generator().manual_seed(0)
    time_44k = torch.arange(int(1.5 * 44100)) / 44100
    inputs = {
        "tone@44100": (
            0.3 * torch.sin(2 * torch.pi * 440 * time_44k) + 0.05 * torch.randn(len(time_44k), generator=generator)
        ).float(),
        "clip_30s@16000": (0.1 * torch.randn(30 * 16000, generator=generator)).float(),
    }
    save_file(inputs, tmp_path / "inputs.safetensors")
    for directory, model_type in zip(directories, ("ast", "htsat")):
        saved = json.loads((directory / "config.json").read_text())
        assert saved["custom_pipelines"] == remote_code_custom_pipelines(model_type)
        assert not hasattr(AutoConfig.from_pretrained(directory), "custom_pipelines")  # the package's class drops it
    environment = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [
            sys.executable,
            str(TESTS_DIR / "testing_utils" / "remote_pipeline_client.py"),
            str(tmp_path / "inputs.safetensors"),
            str(tmp_path / "out.json"),
            *map(str, directories),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out.json").read_text())
    assert report.pop("package_imported") is False
    for directory in directories:
        remote = report[str(directory)]
        assert remote.pop("class").startswith("transformers_modules.")  # the shipped pipeline, not transformers'
        classify = pipeline("audio-classification", model=str(directory))
        assert type(classify).__module__ == "spectrogram_transformers.pipelines"
        for key, waveform in inputs.items():
            rate = int(key.rsplit("@", 1)[1])
            expected = classify({"raw": waveform.numpy(), "sampling_rate": rate}, top_k=None)
            labels = [entry["label"] for entry in remote[key]]
            assert labels == [entry["label"] for entry in expected], (directory.name, key)
            np.testing.assert_allclose(
                [e["score"] for e in remote[key]], [e["score"] for e in expected], rtol=0, atol=1e-6
            )
    # a 30 s clip is several windows: their mean differs from the first window's scores
    first_window = pipeline("audio-classification", model=str(directories[0]))(
        {"raw": inputs["clip_30s@16000"][:16000].numpy(), "sampling_rate": 16000}, top_k=None
    )
    assert first_window != report[str(directories[0])]["clip_30s@16000"]
