"""`modeling.linear`: oneDNN CPU inference for the models' linear layers, and where it must NOT be used.

Which kernel ran is read from the profiler (`mkldnn::_linear_pointwise` vs `aten::addmm`/`aten::linear`), so
these tests check the dispatch for real; the values are checked against `F.linear` in float64.
"""

import pytest
import torch
from torch import nn
from transformers.activations import ACT2FN

from spectrogram_transformers import ASTConfig, ASTForAudioClassification
from spectrogram_transformers.modeling.linear import Linear, linear_then_activation, onednn_linear_applies

ONEDNN_OP = "mkldnn::_linear_pointwise"


def ran_onednn(function) -> tuple[bool, object]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        result = function()
    return any(event.name == ONEDNN_OP for event in profile.events()), result


def reference(layer: nn.Linear, inputs: torch.Tensor) -> torch.Tensor:
    return nn.functional.linear(inputs.double(), layer.weight.double(), layer.bias.double())


@pytest.fixture
def layer() -> Linear:
    torch.manual_seed(0)
    return Linear(96, 160).eval()


def test_cpu_inference_runs_on_onednn_and_matches_float64(layer):
    inputs = torch.randn(3, 50, 96)
    with torch.no_grad():
        used, output = ran_onednn(lambda: layer(inputs))
    assert used
    torch.testing.assert_close(output.double(), reference(layer, inputs), rtol=0, atol=2e-5)
    with torch.inference_mode():
        assert ran_onednn(lambda: layer(inputs))[0]


def test_bf16_runs_on_onednn_exactly_where_the_cpu_supports_bf16(layer):
    inputs = torch.randn(40, 96).bfloat16()
    layer = layer.bfloat16()
    with torch.no_grad():
        used, output = ran_onednn(lambda: layer(inputs))
    assert used == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert output.dtype == torch.bfloat16
    torch.testing.assert_close(output.double(), reference(layer, inputs), rtol=2e-2, atol=5e-2)


def test_training_autocast_tracing_and_the_mkldnn_switch_keep_nn_linear(layer):
    inputs = torch.randn(8, 96, requires_grad=True)
    used, output = ran_onednn(lambda: layer(inputs))  # gradients on: oneDNN's op has no autograd
    assert not used
    assert torch.equal(output, nn.functional.linear(inputs, layer.weight, layer.bias))
    output.sum().backward()
    assert layer.weight.grad is not None and inputs.grad is not None

    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            used, output = ran_onednn(lambda: layer(inputs))
        assert not used and output.dtype == torch.bfloat16  # autocast's rule still applies
        with torch.backends.mkldnn.flags(enabled=False):
            assert not ran_onednn(lambda: layer(inputs))[0]
        traced = torch.jit.trace(layer, inputs.detach())
        assert "mkldnn" not in str(traced.graph)
        assert not onednn_linear_applies(torch.randn(2, 96, dtype=torch.float64), layer.weight)


def test_fused_gelu_matches_and_steps_aside_for_hooks_and_replacements(layer):
    inputs = torch.randn(30, 96)
    gelu = ACT2FN["gelu"]
    expected = nn.functional.gelu(reference(layer, inputs))
    with torch.no_grad():
        used, output = ran_onednn(lambda: linear_then_activation(layer, gelu, inputs))
        assert used
        torch.testing.assert_close(output.double(), expected, rtol=0, atol=2e-5)

        # a forward hook on the layer must see the call: no fusion then, same values
        seen = []
        handle = layer.register_forward_hook(lambda module, args, result: seen.append(result.shape))
        output = linear_then_activation(layer, gelu, inputs)
        handle.remove()
        assert seen == [(30, 160)]
        torch.testing.assert_close(output.double(), expected, rtol=0, atol=2e-5)

        # another activation, or a wrapper in place of the layer (as PEFT puts there): computed as written
        relu = nn.ReLU()
        torch.testing.assert_close(
            linear_then_activation(layer, relu, inputs).double(),
            reference(layer, inputs).clamp(min=0),
            rtol=0,
            atol=2e-5,
        )
        wrapper = nn.Sequential(layer)
        torch.testing.assert_close(linear_then_activation(wrapper, gelu, inputs).double(), expected, rtol=0, atol=2e-5)


