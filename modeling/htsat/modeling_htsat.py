"""HTS-AT, the Hierarchical Token-Semantic Audio Transformer.

Paper: Chen, Du, Zhu, Ma, Berg-Kirkpatrick and Dubnov, "HTS-AT: A Hierarchical Token-Semantic Audio
Transformer for Sound Classification and Detection", ICASSP 2022.
Original code: https://github.com/RetroCirce/HTS-Audio-Transformer (`model/htsat.py`), a Swin Transformer
on a log-mel spectrogram folded into a square image, with a token-semantic CNN head that gives frame-level
(sound-event detection) logits as well as clip-level ones.

The models take log-mel features (B, frames, mel); the STFT/mel front end is `HTSATFeatureExtractor`. The
mel-bin BatchNorm (`bn0`) *is* part of the model, as in the original, since its statistics are learned.
SpecAugment and mixup are training code (`spectrogram_transformers.training`), not part of the model.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs
from transformers.utils.generic import can_return_tuple
from transformers.utils.output_capturing import capture_outputs

from ..layers import DropPath, check_input_values, check_labels, eager_attention_forward
from ..linear import Linear, linear_then_activation
from ..loading import CheckedLoadingMixin
from ..remote_code import RemoteCodeMixin
from .configuration_htsat import HTSATConfig

__all__ = [
    "HTSATAudioClassifierOutput",
    "HTSATEmbeddings",
    "HTSATEncoder",
    "HTSATForAudioClassification",
    "HTSATLayer",
    "HTSATLinearHead",
    "HTSATModel",
    "HTSATPatchMerging",
    "HTSATPreTrainedModel",
    "HTSATStage",
    "HTSATTokenSemanticHead",
    "HTSATWindowAttention",
    "crop_long_spectrogram",
    "fold_time_into_image",
    "logit_of_mean_probability",
    "regroup_tokens_by_time",
    "relative_position_index",
    "shifted_window_mask",
    "stretch_time_axis",
    "tile_short_spectrogram",
    "window_partition",
    "window_token_order",
]

# additive mask between tokens of different regions after the cyclic shift: the original's -100, not -inf
# (softmax weights of e^-100 are not exactly 0, and parity needs the same value)
SHIFT_MASK_VALUE = -100.0


# ---------------------------------------------------------------------------------------------------------------
# shape surgery, each step of the original as a named function
# ---------------------------------------------------------------------------------------------------------------


def tile_short_spectrogram(spectrogram: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The original `infer_mode`: repeat a (B, T, mel) spectrogram floor(num_frames / T) times along time."""
    repeats = num_frames // spectrogram.shape[1]
    if repeats <= 1:
        return spectrogram
    return spectrogram.repeat(1, repeats, 1)  # (B, repeats·T, mel)


