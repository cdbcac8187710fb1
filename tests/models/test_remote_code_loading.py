"""The remote-code classes load every checkpoint format the package classes load, without the package.

Loading a transformers-native AST directory converts it with code imported INSIDE a function
(`ast_state_dicts`); the generator must follow such imports, or the remote-code class fails with a NameError.
"""

import json
import os
import subprocess
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file

from spectrogram_transformers import (
    ASTForAudioClassification,
    ASTModel,
    HTSATForAudioClassification,
    SSASTConfig,
    SSASTForPreTraining,
    SSASTModel,
)
from spectrogram_transformers.modeling.remote_code import remote_code_auto_map
from testing_utils.fixtures import TESTS_DIR
from testing_utils.tiny_models import save_tiny_ast, save_tiny_htsat

LABELS = {0: "dog", 1: "rain", 2: "siren"}


def _native_ast(directory, base: bool = False):
    """A transformers-native AST (model_type "audio-spectrogram-transformer"), every tensor random."""
    torch.manual_seed(3)
    config = transformers.ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=100,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    model = (transformers.ASTModel if base else transformers.ASTForAudioClassification)(config)
    for parameter in model.parameters():
        parameter.data.normal_(0, 0.05)
    model.save_pretrained(directory)
    return directory


def test_remote_code_classes_load_every_checkpoint_format_without_the_package(tmp_path):
    ast_code = save_tiny_ast(tmp_path / "ast_code")  # a package-saved directory: where the remote code comes from
    htsat_dir = save_tiny_htsat(tmp_path / "htsat")
    torch.manual_seed(1)
    ssast_config = SSASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=100,
        patch_size=16,
        frequency_stride=16,
        time_stride=16,
        num_masked_patches=8,
    )
    ssast_pretraining = tmp_path / "ssast_pretraining"
    SSASTForPreTraining(ssast_config).save_pretrained(ssast_pretraining)
    sharded = tmp_path / "htsat_sharded"
    HTSATForAudioClassification.from_pretrained(htsat_dir).save_pretrained(sharded, max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file()

    def class_ref(model_type: str, auto: str) -> str:
        return remote_code_auto_map(model_type)[auto]

    # (name, package class, code dir, Auto class name, checkpoint, kwargs, output, frames x mel of the input)
    cases = [
        (
            "native_ast",
            ASTForAudioClassification,
            ast_code,
            "ast",
            "AutoModelForAudioClassification",
            _native_ast(tmp_path / "native"),
            {},
            "logits",
            (100, 128),
        ),
        (
            "native_ast_base",
            ASTModel,
            ast_code,
            "ast",
            "AutoModel",
            _native_ast(tmp_path / "native_base", base=True),
            {},
            "last_hidden_state",
            (100, 128),
        ),
        (
            "native_ast_longer",
            ASTForAudioClassification,
            ast_code,
            "ast",
            "AutoModelForAudioClassification",
            tmp_path / "native",
            {"max_length": 128},
            "logits",
            (128, 128),
        ),
        (
            "ssast_pretraining_encoder",
            SSASTModel,
            ssast_pretraining,
            "ssast",
            "AutoModel",
            ssast_pretraining,
            {},
            "last_hidden_state",
            (100, 128),
        ),
        (
            "htsat_sharded",
            HTSATForAudioClassification,
            htsat_dir,
            "htsat",
            "AutoModelForAudioClassification",
            sharded,
            {},
            "logits",
            (200, 16),
        ),
    ]
    torch.manual_seed(0)
    features = {name: torch.randn(2, *shape) for name, *_, shape in cases}
    save_file(features, tmp_path / "features.safetensors")
    specs = [
        {
            "name": name,
            "code_dir": str(code),
            "class_ref": class_ref(model_type, auto),
            "checkpoint": str(checkpoint),
            "kwargs": kwargs,
            "output": output,
        }
        for name, _, code, model_type, auto, checkpoint, kwargs, output, _ in cases
    ]
    specs[0]["resave"] = str(tmp_path / "resaved_by_remote_code")
    (tmp_path / "cases.json").write_text(json.dumps(specs))
    environment = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [
            sys.executable,
            str(TESTS_DIR / "testing_utils" / "remote_code_loading_client.py"),
            str(tmp_path / "cases.json"),
            str(tmp_path / "features.safetensors"),
            str(tmp_path / "out.safetensors"),
            str(torch.get_num_threads()),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    produced = load_file(tmp_path / "out.safetensors")
    for name, package_class, _, _, _, checkpoint, kwargs, output, _ in cases:
        assert produced[f"{name}.module"].item(), f"{name}: not loaded through remote code"
        model = package_class.from_pretrained(checkpoint, **kwargs).eval()
        with torch.no_grad():
            expected = getattr(model(features[name]), output)
        assert torch.equal(produced[name], expected), name
    assert torch.equal(produced["native_ast.resaved"], produced["native_ast"])
    resaved = sorted(path.name for path in (tmp_path / "resaved_by_remote_code").glob("*.py"))
    assert resaved == ["spectrogram_transformers_ast.py", "spectrogram_transformers_shared.py"]
