"""Saved directories carry their own code: plain transformers loads them with `trust_remote_code=True`."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    pipeline,
)

import spectrogram_transformers
from spectrogram_transformers import (
    ASTFeatureExtractor,
    HTSATFeatureExtractor,
    SSASTConfig,
    SSASTForAudioClassification,
    SSASTForPreTraining,
)
from spectrogram_transformers.modeling.remote_code import (
    REMOTE_CODE_CLASSES,
    SHARED_MODULE,
    remote_code_file,
)
from spectrogram_transformers.modeling.remote_code.generate import (
    GenerationError,
    generate_files,
    generate_module,
)
from testing_utils.fixtures import TESTS_DIR
from testing_utils.tiny_models import save_tiny_ast, save_tiny_htsat

TESTS = TESTS_DIR / "testing_utils"
REMOTE_CODE_DIR = remote_code_file("ast").parent


def save_tiny_ssast(directory: Path, pretraining: bool = False) -> Path:
    torch.manual_seed(1)
    config = SSASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=100,
        patch_size=16,
        frequency_stride=16,
        time_stride=16,
        num_labels=3,
        num_masked_patches=8,
        id2label={0: "a", 1: "b", 2: "c"},
        label2id={"a": 0, "b": 1, "c": 2},
    )
    (SSASTForPreTraining if pretraining else SSASTForAudioClassification)(config).save_pretrained(directory)
    ASTFeatureExtractor(max_length=100).save_pretrained(directory)
    return Path(directory)


def test_generated_remote_code_is_up_to_date():
    generated = generate_files()
    assert sorted(generated) == sorted(
        [f"{SHARED_MODULE}.py", *(remote_code_file(model_type).name for model_type in REMOTE_CODE_CLASSES)]
    )
    for name, expected in generated.items():
        assert expected.startswith("# GENERATED FILE: DO NOT EDIT."), name
        assert (REMOTE_CODE_DIR / name).read_text(encoding="utf-8") == expected, (
            f"{name} is stale: run `python -m spectrogram_transformers.modeling.remote_code.generate`"
        )


def test_family_modules_take_what_they_share_from_one_module():
    """No definition is written twice: a class or function two family modules define alike would belong in the
    shared module (same-named private helpers with different bodies are each family's own)."""
    defined = {}
    for model_type in REMOTE_CODE_CLASSES:
        tree = ast.parse(remote_code_file(model_type).read_text(encoding="utf-8"))
        defined[model_type] = {
            node.name: ast.dump(node) for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))
        }
        shared_imports = [
            node for node in tree.body if isinstance(node, ast.ImportFrom) and node.module == SHARED_MODULE
        ]
        assert len(shared_imports) == 1 and shared_imports[0].level == 1, model_type  # a sibling relative import
    families = sorted(defined)
    for index, first in enumerate(families):
        for second in families[index + 1 :]:
            twice = [
                name
                for name in defined[first].keys() & defined[second].keys()
                if defined[first][name] == defined[second][name]
            ]
            assert not twice, (first, second, sorted(twice))


