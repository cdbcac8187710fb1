"""Self-Supervised Audio Spectrogram Transformer (SSAST): masked spectrogram patch modeling and fine-tuning.

Paper: Gong, Lai, Chung and Glass, "SSAST: Self-Supervised Audio Spectrogram Transformer", AAAI 2022.
Original code: https://github.com/YuanGongND/ssast (`src/models/ast_models.py`).

The encoder is AST's (`modeling/ast`). Pre-training masks patch tokens after the patch projection
(replacing them by a learned mask embedding before positions are added) and trains two heads on the
encoder outputs at the masked positions, against the raw input patches:
- discriminative: InfoNCE between predicted and true patches, negatives from the same clip's masked patches;
- generative: mean squared error of the reconstructed patches.

Unlike the original, which loops over the batch three times per objective (mask blend, target gathering,
InfoNCE), everything here is batched (`torch.where`, `gather`, `bmm`); the masks and patch targets live in
`masking.py` (seedable `torch.Generator` instead of Python's global `random`).
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import initialization as init
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from ..ast.ast_state_dicts import adapt_state_dict_geometry
from ..ast.modeling_ast import ASTClassificationHead, ASTModel, ASTPreTrainedModel
from ..layers import AudioClassificationMixin, check_input_values
from ..linear import Linear
from .configuration_ssast import SSASTConfig
from .masking import (
    bool_mask_to_indices,
    check_mask_indices,
    cluster_mask_indices,
    gather_patches,
    patchify_spectrogram,
    random_mask_indices,
    unpatchify_spectrogram,
)

__all__ = [
    "SSASTForAudioClassification",
    "SSASTForPreTraining",
    "SSASTForPreTrainingOutput",
    "SSASTMaskVisualization",
    "SSASTModel",
    "SSASTPreTrainedModel",
    "SSASTPredictionHead",
    "adapt_ssast_state_dict_geometry",
    "masked_patch_info_nce",
]

# The original fine-tuning constructor resizes the time axis of the positional grid to (8, t) whatever the
# pre-training frequency rows were (8 for 16×16 patches on 128 mel bins). Kept for bit-exact parity.
ORIGINAL_TIME_INTERPOLATION_ROWS = 8
# value the original's `visualize_mask` paints masked patches with
_VISUALIZATION_MARK = 99.0

# ----------------------------------------------------------------------------------------------------------------
# the discriminative objective (masks and patch targets: `masking.py`)


def masked_patch_info_nce(predictions: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE and accuracy of the discriminative objective, batched; computed in float32 as the original.

    predictions, targets: (B, M, S). For each clip, scores[i, j] = target_i · prediction_j; the loss is the mean
    over clips and masked patches of −log_softmax(scores, dim=−1)[i, i] (negatives are the other masked patches
    of the same clip). Accuracy keeps the original's mixed convention: softmax over the last dim, then argmax over
    the targets (dim 0 of each clip's M×M matrix); a prediction is correct when that argmax is its own patch.
    """
    scores = torch.bmm(targets.float(), predictions.float().transpose(1, 2))  # (B, M, M)
    nce = -torch.log_softmax(scores, dim=-1).diagonal(dim1=1, dim2=2).mean()
    with torch.no_grad():
        picked = torch.softmax(scores, dim=-1).argmax(dim=1)  # (B, M): target chosen for each prediction
        own = torch.arange(scores.shape[-1], device=scores.device)
        accuracy = (picked == own).float().mean()
    return nce, accuracy


# ----------------------------------------------------------------------------------------------------------------
# geometry adaptation (pre-training -> fine-tuning)


def _is_pretraining_geometry(config: SSASTConfig) -> bool:
    return (config.frequency_stride, config.time_stride) == (config.frequency_patch_size, config.time_patch_size)


