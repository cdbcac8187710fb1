"""PEFT/LoRA on all three families with the real `peft`: q_proj/v_proj targets, adapters that reload to the trained
model's outputs after train-mode steps (HTS-AT's mel BatchNorm included), and `AutoPeftModel` from an adapter
directory alone."""

import pytest
import torch
from transformers import AutoModelForAudioClassification

from spectrogram_transformers import SSASTConfig, SSASTForAudioClassification
from testing_utils.tiny_models import save_tiny_ast, save_tiny_htsat

peft = pytest.importorskip("peft")

# the package-import allowlist AutoPeftModel needs for model classes outside transformers (see docs/training.md)
IMPORT_ALLOWLIST = ["spectrogram_transformers"]


def save_tiny_ssast(directory):
    config = SSASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=100,
        patch_size=16,
        frequency_stride=16,
        time_stride=16,
        num_labels=8,
        num_masked_patches=8,
    )
    SSASTForAudioClassification(config).save_pretrained(directory)
    return directory


# family -> (maker, features (B, frames, mel) the model takes, labels for its problem type)
FAMILIES = {
    "ast": (save_tiny_ast, (4, 100, 128), "single"),
    "ssast": (save_tiny_ssast, (4, 100, 128), "single"),
    "htsat": (save_tiny_htsat, (4, 256, 16), "multi"),
}


def batch(family: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    _, shape, kind = FAMILIES[family]
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(shape, generator=generator)
    if kind == "single":
        return features, torch.randint(0, 8, (shape[0],), generator=generator)
    return features, (torch.rand(shape[0], 8, generator=generator) > 0.5).float()


def lora_model(directory, **options):
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"], **options
    )
    return peft.get_peft_model(AutoModelForAudioClassification.from_pretrained(directory), config)


def train_steps(model, family: str, steps: int = 3) -> None:
    """Real train-mode steps (dropout, BatchNorm in training mode), as Trainer runs them."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    for step in range(steps):
        model.train()
        features, labels = batch(family, seed=step + 1)
        model(features, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


@pytest.fixture(params=sorted(FAMILIES))
def trained(request, tmp_path):
    """(family, base directory, trained PEFT model in eval mode, adapter directory)."""
    family = request.param
    base_dir = FAMILIES[family][0](tmp_path / "base")
    model = lora_model(base_dir)
    lora_layers = [
        name for name, _ in model.named_modules() if name.endswith(("q_proj", "v_proj")) and hasattr(_, "lora_A")
    ]
    assert lora_layers and not any("k_proj" in name for name in lora_layers)
    train_steps(model, family)
    model.eval()
    model.save_pretrained(tmp_path / "adapter")
    return family, base_dir, model, tmp_path / "adapter"


def test_lora_on_q_and_v_trains_and_the_reloaded_adapter_gives_the_trained_outputs(trained):
    family, base_dir, model, adapter_dir = trained
    features, _ = batch(family)
    base = AutoModelForAudioClassification.from_pretrained(base_dir).eval()
    with torch.no_grad():
        expected = model(features).logits
        untrained = base(features).logits
        reloaded = peft.PeftModel.from_pretrained(base, adapter_dir).eval()
        produced = reloaded(features).logits
    assert (expected - untrained).abs().max() > 1e-3  # the steps changed the model
    torch.testing.assert_close(produced, expected, atol=1e-6, rtol=0)


def test_htsat_mel_batch_norm_keeps_its_statistics_under_lora(tmp_path):
    """PEFT freezes bn0's parameters, so bn0 stays in eval mode in training and its statistics (not in the
    adapter) do not move; otherwise a reloaded adapter would give other outputs."""
    model = lora_model(save_tiny_htsat(tmp_path / "base"))
    mel_norm = model.base_model.model.htsat.embeddings.mel_norm
    before = (mel_norm.running_mean.clone(), mel_norm.running_var.clone(), mel_norm.num_batches_tracked.clone())
    train_steps(model, "htsat")
    assert not mel_norm.training or not model.training
    torch.testing.assert_close(
        (mel_norm.running_mean, mel_norm.running_var, mel_norm.num_batches_tracked), before, atol=0, rtol=0
    )


def test_auto_peft_model_loads_the_adapter_directory_alone(trained):
    """`base_model_name_or_path` is the base directory (from `model.name_or_path`), and the package's classes
    load with `import_allowlist` naming the package."""
    import json

    family, base_dir, model, adapter_dir = trained
    assert json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base_dir)
    loaded = peft.AutoPeftModel.from_pretrained(adapter_dir, import_allowlist=IMPORT_ALLOWLIST).eval()
    features, _ = batch(family)
    with torch.no_grad():
        torch.testing.assert_close(loaded(features).logits, model(features).logits, atol=1e-6, rtol=0)


def test_lora_layers_run_the_same_with_and_without_gradients(trained):
    """Under no_grad our `Linear` takes the oneDNN path inside PEFT's LoRA wrapper; with gradients, nn.Linear's."""
    family, _, model, _ = trained
    features, _ = batch(family)
    with torch.no_grad():
        fast = model(features).logits
    with torch.enable_grad():
        plain = model(features).logits
    torch.testing.assert_close(fast, plain.detach(), atol=1e-5, rtol=0)


def test_merged_model_saves_and_reloads_as_a_plain_model(trained, tmp_path):
    family, _, model, _ = trained
    features, _ = batch(family)
    with torch.no_grad():
        expected = model(features).logits
        merged = model.merge_and_unload()
        merged.save_pretrained(tmp_path / "merged")
        reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path / "merged").eval()
        torch.testing.assert_close(reloaded(features).logits, expected, atol=1e-5, rtol=0)
    assert not any("lora" in key for key in reloaded.state_dict())
