"""Configuration of the Audio Spectrogram Transformer (AST).

Paper: Gong, Chung and Glass, "AST: Audio Spectrogram Transformer", Interspeech 2021.
Original code: https://github.com/YuanGongND/ast (`src/models/ast_models.py`).
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..configuration_utils import ConsistentLabelsMixin, PackagePipelineMixin

__all__ = ["ASTConfig"]


@strict
class ASTConfig(ConsistentLabelsMixin, PackagePipelineMixin, PreTrainedConfig):
    r"""Configuration of [`ASTModel`] and [`ASTForAudioClassification`].

    The defaults give the released AudioSet model (DeiT-base backbone, 10×10 patch stride on
    1024 frames × 128 mel bins, 12×101 = 1212 patches, 527 labels when `num_labels=527`).

    Args:
        hidden_size (`int`, defaults to 768): width D of every token.
        num_hidden_layers (`int`, defaults to 12): number of transformer blocks.
        num_attention_heads (`int`, defaults to 12): heads per block; `hidden_size` must divide by it.
        intermediate_size (`int`, defaults to 3072): hidden width of the block MLP (4·D in DeiT).
        hidden_act (`str`, defaults to `"gelu"`): MLP activation; the original uses exact (erf) GELU.
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after attention and MLP (training only).
        attention_probs_dropout_prob (`float`, defaults to 0.0): dropout on attention weights.
        drop_path_rate (`float`, defaults to 0.0): stochastic depth, linearly increasing over blocks as in timm.
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal weight initialisation.
        layer_norm_eps (`float`, defaults to 1e-6): eps of every backbone LayerNorm (timm DeiT uses 1e-6).
        classifier_layer_norm_eps (`float`, defaults to 1e-5): eps of the head LayerNorm; the original's
            `mlp_head` LayerNorm keeps torch's default 1e-5 (`transformers`' port uses 1e-12 for both).
        patch_size (`int` or `tuple[int, int]`, defaults to 16): patch height (frequency) and width (time);
            an int means a square patch. SSAST frame patches are `(128, 2)`.
        frequency_stride (`int`, defaults to 10): patch stride along the mel axis.
        time_stride (`int`, defaults to 10): patch stride along the time axis.
        max_length (`int`, defaults to 1024): number of input frames the positional embedding is built for.
        num_mel_bins (`int`, defaults to 128): number of mel bins of the input features.
        num_prefix_tokens (`int`, defaults to 2): learned tokens before the patches: 2 for the DeiT
            cls + distillation tokens, 1 for a plain ViT / SSAST "base_nokd" backbone.
        qkv_bias (`bool`, defaults to True): whether query/key/value projections have a bias.
        pooling (`"cls"` or `"mean"`, defaults to `"cls"`): what the classifier sees: the mean of the prefix
            tokens (`"cls"`; AST and SSAST `ft_cls`) or the mean of the patch tokens (`"mean"`; SSAST `ft_avgtok`).
    """

    model_type = "ast"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-6
    classifier_layer_norm_eps: float = 1e-5
    patch_size: int | list[int] | tuple[int, int] = 16
    frequency_stride: int = 10
    time_stride: int = 10
    max_length: int = 1024
    num_mel_bins: int = 128
    num_prefix_tokens: int = 2
    qkv_bias: bool = True
    pooling: Literal["cls", "mean"] = "cls"

    @property
    def frequency_patch_size(self) -> int:
        return self.patch_size if isinstance(self.patch_size, int) else int(self.patch_size[0])

    @property
    def time_patch_size(self) -> int:
        return self.patch_size if isinstance(self.patch_size, int) else int(self.patch_size[1])

    @property
    def patch_grid(self) -> tuple[int, int]:
        """(frequency, time) number of patches: valid convolutions, so trailing frames that do not fill a patch drop."""
        return (
            (self.num_mel_bins - self.frequency_patch_size) // self.frequency_stride + 1,
            (self.max_length - self.time_patch_size) // self.time_stride + 1,
        )

    @property
    def num_patches(self) -> int:
        frequency_patches, time_patches = self.patch_grid
        return frequency_patches * time_patches

    def validate_architecture(self) -> None:
        """Cross-field checks that would otherwise surface as shape errors deep inside torch."""
        super().validate_architecture()
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads ({self.num_attention_heads})"
            )
        if not isinstance(self.patch_size, int) and len(self.patch_size) != 2:
            raise ValueError(f"patch_size must be an int or (frequency, time), got {self.patch_size}")
        if self.frequency_patch_size > self.num_mel_bins:
            raise ValueError(
                f"patch_size {self.frequency_patch_size} along frequency exceeds num_mel_bins ({self.num_mel_bins})"
            )
        if self.time_patch_size > self.max_length:
            raise ValueError(f"patch_size {self.time_patch_size} along time exceeds max_length ({self.max_length})")
        if min(self.frequency_stride, self.time_stride) < 1:
            raise ValueError("frequency_stride and time_stride must be >= 1")
        if self.num_prefix_tokens not in (1, 2):
            raise ValueError(
                f"num_prefix_tokens must be 1 (cls) or 2 (cls + distillation), got {self.num_prefix_tokens}"
            )