def crop_long_spectrogram(spectrogram: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The original's evaluation crops of a (B, T, mel) spectrogram longer than `num_frames`: (crops, B, size, mel).

    Crops are (T - 1) // 2 frames long and start every (T - 1) // 4 frames, at positions
    `range(0, T - size - 1, hop)` exactly as the original iterates (so the last possible crop may be skipped).
    """
    frames = spectrogram.shape[1]
    size, hop = (frames - 1) // 2, (frames - 1) // 4
    if size > num_frames:
        raise ValueError(
            f"input has {frames} frames; the original's evaluation crops ((frames - 1) // 2 = {size} frames) only fit "
            f"the model's {num_frames} frames for inputs up to {2 * num_frames + 2} frames. Split longer audio into "
            "windows (spectrogram_transformers.detection.detect_file does) and run them separately."
        )
    starts = range(0, frames - size - 1, hop)
    return torch.stack([spectrogram[:, start : start + size] for start in starts])  # (crops, B, size, mel)


def stretch_time_axis(spectrogram: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Bicubic (align_corners=True) stretch of a (B, T ≤ num_frames, mel) spectrogram to (B, num_frames, mel).

    Done on the (B, 1, T, mel) image with the mel size kept, exactly as the original: with align_corners the
    mel axis is sampled at its own integer positions, an identity.
    """
    batch_size, frames, mel_bins = spectrogram.shape
    if frames == num_frames:
        return spectrogram
    image = spectrogram.unsqueeze(1)  # (B, 1, T, mel)
    image = nn.functional.interpolate(image, size=(num_frames, mel_bins), mode="bicubic", align_corners=True)
    return image.squeeze(1)  # (B, num_frames, mel)


def fold_time_into_image(spectrogram: torch.Tensor, freq_ratio: int) -> torch.Tensor:
    """(B, num_frames, mel) -> (B, 1, freq_ratio·mel, num_frames // freq_ratio): the original `reshape_wav2img`.

    Time is cut into `freq_ratio` chunks stacked along the image height:
    image[c·mel + m, t] = spectrogram[c·chunk + t, m], so rows are chunk-major then mel, columns time in the chunk.
    """
    batch_size, frames, mel_bins = spectrogram.shape
    chunk = frames // freq_ratio
    image = spectrogram.reshape(batch_size, freq_ratio, chunk, mel_bins)  # (B, chunks, t, mel)
    image = image.permute(0, 1, 3, 2)  # (B, chunks, mel, t)
    return image.reshape(batch_size, 1, freq_ratio * mel_bins, chunk)  # (B, 1, chunks·mel, t)


def window_partition(hidden_states: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, windows, window², C), windows in row-major order of the window grid."""
    batch_size, height, width, channels = hidden_states.shape
    grid = hidden_states.view(batch_size, height // window, window, width // window, window, channels)
    grid = grid.permute(0, 1, 3, 2, 4, 5)  # (B, H/w, W/w, w, w, C)
    return grid.reshape(batch_size, (height // window) * (width // window), window * window, channels)


def window_token_order(resolution: tuple[int, int], window: int, shift: int) -> torch.Tensor:
    """(2, H·W) int64 permutations of the row-major tokens: [order, inverse].

    `order` lists, for each position of the windowed sequence, the token it holds: after the cyclic shift of
    the grid by (-shift, -shift), windows in row-major order and tokens row-major inside each window, i.e.
    `window_partition(torch.roll(grid, (-shift, -shift)))`. `inverse` puts every token back, undoing the shift.
    One `index_select` with each replaces the roll, the window partition and their inverses (several copies).
    """
    height, width = resolution
    grid = torch.arange(height * width).view(1, height, width, 1)
    if shift:
        grid = torch.roll(grid, shifts=(-shift, -shift), dims=(1, 2))
    order = window_partition(grid, window).reshape(-1)  # (H·W,)
    return torch.stack([order, torch.argsort(order)])


def relative_position_index(window: int) -> torch.Tensor:
    """(window², window²) index into the ((2·window - 1)², heads) bias table, for every query/key pair of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (N, N, 2): (Δrow, Δcol)
    relative = relative + (window - 1)  # both offsets from 0 to 2·window - 2
    return relative[:, :, 0] * (2 * window - 1) + relative[:, :, 1]  # (N, N)


def shifted_window_mask(resolution: tuple[int, int], window: int, shift: int) -> torch.Tensor:
    """(windows, window², window²) additive mask of the shifted-window blocks: 0 within a region, -100 across.

    After the cyclic shift by `shift`, windows on the bottom/right border hold tokens from up to 3×3 regions that
    were not neighbours in the image; attention between different regions is masked.
    """
    height, width = resolution

    def regions(size: int) -> torch.Tensor:  # 0, 1, 2 for [0, size - window), [size - window, size - shift), rest
        index = torch.arange(size)
        return (index >= size - window).long() + (index >= size - shift).long()

    region_map = (regions(height)[:, None] * 3 + regions(width)[None, :]).float()  # (H, W)
    region_windows = window_partition(region_map[None, :, :, None], window)[0, :, :, 0]  # (windows, N)
    different = region_windows[:, None, :] != region_windows[:, :, None]  # (windows, N, N)
    return torch.zeros(different.shape).masked_fill(different, SHIFT_MASK_VALUE)


def regroup_tokens_by_time(tokens: torch.Tensor, resolution: tuple[int, int], freq_ratio: int) -> torch.Tensor:
    """Final tokens (B, rows·cols, C) -> (B, C, rows / chunks, chunks·cols): time chunks laid side by side again.

    The image stacked `freq_ratio` time chunks along its height; the final token rows are regrouped so that the
    last axis is time in order (chunk-major) and the middle axis frequency within one chunk.
    """
    batch_size, _, channels = tokens.shape
    rows, columns = resolution
    grid = tokens.transpose(1, 2).reshape(batch_size, channels, freq_ratio, rows // freq_ratio, columns)
    grid = grid.permute(0, 1, 3, 2, 4)  # (B, C, rows/chunks, chunks, cols)
    return grid.reshape(batch_size, channels, rows // freq_ratio, freq_ratio * columns)


def logit_of_mean_probability(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """logit(mean(sigmoid(logits))) along `dim`, computed stably in log space (never ±inf for finite logits).

    Used where the original averages sigmoid outputs (crops of long inputs), so that our pre-sigmoid logits
    still give the original's probabilities after a sigmoid.
    """
    log_p = torch.logsumexp(nn.functional.logsigmoid(logits), dim=dim)
    log_not_p = torch.logsumexp(nn.functional.logsigmoid(-logits), dim=dim)
    return log_p - log_not_p


def check_input_features(
    input_features: torch.Tensor, num_mel_bins: int, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """`check_input_values` for HTS-AT: any number of frames from one (short inputs are stretched or tiled)."""
    return check_input_values(input_features, num_mel_bins, name="input_features", dtype=dtype)


# ---------------------------------------------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------------------------------------------


class HTSATEmbeddings(nn.Module):
    """Mel-bin BatchNorm (`bn0`), and the patch embedding of the folded image: conv + LayerNorm -> (B, 64², C)."""

    def __init__(self, config: HTSATConfig):
        super().__init__()
        self.config = config
        # BatchNorm over mel bins on (B, mel, frames): what the original's BatchNorm2d on (B, mel, frames, 1) computes
        self.mel_norm = nn.BatchNorm1d(config.num_mel_bins, eps=config.batch_norm_eps)
        self.projection = nn.Conv2d(
            1,
            config.embed_dim,
            kernel_size=config.patch_size,
            stride=config.patch_stride,
            padding=config.patch_padding,
        )
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps) if config.patch_norm else nn.Identity()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def freeze(self) -> None:
        """No gradient for `bn0`, the patch projection and its LayerNorm; `bn0` then keeps its running statistics."""
        self.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "HTSATEmbeddings":
        """`bn0` stays in eval mode while its parameters are frozen (no `requires_grad`), whatever `mode` says.

        A frozen BatchNorm must not normalise with, nor update its statistics from, training batches: its running
        statistics are part of the frozen front end. This is what keeps a PEFT/LoRA adapter exact: PEFT freezes
        every base parameter and saves only the adapter, so statistics updated in train-mode steps would be lost
        on reload (the reloaded adapter would give other outputs). Decided here because Trainer (and every
        training loop) calls `train()` before its steps; `freeze_feature_encoder()` freezes it the same way.
        """
        super().train(mode)
        parameters = list(self.mel_norm.parameters())
        if parameters and not any(parameter.requires_grad for parameter in parameters):
            self.mel_norm.eval()
        return self

    def normalize(self, input_features: torch.Tensor) -> torch.Tensor:
        """(B, frames, mel) log-mel -> the same shape after `bn0` (running statistics in eval)."""
        return self.mel_norm(input_features.transpose(1, 2)).transpose(1, 2)

    def spectrogram_to_image(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """(B, frames ≤ num_frames, mel) -> (B, 1, spec_size, spec_size): bicubic stretch, then the time fold."""
        stretched = stretch_time_axis(spectrogram, self.config.num_frames)
        return fold_time_into_image(stretched, self.config.freq_ratio)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        patches = self.projection(image)  # (B, C, rows, cols)
        tokens = patches.flatten(2).transpose(1, 2)  # (B, rows·cols, C), row-major
        return self.dropout(self.norm(tokens))


class HTSATWindowAttention(nn.Module):
    """Multi-head attention inside windows, with a learned relative-position bias, on the attention interface.

    Windows are attention batches, (B·windows, heads, N, d). The relative-position bias (heads, N, N) and, in
    shifted blocks, the region mask (windows, N, N) are folded into one additive mask: the bias alone
    broadcasts over every window; with the region mask it is (B·windows, heads, N, N).
    """

    def __init__(self, config: HTSATConfig, dim: int, num_heads: int, window: int):
        super().__init__()
        self.config = config
        self.num_heads = num_heads
        self.window = window
        self.head_dim = dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.q_proj = Linear(dim, dim, bias=config.qkv_bias)
        self.k_proj = Linear(dim, dim, bias=config.qkv_bias)
        self.v_proj = Linear(dim, dim, bias=config.qkv_bias)
        self.o_proj = Linear(dim, dim)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        # derivable from the window size, so not saved (the converter drops the original's copy)
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)

    def relative_position_bias(self) -> torch.Tensor:
        tokens = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]  # (N·N, heads)
        return bias.view(tokens, tokens, self.num_heads).permute(2, 0, 1)  # (heads, N, N)

    def attention_mask(self, batch_size: int, shift_mask: torch.Tensor | None) -> torch.Tensor:
        """Relative-position bias, plus the region mask in shifted blocks: (1 or B·windows, heads, N, N)."""
        bias = self.relative_position_bias()[None]  # (1, heads, N, N)
        if shift_mask is None:
            return bias
        mask = bias + shift_mask[:, None].to(bias.dtype)  # (windows, heads, N, N)
        return mask.repeat(batch_size, 1, 1, 1)  # (B·windows, heads, N, N), batch-major as the windows

    def forward(
        self, windows: torch.Tensor, shift_mask: torch.Tensor | None = None, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, windows, N, C) -> the same shape, and with `output_attentions=True` weights (B, windows, heads, N, N)
        (recorded by the model through `_can_record_outputs`); `kwargs` go on to the attention function."""
        batch_size, num_windows, tokens, dim = windows.shape
        shape = (batch_size * num_windows, tokens, self.num_heads, self.head_dim)
        query = self.q_proj(windows).view(shape).transpose(1, 2)  # (B·windows, heads, N, d)
        key = self.k_proj(windows).view(shape).transpose(1, 2)
        value = self.v_proj(windows).view(shape).transpose(1, 2)
        # attention maps need the eager function, whatever implementation the model runs
        implementation = "eager" if kwargs.get("output_attentions") else self.config._attn_implementation
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        output, weights = attention_interface(
            self,
            query,
            key,
            value,
            self.attention_mask(batch_size, shift_mask).to(query.dtype),
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        output = output.reshape(batch_size, num_windows, tokens, dim)  # from (B·windows, N, heads, d)
        if weights is not None:
            weights = weights.view(batch_size, num_windows, self.num_heads, tokens, tokens)
        return self.dropout(self.o_proj(output)), weights


class HTSATMLP(nn.Module):
    def __init__(self, config: HTSATConfig, dim: int):
        super().__init__()
        hidden = int(dim * config.mlp_ratio)
        self.fc1 = Linear(dim, hidden)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = Linear(hidden, dim)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(linear_then_activation(self.fc1, self.activation, hidden_states))
        return self.dropout(self.fc2(hidden_states))


class HTSATLayer(GradientCheckpointingLayer):
    """Swin block: x + attn(norm1(x)) in (shifted) windows, then x + mlp(norm2(x))."""

    def __init__(
        self,
        config: HTSATConfig,
        dim: int,
        num_heads: int,
        window: int,
        shift: int,
        drop_path: float,
    ):
        super().__init__()
        self.window = window
        self.shift = shift
        self.layernorm_before = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attention = HTSATWindowAttention(config, dim, num_heads, window)
        self.layernorm_after = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.mlp = HTSATMLP(config, dim)
        self.drop_path = DropPath(drop_path)

    def forward(
        self,
        hidden_states: torch.Tensor,
        token_order: torch.Tensor,
        shift_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        """`token_order`: `window_token_order` of this block's shift; `shift_mask`: used when the block is shifted."""
        batch_size, length, channels = hidden_states.shape
        order, inverse = token_order
        windows = self.layernorm_before(hidden_states).index_select(1, order)  # (B, H·W, C) in window order
        windows = windows.view(batch_size, -1, self.window * self.window, channels)  # (B, windows, N, C)
        windows, _ = self.attention(windows, shift_mask if self.shift else None, **kwargs)
        attended = windows.reshape(batch_size, length, channels).index_select(1, inverse)  # row-major, unshifted
        hidden_states = hidden_states + self.drop_path(attended)
        hidden_states = hidden_states + self.drop_path(self.mlp(self.layernorm_after(hidden_states)))
        return hidden_states


class HTSATPatchMerging(nn.Module):
    """2×2 token neighbourhoods -> one token of twice the width: concat, LayerNorm(4C), Linear(4C -> 2C, no bias).

    Concatenation order as the original: (even row, even col), (odd row, even col), (even row, odd col),
    (odd row, odd col), rows being the image height.
    """

    def __init__(self, config: HTSATConfig, dim: int, resolution: tuple[int, int]):
        super().__init__()
        self.resolution = resolution
        self.norm = nn.LayerNorm(4 * dim, eps=config.layer_norm_eps)
        self.reduction = Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch_size, _, channels = hidden_states.shape
        height, width = self.resolution
        grid = hidden_states.view(batch_size, height, width, channels)
        quads = [grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 1::2]]
        merged = torch.cat(quads, dim=-1).view(batch_size, -1, 4 * channels)  # (B, H/2·W/2, 4C)
        return self.reduction(self.norm(merged))


class HTSATStage(nn.Module):
    """The blocks of one resolution (even ones in plain windows, odd ones shifted), then a patch merging."""

    def __init__(self, config: HTSATConfig, stage: int, drop_paths: list[float]):
        super().__init__()
        dim = config.embed_dim * 2**stage
        self.resolution = config.stage_resolution(stage)
        self.window, self.shift = config.stage_window(stage)
        self.blocks = nn.ModuleList(
            HTSATLayer(
                config,
                dim,
                config.num_heads[stage],
                self.window,
                self.shift if index % 2 == 1 else 0,
                drop_paths[index],
            )
            for index in range(config.depths[stage])
        )
        # derivable from the geometry, so not saved (the converter drops the original's `attn_mask` buffers)
        window_order, shifted_window_order, shift_mask = self.make_buffers()
        self.register_buffer("window_order", window_order, persistent=False)
        self.register_buffer("shifted_window_order", shifted_window_order, persistent=False)
        self.register_buffer("shift_mask", shift_mask, persistent=False)
        last = stage == config.num_layers - 1
        self.downsample = None if last else HTSATPatchMerging(config, dim, self.resolution)

    def make_buffers(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Token orders of the plain and shifted blocks and the shifted blocks' mask (None without a shift)."""
        plain = window_token_order(self.resolution, self.window, 0)
        if not self.shift:
            return plain, None, None
        shifted = window_token_order(self.resolution, self.window, self.shift)
        return plain, shifted, shifted_window_mask(self.resolution, self.window, self.shift)

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        for block in self.blocks:
            token_order = self.shifted_window_order if block.shift else self.window_order
            hidden_states = block(hidden_states, token_order, self.shift_mask, **kwargs)
        if self.downsample is not None:
            hidden_states = self.downsample(hidden_states)
        return hidden_states


class HTSATEncoder(nn.Module):
    def __init__(self, config: HTSATConfig):
        super().__init__()
        # stochastic depth rising linearly from 0 over all blocks (plain Python: also works on the meta device)
        total = sum(config.depths)
        drop_paths = [config.drop_path_rate * index / max(total - 1, 1) for index in range(total)]
        starts = [sum(config.depths[:stage]) for stage in range(config.num_layers)]
        self.layers = nn.ModuleList(
            HTSATStage(config, stage, drop_paths[start : start + config.depths[stage]])
            for stage, start in enumerate(starts)
        )

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        for stage in self.layers:
            hidden_states = stage(hidden_states, **kwargs)
        return hidden_states


class HTSATTokenSemanticHead(nn.Module):
    """The token-semantic CNN (`tscam_conv`): per-time-step class logits from the final token grid.

    The final tokens are regrouped to (B, C, rows per chunk, time steps) and a convolution spanning all the
    rows and `token_semantic_kernel_size` steps gives (B, labels, time steps) logits; the clip logits are their
    mean over time (the original's sigmoid comes after that mean, so they are averaged as logits).
    """

    def __init__(self, config: HTSATConfig):
        super().__init__()
        self.final_resolution = config.stage_resolution(config.num_layers - 1)
        self.freq_ratio = config.freq_ratio
        kernel = config.token_semantic_kernel
        self.conv = nn.Conv2d(config.hidden_size, config.num_labels, kernel_size=kernel, padding=(0, kernel[1] // 2))

    def forward(self, last_hidden_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, tokens, C) -> clip logits (B, labels) and step logits (B, steps, labels)."""
        grid = regroup_tokens_by_time(last_hidden_state, self.final_resolution, self.freq_ratio)
        step_logits = self.conv(grid).flatten(2)  # (B, labels, steps): the kernel spans every row
        return step_logits.mean(dim=-1), step_logits.transpose(1, 2)


class HTSATLinearHead(nn.Module):
    """The original's head without the token-semantic module (`enable_tscam=False`): one linear layer.

    Clip logits come from the mean token; step logits from the same layer applied to the token rows of each
    time step *summed* over frequency (the original sums there, it does not average).
    """

    def __init__(self, config: HTSATConfig):
        super().__init__()
        self.final_resolution = config.stage_resolution(config.num_layers - 1)
        self.freq_ratio = config.freq_ratio
        self.dense = Linear(config.hidden_size, config.num_labels)

    def forward(self, last_hidden_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grid = regroup_tokens_by_time(last_hidden_state, self.final_resolution, self.freq_ratio)
        step_features = grid.sum(dim=2).transpose(1, 2)  # (B, steps, C)
        return self.dense(last_hidden_state.mean(dim=1)), self.dense(step_features)


# ---------------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class HTSATAudioClassifierOutput(ModelOutput):
    """Output of [`HTSATForAudioClassification`].

    Args:
        loss: classification loss (cross-entropy, or BCE-with-logits for `multi_label_classification`) when
            `labels` are given.
        logits: (B, labels) clip logits, before any sigmoid/softmax.
        framewise_logits: (B, num_frames, labels) frame logits before the sigmoid, on the stretched
            `num_frames` (1024) axis: each time step repeated `frames_per_step` (32) times. 1024 frames span the
            whole input, whatever its real length (`detection.detect_events` maps them back to seconds).
        latent_output: (B, C) mean of the final tokens (absent for inputs cropped and averaged).
        hidden_states: patch embeddings and the output of every stage (after its patch merging).
        attentions: per block, (B, windows, heads, window², window²) attention weights.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    framewise_logits: torch.FloatTensor | None = None
    latent_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class HTSATPreTrainedModel(RemoteCodeMixin, CheckedLoadingMixin, PreTrainedModel):
    """Weight initialisation (including the derived buffers), attention-implementation support, and
    `save_pretrained` that writes the custom code `trust_remote_code=True` loads (`RemoteCodeMixin`), and a
    `from_pretrained` that never leaves encoder weights random (`CheckedLoadingMixin`)."""

    config_class = HTSATConfig
    config: HTSATConfig
    base_model_prefix = "htsat"
    main_input_name = "input_features"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["HTSATStage"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    # what `capture_outputs` records: the patch embeddings and every stage's output (after its patch merging),
    # and every block's window-attention weights
    _can_record_outputs = {"hidden_states": HTSATStage, "attentions": HTSATWindowAttention}

    @classmethod
    def _adapt_checkpoint(cls, state_dict: dict[str, torch.Tensor], saved_config: HTSATConfig, config: HTSATConfig):
        """The checkpoint in this package's names (an original Lightning layout converted): `htsat_checkpoint_filter`."""
        from .convert_htsat import htsat_checkpoint_filter

        return htsat_checkpoint_filter(state_dict, config)

    def freeze_feature_encoder(self) -> None:
        """Freeze the spectrogram front end: the mel-bin BatchNorm (`bn0`) and the patch embedding.

        The method transformers' audio-classification example script calls by default
        (`--freeze_feature_encoder True`). Frozen parameters get no gradient, and `bn0` normalises with its
        running statistics in training too (a BatchNorm is only frozen if its statistics are); the Swin
        stages and the head keep training.
        """
        self.base_model.embeddings.freeze()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Swin/timm initialisation: truncated normal weights, zero biases, unit norms; derived buffers recomputed.

        The buffers matter: `from_pretrained` builds the model on the meta device and only loads saved tensors,
        so the non-persistent index and mask buffers must be rebuilt here.
        """
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
        elif isinstance(module, HTSATWindowAttention):
            init.trunc_normal_(module.relative_position_bias_table, std=std)
            init.copy_(module.relative_position_index, relative_position_index(module.window))
        elif isinstance(module, HTSATStage):
            for name, value in zip(("window_order", "shifted_window_order", "shift_mask"), module.make_buffers()):
                if value is not None:
                    init.copy_(getattr(module, name), value)


class HTSATModel(HTSATPreTrainedModel):
    """HTS-AT encoder: log-mel features -> final tokens.

    Input `input_features` (B, frames ≤ num_frames, mel) log-mel (see `HTSATFeatureExtractor`). Outputs
    `last_hidden_state` (B, 64, C) after the final LayerNorm (row-major over the 8×8 final grid, rows being
    time chunk × frequency) and `pooler_output` (B, C), their mean (the original's `latent_output`).
    Longer inputs are cropped and averaged by [`HTSATForAudioClassification`], which has outputs to average.
    """

    def __init__(self, config: HTSATConfig):
        super().__init__(config)
        self.embeddings = HTSATEmbeddings(config)
        self.encoder = HTSATEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Conv2d:
        return self.embeddings.projection

    def prepare_spectrogram(self, input_features: torch.Tensor, infer_mode: bool | None = None) -> torch.Tensor:
        """Checks, `bn0`, and (in `infer_mode`) the tiling of short inputs: (B, frames, mel) -> (B, frames', mel)."""
        input_features = check_input_features(input_features, self.config.num_mel_bins, dtype=self.dtype)
        infer_mode = self.config.infer_mode if infer_mode is None else infer_mode
        spectrogram = self.embeddings.normalize(input_features)
        if infer_mode:
            spectrogram = tile_short_spectrogram(spectrogram, self.config.num_frames)
        return spectrogram

    @capture_outputs(tie_last_hidden_states=False)
    def encode_image(self, image: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> BaseModelOutputWithPooling:
        """Everything after the fold: (B, 1, spec_size, spec_size) image -> tokens.

        `output_hidden_states` / `output_attentions` (kwargs or config) are recorded by transformers'
        `capture_outputs` (`_can_record_outputs`).
        """
        expected = (1, self.config.spec_size, self.config.spec_size)
        if image.dim() != 4 or tuple(image.shape[1:]) != expected:
            raise ValueError(
                f"image must have shape (batch, {', '.join(map(str, expected))}), got {tuple(image.shape)}"
            )
        hidden_states = self.encoder(self.embeddings(image), **kwargs)
        sequence_output = self.layernorm(hidden_states)
        return BaseModelOutputWithPooling(last_hidden_state=sequence_output, pooler_output=sequence_output.mean(dim=1))

    def encode_spectrogram(self, spectrogram: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling | tuple:
        """A normalised (after `bn0`) (B, frames ≤ num_frames, mel) spectrogram -> tokens."""
        if spectrogram.shape[1] > self.config.num_frames:
            raise ValueError(
                f"input has {spectrogram.shape[1]} frames, more than the model's num_frames ({self.config.num_frames}). "
                "HTSATModel gives one output per clip; HTSATForAudioClassification crops longer inputs and averages "
                "its outputs, as the original does"
            )
        return self.encode_image(self.embeddings.spectrogram_to_image(spectrogram), **kwargs)

    def forward(
        self,
        input_features: torch.Tensor,
        infer_mode: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling | tuple:
        spectrogram = self.prepare_spectrogram(input_features, infer_mode)
        return self.encode_spectrogram(spectrogram, **kwargs)


class HTSATForAudioClassification(HTSATPreTrainedModel):
    """HTS-AT with its token-semantic head: clip `logits` (B, labels) and `framewise_logits` (B, 1024, labels).

    Both are pre-activation: the original's `clipwise_output` is `sigmoid(logits)` for its AudioSet config
    (`clip_bce`) and `logits` for its ESC-50 config (`clip_ce`); its `framewise_output` is
    `sigmoid(framewise_logits)`. The loss (when `labels` are given) follows `config.problem_type`.

    Inputs longer than `num_frames` are handled as the original evaluates them: crops of (T - 1) // 2 frames
    every (T - 1) // 4 frames, outputs averaged. The original averages its outputs, i.e. probabilities for
    the frames and for multi-label clips, and logits for single-label clips (`clip_ce`); the returned logits
    are the logits of those averages, so a sigmoid/softmax of them gives the original's numbers. The crops run
    in training mode too (the original draws one random crop there; random cropping belongs to the data
    pipeline). `hidden_states`/`attentions` of cropped inputs have crops × batch rows, crop-major.
    """

    def __init__(self, config: HTSATConfig):
        super().__init__(config)
        self.htsat = HTSATModel(config)
        self.classifier = HTSATTokenSemanticHead(config) if config.use_token_semantic_head else HTSATLinearHead(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_features: torch.Tensor,
        labels: torch.Tensor | None = None,
        infer_mode: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> HTSATAudioClassifierOutput | tuple:
        """`kwargs` (`output_attentions`, `output_hidden_states`, ...) go to the encoder and the loss."""
        spectrogram = self.htsat.prepare_spectrogram(input_features, infer_mode)
        batch_size = spectrogram.shape[0]
        if spectrogram.shape[1] <= self.config.num_frames:
            outputs = self.htsat.encode_spectrogram(spectrogram, return_dict=True, **kwargs)
            logits, step_logits = self.classifier(outputs.last_hidden_state)
            latent_output = outputs.pooler_output
        else:
            crops = crop_long_spectrogram(spectrogram, self.config.num_frames)  # (crops, B, size, mel)
            num_crops = crops.shape[0]
            outputs = self.htsat.encode_spectrogram(crops.flatten(0, 1), return_dict=True, **kwargs)
            crop_logits, crop_step_logits = self.classifier(outputs.last_hidden_state)
            crop_logits = crop_logits.view(num_crops, batch_size, -1)  # (crops, B, labels)
            if self.config.problem_type == "multi_label_classification":
                logits = logit_of_mean_probability(crop_logits, dim=0)
            else:
                logits = crop_logits.mean(dim=0)
            step_logits = logit_of_mean_probability(
                crop_step_logits.view(num_crops, batch_size, *crop_step_logits.shape[1:]), dim=0
            )
            latent_output = None
        # each time step covers frames_per_step (32) frames of the stretched axis
        framewise_logits = step_logits.repeat_interleave(self.config.frames_per_step, dim=1)  # (B, num_frames, labels)
        loss = None
        if labels is not None:
            loss = self.loss_function(check_labels(labels, logits, self.config), logits, self.config, **kwargs)
        return HTSATAudioClassifierOutput(
            loss=loss,
            logits=logits,
            framewise_logits=framewise_logits,
            latent_output=latent_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
