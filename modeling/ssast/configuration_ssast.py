"""Configuration of the Self-Supervised Audio Spectrogram Transformer (SSAST).

Paper: Gong, Lai, Chung and Glass, "SSAST: Self-Supervised Audio Spectrogram Transformer", AAAI 2022.
Original code: https://github.com/YuanGongND/ssast (`src/models/ast_models.py`).

A fine-tuned SSAST is an AST with other patch shapes and pooling, so `SSASTConfig` extends `ASTConfig`
with the settings of masked spectrogram patch modeling (the pre-training task).
"""

from typing import Literal

from huggingface_hub.dataclasses import strict

from ..ast.configuration_ast import ASTConfig

__all__ = ["SSASTConfig"]


@strict
class SSASTConfig(ASTConfig):
    r"""Configuration of [`SSASTModel`], [`SSASTForPreTraining`] and [`SSASTForAudioClassification`].

    The defaults give the released SSAST-Base-Patch-400 pre-training geometry: DeiT-base width, 16×16
    patches with stride 16 (no overlap, as pre-training requires) on 1024 frames × 128 mel bins, 8×64 = 512
    patches, 400 of them masked. Frame models use `patch_size=(128, 2)` and strides (128, 2). Fine-tuning
    configs change the strides (the paper uses 10 for patches, time stride 1 for frames) and `max_length`;
    `SSASTForAudioClassification.from_pretrained` adapts the pre-trained weights to them.

    All fields of [`ASTConfig`] apply. The ones whose defaults differ:
        patch_size (`int` or `tuple[int, int]`, defaults to 16): (frequency, time) patch size.
        frequency_stride (`int`, defaults to 16), time_stride (`int`, defaults to 16): patch strides; must equal
            the patch size for pre-training (masking and targets assume non-overlapping patches).
        pooling (`"mean"` or `"cls"`, defaults to `"mean"`): clip representation for classification: the mean of
            the patch tokens (original `ft_avgtok`, SSAST's default because pre-training supervises every patch
            token and no prefix token) or the mean of the prefix tokens (original `ft_cls`).

    Args:
        num_masked_patches (`int`, defaults to 400): patches masked per clip in pre-training (the paper's 400 of
            512; the released "-250" models used 250). Every clip gets exactly this many.
        masking (`"auto"`, `"cluster"` or `"random"`, defaults to `"auto"`): how masked patches are drawn.
            `"cluster"` masks square groups of neighbouring patches (the original `gen_maskid_patch`), `"random"`
            samples patches uniformly (`gen_maskid_frame`). `"auto"` does what the original training script does:
            cluster unless the patch spans every mel bin (frame patches), where clustering hurt.
        mask_cluster_size_range (`tuple[int, int]`, defaults to `(3, 5)`): inclusive range of the cluster side;
            one side is drawn per clip (the original draws `randrange(3) + 3` per call, i.e. per clip).
        nce_weight (`float`, defaults to 1.0): weight of the discriminative (InfoNCE) loss; 0 skips it.
        mse_weight (`float`, defaults to 10.0): weight of the generative (MSE reconstruction) loss; 0 skips it.
            The paper's joint objective is `nce + 10 · mse`.
        joint_masking (`"separate"` or `"shared"`, defaults to `"separate"`): with both objectives on, the original
            (`pretrain_joint` in `traintest_mask.py`) runs the model twice per step, each objective on its own
            independently masked copy. `"separate"` reproduces that (both copies go through the encoder as one
            batch of 2·B); `"shared"` masks once and feeds one encoder pass to both heads, half the compute.
        prediction_size (`int`, defaults to 256): output width of the two pre-training heads. They predict raw
            input patches, so it must equal the number of spectrogram bins in a patch (16·16 = 128·2 = 256);
            the original hard-codes 256.
        pretraining_num_mel_bins (`int`, *optional*), pretraining_max_length (`int`, *optional*): input size the
            encoder was pre-trained on (the original's `p_input_fdim` / `p_input_tdim`), recorded when a
            pre-trained checkpoint is adapted to a fine-tuning geometry. `None` means this config's own
            `num_mel_bins` / `max_length`.
    """

    model_type = "ssast"

    patch_size: int | list[int] | tuple[int, int] = 16
    frequency_stride: int = 16
    time_stride: int = 16
    pooling: Literal["cls", "mean"] = "mean"

    num_masked_patches: int = 400
    masking: Literal["auto", "cluster", "random"] = "auto"
    mask_cluster_size_range: list[int] | tuple[int, int] = (3, 5)
    nce_weight: float | int = 1.0
    mse_weight: float | int = 10.0
    joint_masking: Literal["separate", "shared"] = "separate"
    prediction_size: int = 256
    pretraining_num_mel_bins: int | None = None
    pretraining_max_length: int | None = None

    @property
    def mask_strategy(self) -> Literal["cluster", "random"]:
        """The masking actually used: `"auto"` resolved as the original training script does."""
        if self.masking != "auto":
            return self.masking
        return "random" if self.frequency_patch_size == self.num_mel_bins else "cluster"

    @property
    def pretraining_input_size(self) -> tuple[int, int]:
        """(mel bins, frames) of the pre-training input."""
        return (
            self.num_mel_bins if self.pretraining_num_mel_bins is None else self.pretraining_num_mel_bins,
            self.max_length if self.pretraining_max_length is None else self.pretraining_max_length,
        )

    def validate_architecture(self) -> None:
        super().validate_architecture()
        cluster_range = tuple(self.mask_cluster_size_range)
        if len(cluster_range) != 2 or not 1 <= cluster_range[0] <= cluster_range[1]:
            raise ValueError(
                f"mask_cluster_size_range must be (low, high) with 1 <= low <= high, got {self.mask_cluster_size_range}"
            )
        if self.num_masked_patches < 1:
            raise ValueError(f"num_masked_patches must be >= 1, got {self.num_masked_patches}")
        if self.nce_weight < 0 or self.mse_weight < 0 or self.nce_weight + self.mse_weight == 0:
            raise ValueError(
                f"nce_weight ({self.nce_weight}) and mse_weight ({self.mse_weight}) must be >= 0 and not both 0"
            )
        if (self.pretraining_num_mel_bins is None) != (self.pretraining_max_length is None):
            raise ValueError("set both pretraining_num_mel_bins and pretraining_max_length, or neither")

    def pretraining_errors(self) -> list[str]:
        """Why this config cannot be pre-trained (empty when it can); `SSASTForPreTraining` raises on any.

        These are not part of the always-run validation: a fine-tuning config legitimately has overlapping
        strides, a short input with fewer patches than `num_masked_patches`, or a patch of another size.
        """
        errors = []
        patch = (self.frequency_patch_size, self.time_patch_size)
        if (self.frequency_stride, self.time_stride) != patch:
            errors.append(
                f"pre-training needs non-overlapping patches: strides ({self.frequency_stride}, {self.time_stride}) "
                f"must equal patch_size {patch}"
            )
        if patch[0] * patch[1] != self.prediction_size:
            errors.append(
                f"the pre-training heads predict raw patches of {patch[0]}×{patch[1]} = {patch[0] * patch[1]} bins, "
                f"but prediction_size is {self.prediction_size}; set prediction_size={patch[0] * patch[1]} "
                "(the original only supports 256-bin patches)"
            )
        if self.pretraining_input_size != (self.num_mel_bins, self.max_length):
            errors.append(
                f"pretraining_num_mel_bins/pretraining_max_length {self.pretraining_input_size} differ from "
                f"num_mel_bins/max_length ({self.num_mel_bins}, {self.max_length}): this config was adapted for fine-tuning"
            )
        num_patches = self.num_patches
        # cluster masking never masks patch 0 and stops only once MORE than num_masked_patches ids are collected
        limit = num_patches - 2 if self.mask_strategy == "cluster" else num_patches
        if self.num_masked_patches > limit:
            errors.append(
                f"num_masked_patches ({self.num_masked_patches}) must be at most {limit} for {self.mask_strategy} masking "
                f"of {num_patches} patches (patch grid {self.patch_grid})"
            )
        return errors
