"""A small common test suite for every model family (transformers does not ship its ModelTesterMixin).

A test class mixes in `ModelTesterMixin` and provides:
- `model_classes`: the classes to test, each built from `make_config()`;
- `make_config(**overrides)`: a tiny config;
- `make_inputs(config)`: a dict of forward keyword arguments (features; labels optional).
"""

import json
import tempfile

import torch

__all__ = ["ModelTesterMixin", "first_tensor"]


def first_tensor(output) -> torch.Tensor:
    """The main output tensor of a ModelOutput: logits, else the loss-free first field."""
    for name in ("logits", "last_hidden_state"):
        value = getattr(output, name, None)
        if value is not None:
            return value
    return next(value for value in output.values() if isinstance(value, torch.Tensor) and value.dim() > 0)


class ModelTesterMixin:
    model_classes: tuple = ()
    # forward kwargs that make every model class of the family produce a loss in train mode
    loss_inputs_key: str | None = "labels"

    def make_config(self, **overrides):
        raise NotImplementedError

    def make_inputs(self, config) -> dict:
        raise NotImplementedError

    def _build(self, model_class, **overrides):
        torch.manual_seed(0)
        config = self.make_config(**overrides)
        return model_class(config), config

    def test_forward_is_finite(self):
        for model_class in self.model_classes:
            model, config = self._build(model_class)
            with torch.no_grad():
                output = model.eval()(**self.make_inputs(config))
            for name, value in output.items():
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    assert torch.isfinite(value).all(), f"{model_class.__name__}.{name} has NaN/Inf"

    def test_save_load_round_trip(self):
        for model_class in self.model_classes:
            model, config = self._build(model_class)
            inputs = self.make_inputs(config)
            with tempfile.TemporaryDirectory() as directory:
                model.save_pretrained(directory)
                reloaded = model_class.from_pretrained(directory)
            with torch.no_grad():
                expected = first_tensor(model.eval()(**inputs))
                actual = first_tensor(reloaded.eval()(**inputs))
            torch.testing.assert_close(actual, expected, atol=1e-6, rtol=0)
            for (name, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items()):
                assert torch.equal(a, b), f"{model_class.__name__}: {name} changed in the round trip"

    def test_eager_and_sdpa_agree(self):
        for model_class in self.model_classes:
            model, config = self._build(model_class)
            inputs = self.make_inputs(config)
            model.eval()
            with torch.no_grad():
                model.set_attn_implementation("sdpa")
                sdpa = first_tensor(model(**inputs))
                model.set_attn_implementation("eager")
                eager = first_tensor(model(**inputs))
            torch.testing.assert_close(sdpa, eager, atol=1e-5, rtol=1e-5)

    def test_every_parameter_gets_a_gradient(self):
        for model_class in self.model_classes:
            model, config = self._build(model_class)
            model.train()
            output = model(**self.make_inputs(config))
            loss = (
                output.loss
                if getattr(output, "loss", None) is not None
                else first_tensor(output).float().pow(2).mean()
            )
            loss.backward()
            missing = [
                name
                for name, p in model.named_parameters()
                if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
            ]
            assert not missing, f"{model_class.__name__}: no (finite) gradient for {missing}"
            zero = [name for name, p in model.named_parameters() if p.requires_grad and p.grad.abs().sum() == 0]
            assert not zero, f"{model_class.__name__}: all-zero gradient for {zero}"

    def test_config_json_round_trip(self):
        config = self.make_config()
        restored = type(config).from_dict(json.loads(config.to_json_string()))
        assert restored.to_dict() == config.to_dict()
        with tempfile.TemporaryDirectory() as directory:
            config.save_pretrained(directory)
            assert type(config).from_pretrained(directory).to_dict() == config.to_dict()

    def test_gradient_checkpointing_matches(self):
        for model_class in self.model_classes:
            model, config = self._build(model_class)
            if not model.supports_gradient_checkpointing:
                continue
            inputs = self.make_inputs(config)
            model.train()  # checkpointing only acts in training; equal seeds give equal dropout/drop-path draws
            torch.manual_seed(1)
            plain = first_tensor(model(**inputs)).float().pow(2).mean()
            plain.backward()
            plain_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            model.zero_grad()
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            assert model.is_gradient_checkpointing
            torch.manual_seed(1)
            checkpointed = first_tensor(model(**inputs)).float().pow(2).mean()
            checkpointed.backward()
            torch.testing.assert_close(checkpointed, plain)
            for name, grad in plain_grads.items():
                torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-6, rtol=1e-5)