def adapt_ssast_state_dict_geometry(
    state_dict: dict[str, torch.Tensor], source_config: SSASTConfig, target_config: SSASTConfig
) -> dict[str, torch.Tensor]:
    """Resize positional embeddings from the source patch grid to the target one with SSAST's rules.

    From a pre-training geometry (stride = patch size), exactly as the original fine-tuning constructor:
    time first, a middle cut when the new time axis is shorter, else bilinear to (8, t) with the original's
    hard-coded 8 rows; then frequency, bilinear to (f, t) when f is not smaller. The original's frequency-cut
    branch slices t rows instead of f and crashes; here it does the evidently intended middle cut of f rows.
    From any other geometry (an already fine-tuned model) the hard-coded 8 would mix up frequency rows, so
    the time step keeps the current rows. The patch projection needs no change: its weights are re-used
    with the new stride, as the original does.
    """
    rows = ORIGINAL_TIME_INTERPOLATION_ROWS if _is_pretraining_geometry(source_config) else None
    return adapt_state_dict_geometry(
        state_dict, source_config, target_config, cut_when_equal=False, time_interpolation_rows=rows
    )


# ----------------------------------------------------------------------------------------------------------------
# models


class SSASTPreTrainedModel(ASTPreTrainedModel):
    """Weight initialisation and a `from_pretrained` that adapts pre-trained checkpoints to fine-tuning geometry.

    All SSAST models keep the encoder under `ssast.`, so any of them loads from a directory saved by any other:
    `SSASTForAudioClassification.from_pretrained(<saved SSASTForPreTraining>)` takes the encoder, drops the
    pre-training heads and mask embedding, and initialises the classifier (both are logged).
    """

    config_class = SSASTConfig
    config: SSASTConfig
    base_model_prefix = "ssast"
    _no_split_modules = ["ASTEmbeddings", "ASTLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SSASTForPreTraining):
            # the original draws its mask embedding with Xavier-normal (BEiT-style learned mask token)
            init.xavier_normal_(module.mask_embedding)

    @classmethod
    def _adapt_checkpoint(cls, state_dict: dict[str, torch.Tensor], saved_config: SSASTConfig, config: SSASTConfig):
        """`ssast_checkpoint_filter`: original or saved layouts (fused `qkv` included) in this package's names, and
        SSAST's resizing rules, exactly as the original fine-tuning constructor from a pre-training checkpoint; the
        pre-training input size is recorded in `pretraining_num_mel_bins` / `pretraining_max_length` of the new
        config."""
        from .convert_ssast import ssast_checkpoint_filter

        if _is_pretraining_geometry(saved_config) and config.pretraining_max_length is None:
            if saved_config.patch_grid != config.patch_grid:
                config.pretraining_num_mel_bins, config.pretraining_max_length = saved_config.pretraining_input_size
        return ssast_checkpoint_filter(state_dict, config, saved_config)


class SSASTModel(SSASTPreTrainedModel, ASTModel):
    """SSAST encoder (AST's): input `input_values` (B, frames, mel); outputs `last_hidden_state`
    (B, prefix + F·T, D) and `pooler_output` (B, D), the mean of the patch tokens by default (`pooling="mean"`).
    """


class SSASTPredictionHead(nn.Module):
    """Pre-training head (the original `cpredlayer` / `gpredlayer`): Linear(D, D), ReLU, Linear(D, prediction_size)."""

    def __init__(self, config: SSASTConfig):
        super().__init__()
        self.fc1 = Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.ReLU()
        self.fc2 = Linear(config.hidden_size, config.prediction_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(hidden_states)))  # (B, M, prediction_size)