def test_models_use_it_in_inference_and_hooks_on_their_layers_still_fire():
    config = ASTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=32, num_labels=3
    )
    model = ASTForAudioClassification(config).eval()
    assert all(type(module) is Linear for name, module in model.named_modules() if isinstance(module, nn.Linear))
    features = torch.randn(2, 32, 128)
    with torch.no_grad():
        used, fast = ran_onednn(lambda: model(features).logits)
        assert used
        captured = []
        model.base_model.encoder.layers[0].mlp.fc1.register_forward_hook(
            lambda module, args, result: captured.append(result)
        )
        hooked = model(features).logits
    assert len(captured) == 1 and captured[0].shape == (
        2,
        model.base_model.embeddings.position_embeddings.shape[1],
        64,
    )
    torch.testing.assert_close(hooked, fast, rtol=0, atol=1e-5)
    with torch.backends.mkldnn.flags(enabled=False), torch.no_grad():
        torch.testing.assert_close(model(features).logits, fast, rtol=0, atol=1e-5)


def _tiny_model(family: str) -> tuple[nn.Module, torch.Tensor]:
    """(a tiny model in eval mode, features for it)."""
    from spectrogram_transformers import HTSATConfig, HTSATForAudioClassification

    torch.manual_seed(0)
    if family == "ast":
        config = ASTConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_length=32,
            num_labels=3,
        )
        return ASTForAudioClassification(config).eval(), torch.randn(2, 32, 128)
    config = HTSATConfig(
        spec_size=64, num_mel_bins=16, embed_dim=8, depths=(1, 1), num_heads=(2, 4), window_size=4, num_labels=3
    )
    return HTSATForAudioClassification(config).eval(), torch.randn(2, 201, 16)


@pytest.mark.parametrize("family", ["ast", "htsat"])
def test_a_hook_on_any_module_fires_during_cpu_inference_with_the_unfused_values(family):
    """Hooking one module at a time (so that nothing else stops the oneDNN fast path), every module the forward
    runs — the MLP's activation included — calls its forward pre-hook and forward hook as often as on the plain
    `nn.Linear` path, and its hook sees that path's output."""
    model, features = _tiny_model(family)

    def run_with_hooks(names):
        calls = {name: [] for name in names}
        modules = dict(model.named_modules())
        handles = []
        for name in names:
            handles.append(
                modules[name].register_forward_pre_hook(lambda module, args, name=name: calls[name].append("pre"))
            )
            handles.append(
                modules[name].register_forward_hook(lambda module, args, result, name=name: calls[name].append(result))
            )
        with torch.no_grad():
            model(features)
        for handle in handles:
            handle.remove()
        return calls

    with torch.backends.mkldnn.flags(enabled=False):  # the reference: nn.Linear's own path, every module called
        reference = run_with_hooks([name for name, _ in model.named_modules() if name])
    ran = [name for name, calls in reference.items() if calls]
    assert any(name.endswith("mlp.activation") for name in ran)
    with torch.no_grad():
        assert ran_onednn(lambda: model(features))[0]  # unhooked, inference takes the fast path
    for name in ran:
        calls = run_with_hooks([name])[name]
        assert len(calls) == len(reference[name]), (
            f"{name}: hooks ran {len(calls)} times, {len(reference[name])} expected"
        )
        for got, expected in zip(calls, reference[name]):
            if isinstance(expected, torch.Tensor):
                torch.testing.assert_close(
                    got, expected, rtol=0, atol=1e-5, msg=lambda message, name=name: f"{name}: {message}"
                )
