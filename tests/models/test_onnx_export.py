"""ONNX export and the ONNX Runtime runner: parity with PyTorch on the fixture clips, int8 top-1, the CLI."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from spectrogram_transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    HTSATConfig,
    HTSATFeatureExtractor,
    HTSATForAudioClassification,
    SSASTConfig,
    SSASTForAudioClassification,
    SSASTForPreTraining,
    convert,
)
from spectrogram_transformers.cli import main as cli_main
from spectrogram_transformers.onnx_export import (
    EXPORT_FILE,
    OnnxAudioModel,
    export_onnx,
)
from testing_utils.fixtures import AUDIO_FIXTURES_DIR, load_fixture

AUDIO = AUDIO_FIXTURES_DIR
LOGIT_TOLERANCE = 1e-4


def fixture_clips() -> list[np.ndarray]:
    return [soundfile.read(path, dtype="float32")[0] for path in sorted(AUDIO.glob("*_16k.wav"))]


@pytest.fixture(scope="module")
def ast_dir(tmp_path_factory) -> Path:
    """The original-AST fixture checkpoint (fixture B) converted, with its feature extractor."""
    directory = tmp_path_factory.mktemp("ast")
    config = ASTConfig(
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=256,
        frequency_stride=16,
        time_stride=16,
        max_length=128,
        num_labels=7,
    )
    convert(load_fixture("ast_w64d3_f16t16_tdim128.state_dict"), "original-ast", config).save_pretrained(directory)
    ASTFeatureExtractor(max_length=128).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def ast_onnx_dir(ast_dir, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("ast_onnx")
    report = export_onnx(ast_dir, output, overwrite=True)
    assert report.max_abs_difference["logits"] <= LOGIT_TOLERANCE and report.same_top1
    return output


def pytorch_and_onnx(model_dir: Path, onnx_dir: Path, extractor) -> tuple:
    from transformers import AutoModelForAudioClassification

    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    features = extractor(fixture_clips(), sampling_rate=16000, return_tensors="pt")[extractor.model_input_names[0]]
    with torch.no_grad():
        expected = model(features)
    return expected, OnnxAudioModel(onnx_dir)(features), features


def test_ast_onnx_matches_pytorch_on_the_fixture_clips(ast_dir, ast_onnx_dir):
    expected, produced, features = pytorch_and_onnx(ast_dir, ast_onnx_dir, ASTFeatureExtractor(max_length=128))
    assert features.shape[0] == 9  # exported with a batch of 2: the batch axis is dynamic
    assert set(produced) == {"logits"} and produced.logits.dtype == torch.float32
    torch.testing.assert_close(produced["logits"], expected.logits, atol=LOGIT_TOLERANCE, rtol=0)
    runner = OnnxAudioModel(ast_onnx_dir / EXPORT_FILE)
    assert runner.config.model_type == "ast" and runner.config.num_labels == 7
    single = runner(input_values=features[:1].numpy(), attention_mask=None)
    torch.testing.assert_close(single.logits, expected.logits[:1], atol=LOGIT_TOLERANCE, rtol=0)


def test_int8_quantisation_keeps_top1_on_the_fixture_clips(ast_dir, tmp_path):
    report = export_onnx(ast_dir, tmp_path / "int8", quantize="int8")
    assert report.quantize == "int8"
    # every linear layer's MatMul became an integer one; the patch-embedding convolution stays float
    operations = onnx_op_types(tmp_path / "int8")
    assert "MatMul" not in operations and operations.count("MatMulInteger") == 3 * 4 + 1  # 4 per layer + classifier
    assert "Conv" in operations and "ConvInteger" not in operations
    expected, produced, _ = pytorch_and_onnx(ast_dir, tmp_path / "int8", ASTFeatureExtractor(max_length=128))
    assert torch.equal(produced.logits.argmax(-1), expected.logits.argmax(-1))
    assert (produced.logits - expected.logits).abs().max() > 0  # really quantised, not the fp32 graph


def test_ssast_onnx_matches_pytorch(tmp_path):
    config = SSASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=(16, 16),
        frequency_stride=16,
        time_stride=16,
        max_length=128,
        num_mel_bins=128,
        num_labels=5,
    )
    torch.manual_seed(0)
    SSASTForAudioClassification(config).eval().save_pretrained(tmp_path / "model")
    ASTFeatureExtractor(max_length=128).save_pretrained(tmp_path / "model")
    export_onnx(tmp_path / "model", tmp_path / "onnx")
    expected, produced, _ = pytorch_and_onnx(
        tmp_path / "model", tmp_path / "onnx", ASTFeatureExtractor(max_length=128)
    )
    torch.testing.assert_close(produced.logits, expected.logits, atol=LOGIT_TOLERANCE, rtol=0)


def test_htsat_onnx_gives_clip_and_frame_outputs(tmp_path):
    labels = dict(enumerate(["speech", "dog", "siren", "music"]))
    config = HTSATConfig(
        spec_size=64,
        num_mel_bins=16,
        embed_dim=8,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=4,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    torch.manual_seed(0)
    HTSATForAudioClassification(config).eval().save_pretrained(tmp_path / "model")
    extractor = HTSATFeatureExtractor(
        sampling_rate=16000, num_mel_bins=16, hop_length=160, n_fft=512, fmax=8000.0, clip_samples=32000
    )
    extractor.save_pretrained(tmp_path / "model")
    report = export_onnx(tmp_path / "model", tmp_path / "onnx")
    assert report.output_names == ("logits", "framewise_logits")
    expected, produced, _ = pytorch_and_onnx(tmp_path / "model", tmp_path / "onnx", extractor)
    torch.testing.assert_close(produced.logits, expected.logits, atol=LOGIT_TOLERANCE, rtol=0)
    torch.testing.assert_close(produced.framewise_logits, expected.framewise_logits, atol=LOGIT_TOLERANCE, rtol=0)
    assert produced.framewise_logits.shape == expected.framewise_logits.shape == (9, config.num_frames, 4)
    assert OnnxAudioModel(tmp_path / "onnx").config.id2label[1] == "dog"
    # masked (shifted-window, relative-bias) attention keeps the standard ops
    assert "MultiHeadAttention" not in onnx_op_types(tmp_path / "onnx") and "Softmax" in onnx_op_types(
        tmp_path / "onnx"
    )


def test_runner_refuses_bad_features_with_clear_errors(ast_onnx_dir):
    runner = OnnxAudioModel(ast_onnx_dir)
    with pytest.raises(ValueError, match=r"input_values must have shape \(batch, 128, 128\)"):
        runner(np.zeros((2, 100, 128), dtype=np.float32))
    with pytest.raises(ValueError, match="empty batch"):
        runner(np.zeros((0, 128, 128), dtype=np.float32))
    with pytest.raises(TypeError, match="floating point"):
        runner(np.zeros((1, 128, 128), dtype=np.int64))
    with pytest.raises(TypeError, match="unexpected inputs"):
        runner(np.zeros((1, 128, 128), dtype=np.float32), input_features=1)
    with pytest.raises(FileNotFoundError, match="export --format onnx"):
        OnnxAudioModel(ast_onnx_dir / "missing")


def test_export_cli_writes_a_runnable_directory_and_refuses_to_overwrite(ast_dir, tmp_path, capsys):
    output = tmp_path / "exported"
    assert cli_main(["export", str(ast_dir), "--format", "onnx", "--output", str(output)]) == 0
    assert "max |ONNX Runtime - PyTorch|" in capsys.readouterr().out
    assert {path.name for path in output.iterdir()} >= {
        EXPORT_FILE,
        "config.json",
        "preprocessor_config.json",
        "onnx_export.json",
    }
    before = (output / EXPORT_FILE).read_bytes()
    assert cli_main(["export", str(ast_dir), "--format", "onnx", "--output", str(output), "--quantize", "int8"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (output / EXPORT_FILE).read_bytes() == before
    assert cli_main(["export", str(ast_dir), "--format", "onnx", "--output", str(tmp_path / "model.onnx")]) == 2
    assert "must be a directory" in capsys.readouterr().err


def test_export_refuses_a_pretraining_checkpoint_in_one_line(tmp_path, capsys):
    """A pre-training model would be exported with a random classifier head: the same refusal as classify's."""
    config = SSASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=(16, 16),
        frequency_stride=16,
        time_stride=16,
        max_length=128,
        num_mel_bins=128,
        num_masked_patches=20,
    )
    SSASTForPreTraining(config).save_pretrained(tmp_path / "pretraining")
    ASTFeatureExtractor(max_length=128).save_pretrained(tmp_path / "pretraining")
    capsys.readouterr()  # the save's progress bars
    assert (
        cli_main(["export", str(tmp_path / "pretraining"), "--format", "onnx", "--output", str(tmp_path / "onnx")])
        == 2
    )
    error = capsys.readouterr().err
    assert "SSASTForPreTraining" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "onnx" / EXPORT_FILE).exists()