def test_generator_refuses_two_meanings_for_one_name(tmp_path, monkeypatch):
    package = tmp_path / "clashing"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "first.py").write_text("SCALE = 1\n\n\nclass First:\n    scale = SCALE\n")
    (package / "second.py").write_text(
        "from .first import First\n\nSCALE = 2\n\n\nclass Second(First):\n    other = SCALE\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(GenerationError, match="'SCALE' is defined differently in clashing.first and clashing.second"):
        generate_module(["clashing.second"], ["Second"], "clash")
    (package / "second.py").write_text(
        "from .first import SCALE, First\n\n\nclass Second(First):\n    other = SCALE\n"
    )
    text = generate_module(["clashing.second"], ["Second"], "clash")
    assert text.count("SCALE = 1") == 1 and "import" not in text.split('"""')[-1].replace(
        "from __future__ import annotations", ""
    )


def test_saved_directories_carry_auto_map_and_code(tmp_path):
    ast_dir = save_tiny_ast(tmp_path / "ast")
    htsat_dir = save_tiny_htsat(tmp_path / "htsat")
    pretraining_dir = save_tiny_ssast(tmp_path / "ssast_pretraining", pretraining=True)
    for directory, model_type in ((ast_dir, "ast"), (htsat_dir, "htsat"), (pretraining_dir, "ssast")):
        config = json.loads((directory / "config.json").read_text())
        assert config["auto_map"]["AutoModelForAudioClassification"].startswith(
            f"spectrogram_transformers_{model_type}."
        )
        assert "AutoFeatureExtractor" in config["auto_map"]
        assert (directory / f"spectrogram_transformers_{model_type}.py").read_text() == remote_code_file(
            model_type
        ).read_text()
        assert (directory / f"{SHARED_MODULE}.py").read_text() == (REMOTE_CODE_DIR / f"{SHARED_MODULE}.py").read_text()
    assert "AutoModelForPreTraining" in json.loads((pretraining_dir / "config.json").read_text())["auto_map"]
    htsat_preprocessor = json.loads((htsat_dir / "preprocessor_config.json").read_text())
    assert htsat_preprocessor["feature_extractor_type"] == "HTSATFeatureExtractor"
    assert htsat_preprocessor["auto_map"] == {
        "AutoFeatureExtractor": "spectrogram_transformers_htsat.HTSATFeatureExtractor"
    }
    # transformers would resolve "ASTFeatureExtractor" to its own class: the AST extractor's auto_map is in config.json
    assert "feature_extractor_type" not in json.loads((ast_dir / "preprocessor_config.json").read_text())
    # a feature extractor saved on its own carries its code too
    HTSATFeatureExtractor().save_pretrained(tmp_path / "extractor")
    assert (tmp_path / "extractor" / "spectrogram_transformers_htsat.py").is_file()


def test_with_the_package_installed_its_classes_load_without_trust(tmp_path):
    directories = [
        save_tiny_ast(tmp_path / "ast"),
        save_tiny_htsat(tmp_path / "htsat"),
        save_tiny_ssast(tmp_path / "ssast"),
    ]
    for directory in directories:
        config = AutoConfig.from_pretrained(directory)
        model = AutoModelForAudioClassification.from_pretrained(directory)
        extractor = AutoFeatureExtractor.from_pretrained(directory)
        for loaded in (config, model, extractor):
            assert type(loaded).__module__.startswith("spectrogram_transformers."), type(loaded)
    assert not any(name.startswith("transformers_modules") for name in sys.modules)


@pytest.mark.slow
def test_package_free_process_loads_every_family_bit_exactly(tmp_path):
    """A subprocess that cannot import the package loads the three families through the Auto classes and the
    pipeline (remote code) and gives the logits and scores the package gives."""
    directories = [
        save_tiny_ast(tmp_path / "ast"),
        save_tiny_htsat(tmp_path / "htsat"),
        save_tiny_ssast(tmp_path / "ssast"),
        save_tiny_ssast(tmp_path / "ssast_pretraining", pretraining=True),
    ]
    # one second: within every tiny model's input, so the package's pipeline runs one window as transformers' does
    waveform = torch.sin(torch.arange(16000) * 0.05) * 0.3 + 0.05 * torch.randn(16000)
    save_file({"waveform": waveform.float()}, tmp_path / "inputs.safetensors")
    environment = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    threads = torch.get_num_threads()
    done = subprocess.run(
        [
            sys.executable,
            str(TESTS / "remote_code_client.py"),
            str(tmp_path / "inputs.safetensors"),
            str(tmp_path / "out"),
            str(threads),
            *map(str, directories),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out.json").read_text())
    produced = load_file(tmp_path / "out.safetensors")
    assert report["package_imported"] is False

    for directory in directories[:3]:
        name = directory.name
        entry = report[name]
        assert entry["model_class"].startswith("transformers_modules."), entry  # remote code, not the package
        assert entry["extractor_class"].startswith("transformers_modules."), entry
        model = AutoModelForAudioClassification.from_pretrained(directory).eval()
        base = type(model.base_model).from_pretrained(directory).eval()
        extractor = AutoFeatureExtractor.from_pretrained(directory)
        features = extractor(waveform.numpy(), sampling_rate=16000, return_tensors="pt")
        input_name = next(iter(k for k in features if k.startswith("input_")))
        with torch.no_grad():
            assert torch.equal(produced[f"{name}.features"], features[input_name])
            assert torch.equal(produced[f"{name}.logits"], model(features[input_name]).logits)
            assert torch.equal(produced[f"{name}.pooled"], base(features[input_name]).pooler_output)
        scores = pipeline("audio-classification", model=str(directory))(
            {"raw": waveform.numpy(), "sampling_rate": 16000}, top_k=None
        )
        assert entry["scores"] == scores
    pretraining = SSASTForPreTraining.from_pretrained(directories[3])
    assert report["ssast_pretraining"]["model_class"] == "SSASTForPreTraining"
    expected = torch.stack([p.double().sum() for p in pretraining.parameters()])
    assert torch.equal(produced["ssast_pretraining.checksum"], expected)
    assert spectrogram_transformers  # the parent process does use the package
