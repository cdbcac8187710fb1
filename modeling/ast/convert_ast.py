"""Converters into `ASTForAudioClassification` from the original AST, timm ViT/DeiT and `transformers`.

Sources:
- `original-ast`: state dicts of YuanGongND/ast `ASTModel` (`v.*` DeiT backbone + `mlp_head.*`), with or
  without DataParallel's `module.` prefix, e.g. the released `audioset_10_10_0.4593.pth`.
- `timm-vit`: ImageNet ViT/DeiT weights in timm key names -> AST initialisation, as the original's
  `imagenet_pretrain=True` branch: patch projection summed over RGB, positional embedding cut/resized.
- `hf-ast`: `transformers.ASTForAudioClassification` checkpoints (legacy `encoder.layer.N.attention.attention.query`
  names as saved on the Hub, and the 5.x in-memory `layers.N.attention.q_proj` names).

Each is a pure `convert_<source>_state_dict(state_dict, config) -> dict` plus a builder in `BUILDERS`.
"""

from collections.abc import Mapping

import torch

from ..checkpoint import check_state_dict_keys
from .ast_state_dicts import (
    ast_config_from_transformers,
    convert_hf_ast_state_dict,
    convert_original_ast_state_dict,
    convert_timm_vit_state_dict,
    infer_source_grid,
    original_encoder_rules,
)
from .configuration_ast import ASTConfig
from .modeling_ast import ASTForAudioClassification

__all__ = [
    "BUILDERS",
    "CONFIG_READERS",
    "ast_config_from_transformers",
    "convert_hf_ast_state_dict",
    "convert_original_ast_state_dict",
    "convert_timm_vit_state_dict",
    "infer_source_grid",
    "original_encoder_rules",
]


def _load_strictly(
    model: ASTForAudioClassification, converted: dict[str, torch.Tensor], unknown: list[str], source: str
):
    expected = model.state_dict()
    check_state_dict_keys(converted, expected, unknown, source=source)
    model.load_state_dict(converted, strict=True)
    return model.eval()


def _builder(convert_fn, source: str):
    def build(state_dict: Mapping[str, torch.Tensor], config: ASTConfig | None) -> ASTForAudioClassification:
        converted, config = convert_fn(state_dict, config)
        model = ASTForAudioClassification(config)
        if convert_fn is convert_timm_vit_state_dict:  # the classification head is new: keep its initialisation
            for key, value in model.state_dict().items():
                if key.startswith("classifier."):
                    converted.setdefault(key, value)
        return _load_strictly(model, converted, [], source)

    return build


# sources whose checkpoint directory carries a config this package can translate
CONFIG_READERS = {"hf-ast": ast_config_from_transformers}

BUILDERS = {
    "original-ast": _builder(convert_original_ast_state_dict, "original AST checkpoint"),
    "timm-vit": _builder(convert_timm_vit_state_dict, "timm ViT checkpoint"),
    "hf-ast": _builder(convert_hf_ast_state_dict, "transformers AST checkpoint"),
}