@dataclass
class SSASTForPreTrainingOutput(ModelOutput):
    """Output of [`SSASTForPreTraining`].

    Args:
        loss: `nce_weight · nce_loss + mse_weight · mse_loss` (objectives with weight 0 are skipped).
        nce_loss: discriminative InfoNCE loss (scalar).
        mse_loss: generative reconstruction loss (scalar).
        accuracy: fraction of masked patches the discriminative head picks out correctly (scalar, no gradient).
        discriminative_predictions: (B, M, prediction_size) discriminative-head outputs at the masked patches,
            in `mask_indices` order.
        generative_predictions: (B, M, prediction_size) reconstructions, in `generative_mask_indices` order.
        mask_indices: (B, M) masked patch ids of the discriminative objective (or of the only one that runs).
        generative_mask_indices: (B, M) masked patch ids of the generative objective.
        last_hidden_state: (B, prefix + P, D) encoder output of the pass `mask_indices` was applied to.
        generative_last_hidden_state: (B, prefix + P, D) encoder output the generative head read (the same
            tensor as `last_hidden_state` when one mask serves both objectives).
        hidden_states, attentions: per layer, of the pass `mask_indices` was applied to.
    """

    loss: torch.Tensor | None = None
    nce_loss: torch.Tensor | None = None
    mse_loss: torch.Tensor | None = None
    accuracy: torch.Tensor | None = None
    discriminative_predictions: torch.Tensor | None = None
    generative_predictions: torch.Tensor | None = None
    mask_indices: torch.Tensor | None = None
    generative_mask_indices: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    generative_last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class SSASTMaskVisualization(ModelOutput):
    """Output of [`SSASTForPreTraining.visualize_mask`] (the original's `visualize_mask` task, any batch size).

    Args:
        correct_map: (B, 1, mel, frames) the input with each masked patch set to 99 where the discriminative head
            identified it and 0 where it did not (the original's `pred`).
        masked_map: (B, 1, mel, frames) the input with every masked patch set to 99 (the original's `masked`).
        mask_indices: (B, M) masked patch ids.
        correct: (B, M) whether each masked patch was identified.
        discriminative_predictions: (B, M, prediction_size).
    """

    correct_map: torch.Tensor | None = None
    masked_map: torch.Tensor | None = None
    mask_indices: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    discriminative_predictions: torch.Tensor | None = None