def onnx_op_types(onnx_dir: Path) -> list[str]:
    import onnx

    return [node.op_type for node in onnx.load(onnx_dir / EXPORT_FILE).graph.node]


def test_unmasked_attention_is_one_onnxruntime_node_per_layer(ast_onnx_dir):
    """AST's attention exports as ONNX Runtime's fused MultiHeadAttention (parity: the test above)."""
    operations = onnx_op_types(ast_onnx_dir)
    assert operations.count("MultiHeadAttention") == 3  # the fixture model's 3 layers
    assert "Softmax" not in operations
    # q_proj/k_proj/v_proj are concatenated at export: per layer one q/k/v MatMul (+ o_proj, fc1, fc2), one Split
    assert operations.count("MatMul") == 3 * 4 and operations.count("Split") == 3


def test_htsat_int8_keeps_clip_top1_and_frame_labels_on_the_fixture_clips(tmp_path):
    """The original HTS-AT fixture checkpoint through int8: the clip's top label unchanged, frames nearly all."""
    from spectrogram_transformers.modeling.htsat.convert_htsat import build_from_original_htsat

    build_from_original_htsat(load_fixture("htsat_e12_d2222.state_dict")).save_pretrained(tmp_path / "model")
    extractor = HTSATFeatureExtractor()
    extractor.save_pretrained(tmp_path / "model")
    export_onnx(tmp_path / "model", tmp_path / "int8", quantize="int8")
    assert "MatMulInteger" in onnx_op_types(tmp_path / "int8")
    expected, produced, _ = pytorch_and_onnx(tmp_path / "model", tmp_path / "int8", extractor)
    assert torch.equal(produced.logits.argmax(-1), expected.logits.argmax(-1))
    frame_agreement = (produced.framewise_logits.argmax(-1) == expected.framewise_logits.argmax(-1)).float().mean()
    assert frame_agreement >= 0.99  # measured 0.9965 (a few frames where two labels are within int8 rounding)
    assert (produced.logits - expected.logits).abs().max() > 0  # really quantised