class SSASTForPreTraining(SSASTPreTrainedModel):
    """SSAST with the masked spectrogram patch modeling heads (joint discriminative and generative objective).

    `forward(input_values)` draws masks itself (cluster masking for patches, uniform for frames; pass a seeded
    `torch.Generator` for reproducible masks) or takes them (`mask_indices` / `bool_masked_pos`), and returns
    the losses, the masked-patch accuracy and the predictions. The input must have `config.max_length` frames.
    """

    # the loss is a per-batch mean: let Trainer scale it for gradient accumulation
    accepts_loss_kwargs = False

    def __init__(self, config: SSASTConfig):
        errors = config.pretraining_errors()
        if errors:
            raise ValueError("config cannot be used for SSAST pre-training: " + "; ".join(errors))
        super().__init__(config)
        self.ssast = SSASTModel(config)
        self.mask_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.discriminative_head = SSASTPredictionHead(config)  # original `cpredlayer`
        self.generative_head = SSASTPredictionHead(config)  # original `gpredlayer`
        self.post_init()

    def draw_mask_indices(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, num_masked_patches) ids drawn with the config's masking strategy."""
        config = self.config
        if config.mask_strategy == "cluster":
            return cluster_mask_indices(
                batch_size,
                config.patch_grid,
                config.num_masked_patches,
                tuple(config.mask_cluster_size_range),
                generator,
            )
        return random_mask_indices(batch_size, config.num_patches, config.num_masked_patches, generator)

    def _check_input(self, input_values: torch.Tensor) -> torch.Tensor:
        input_values = check_input_values(input_values, self.config.num_mel_bins, dtype=self.dtype)
        if self.ssast.embeddings.patch_grid_of(input_values.shape[1]) != self.config.patch_grid:
            raise ValueError(
                f"pre-training input must have max_length={self.config.max_length} frames (patch grid "
                f"{self.config.patch_grid}), got {input_values.shape[1]}; pad or cut the features to max_length"
            )
        return input_values

    def _resolve_masks(
        self,
        batch_size: int,
        mask_indices: torch.Tensor | None,
        generative_mask_indices: torch.Tensor | None,
        bool_masked_pos: torch.Tensor | None,
        generator: torch.Generator | None,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(discriminative, generative) mask ids; the same tensor object when one mask serves both objectives."""
        num_patches = self.config.num_patches
        if bool_masked_pos is not None:
            if mask_indices is not None:
                raise ValueError("pass either mask_indices or bool_masked_pos, not both")
            mask_indices = bool_mask_to_indices(bool_masked_pos, batch_size, num_patches)
        if mask_indices is not None:
            mask_indices = check_mask_indices(mask_indices, batch_size, num_patches, "mask_indices").to(device)
            if generative_mask_indices is None:
                return mask_indices, mask_indices
            generative = check_mask_indices(
                generative_mask_indices, batch_size, num_patches, "generative_mask_indices"
            )
            return mask_indices, generative.to(device)
        if generative_mask_indices is not None:
            raise ValueError("generative_mask_indices needs mask_indices (or bool_masked_pos) as well")
        first = self.draw_mask_indices(batch_size, generator).to(device)
        both = self.config.nce_weight > 0 and self.config.mse_weight > 0
        if both and self.config.joint_masking == "separate":
            return first, self.draw_mask_indices(batch_size, generator).to(device)
        return first, first

    def _encode_masked(
        self,
        input_values: torch.Tensor,
        masks: list[torch.Tensor],
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ):
        """Run the encoder once on len(masks) masked copies of the batch stacked along the batch dimension."""
        batch_size, num_frames = input_values.shape[:2]
        patch_tokens = self.ssast.embeddings.embed_patches(input_values)  # (B, P, D)
        copies = len(masks)
        tokens = patch_tokens.repeat(copies, 1, 1)  # (copies·B, P, D)
        is_masked = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)  # (copies·B, P)
        for index, mask in enumerate(masks):
            is_masked[index * batch_size : (index + 1) * batch_size].scatter_(1, mask, True)
        # the original's exact 0/1 blend x·keep + (1 − keep)·mask_embed, as a select
        tokens = torch.where(is_masked.unsqueeze(-1), self.mask_embedding.to(tokens.dtype), tokens)
        embeddings = self.ssast.embeddings.add_prefix_and_positions(tokens, num_frames)
        flags = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        return self.ssast.encode(
            embeddings, return_dict=True, **{name: flag for name, flag in flags.items() if flag is not None}
        )

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        mask_indices: torch.Tensor | None = None,
        generative_mask_indices: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> SSASTForPreTrainingOutput | tuple:
        r"""
        Args:
            input_values: (B, max_length, num_mel_bins) normalised features.
            mask_indices: (B, M) distinct patch ids to mask (frequency-major ids, f·T + t), used by the
                discriminative objective and, unless `generative_mask_indices` is given, by the generative one.
                Drawn with `config.masking` when omitted.
            generative_mask_indices: (B, M') ids for the generative objective only.
            bool_masked_pos: (B, P) boolean alternative to `mask_indices` (same count in every row).
            generator: `torch.Generator` for the masks drawn here (CPU or the generator's device).
        """
        config = self.config
        input_values = self._check_input(input_values)
        batch_size = input_values.shape[0]
        discriminative_mask, generative_mask = self._resolve_masks(
            batch_size, mask_indices, generative_mask_indices, bool_masked_pos, generator, input_values.device
        )
        run_nce, run_mse = config.nce_weight > 0, config.mse_weight > 0
        masks = [discriminative_mask] if run_nce else []
        if run_mse and not (run_nce and generative_mask is discriminative_mask):
            masks.append(generative_mask)

        encoded = self._encode_masked(input_values, masks, output_attentions, output_hidden_states)
        passes = encoded.last_hidden_state.split(batch_size)  # copies × (B, prefix + P, D)
        targets = patchify_spectrogram(
            input_values, (config.frequency_patch_size, config.time_patch_size)
        )  # (B, P, S)
        prefix = config.num_prefix_tokens

        loss = nce_loss = mse_loss = accuracy = discriminative_predictions = generative_predictions = None
        if run_nce:
            discriminative_predictions = self.discriminative_head(
                gather_patches(passes[0], discriminative_mask + prefix)
            )
            nce_loss, accuracy = masked_patch_info_nce(
                discriminative_predictions, gather_patches(targets, discriminative_mask)
            )
            loss = config.nce_weight * nce_loss
        if run_mse:
            generative_predictions = self.generative_head(gather_patches(passes[-1], generative_mask + prefix))
            mse_loss = torch.mean(
                (generative_predictions.float() - gather_patches(targets, generative_mask).float()) ** 2
            )
            loss = config.mse_weight * mse_loss if loss is None else loss + config.mse_weight * mse_loss

        def first_pass(values: tuple[torch.Tensor, ...] | None):
            return None if values is None else tuple(value[:batch_size] for value in values)

        # hidden states and attentions of the masked pass(es) are recorded by `capture_outputs` inside `encode`
        return SSASTForPreTrainingOutput(
            loss=loss,
            nce_loss=nce_loss,
            mse_loss=mse_loss,
            accuracy=accuracy,
            discriminative_predictions=discriminative_predictions,
            generative_predictions=generative_predictions,
            mask_indices=discriminative_mask if run_nce else generative_mask,
            generative_mask_indices=generative_mask if run_mse else None,
            last_hidden_state=passes[0],
            generative_last_hidden_state=passes[-1] if run_mse else None,
            hidden_states=first_pass(encoded.hidden_states),
            attentions=first_pass(encoded.attentions),
        )

    @torch.no_grad()
    def visualize_mask(
        self,
        input_values: torch.Tensor,
        mask_indices: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> SSASTMaskVisualization:
        """Which masked patches the discriminative head identifies, painted onto the input (any batch size).

        The original `visualize_mask` task, without its side effect (it registered a new Parameter on the model).
        """
        input_values = self._check_input(input_values)
        batch_size = input_values.shape[0]
        if mask_indices is None:
            mask_indices = self.draw_mask_indices(batch_size, generator).to(input_values.device)
        else:
            mask_indices = check_mask_indices(mask_indices, batch_size, self.config.num_patches, "mask_indices")
            mask_indices = mask_indices.to(input_values.device)
        hidden = self._encode_masked(input_values, [mask_indices]).last_hidden_state
        predictions = self.discriminative_head(gather_patches(hidden, mask_indices + self.config.num_prefix_tokens))
        patch_size = (self.config.frequency_patch_size, self.config.time_patch_size)
        patches = patchify_spectrogram(input_values, patch_size)  # (B, P, S)
        scores = torch.bmm(gather_patches(patches, mask_indices).float(), predictions.float().transpose(1, 2))
        correct = torch.softmax(scores, dim=-1).argmax(dim=1) == torch.arange(scores.shape[-1], device=scores.device)
        index = mask_indices.unsqueeze(-1).expand(-1, -1, patches.shape[-1])
        marks = (correct.to(patches.dtype) * _VISUALIZATION_MARK).unsqueeze(-1).expand(-1, -1, patches.shape[-1])
        input_size = (input_values.shape[2], input_values.shape[1])
        return SSASTMaskVisualization(
            correct_map=unpatchify_spectrogram(patches.scatter(1, index, marks), patch_size, input_size),
            masked_map=unpatchify_spectrogram(patches.scatter(1, index, _VISUALIZATION_MARK), patch_size, input_size),
            mask_indices=mask_indices,
            correct=correct,
            discriminative_predictions=predictions,
        )


class SSASTForAudioClassification(AudioClassificationMixin, SSASTPreTrainedModel):
    """SSAST with the classification head (the original `mlp_head`: LayerNorm eps 1e-5, Linear).

    Returns pre-activation `logits` (B, num_labels); the pooled vector is the mean of the patch tokens
    (`pooling="mean"`, original `ft_avgtok`) or of the prefix tokens (`pooling="cls"`, original `ft_cls`).
    The loss (when `labels` are given) follows `config.problem_type`: cross-entropy for single-label,
    BCE-with-logits for `"multi_label_classification"`.
    """

    def __init__(self, config: SSASTConfig):
        super().__init__(config)
        self.ssast = SSASTModel(config)
        self.classifier = ASTClassificationHead(config)
        self.post_init()
