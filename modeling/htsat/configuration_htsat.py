"""Configuration of HTS-AT, the Hierarchical Token-Semantic Audio Transformer.

Paper: Chen, Du, Zhu, Ma, Berg-Kirkpatrick and Dubnov, "HTS-AT: A Hierarchical Token-Semantic Audio
Transformer for Sound Classification and Detection", ICASSP 2022.
Original code: https://github.com/RetroCirce/HTS-Audio-Transformer (`model/htsat.py`, `config.py`).
"""

from typing import ClassVar

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..configuration_utils import ConsistentLabelsMixin, PackagePipelineMixin

__all__ = ["HTSATConfig"]


def _pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    """An int or a 2-sequence as (frequency/height, time/width)."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


@strict
class HTSATConfig(ConsistentLabelsMixin, PackagePipelineMixin, PreTrainedConfig):
    r"""Configuration of [`HTSATModel`] and [`HTSATForAudioClassification`].

    The defaults are the paper's model (HTS-AT "tiny": 31M parameters, Swin-T layout) on 64 mel bins; set
    `num_labels` (527 for AudioSet, 50 for ESC-50, 35 for Speech Commands).

    How the geometry fits together: a log-mel spectrogram of up to `num_frames` = `spec_size` ·
    `freq_ratio` frames (1024) × `num_mel_bins` (64) is stretched to `num_frames` frames and folded into a
    `spec_size` × `spec_size` image (256 × 256) by cutting time into `freq_ratio` = `spec_size // num_mel_bins`
    chunks (4) stacked along the image height. The Swin stages then see token grids of 64², 32², 16² and 8².

    Args:
        spec_size (`int`, defaults to 256): side of the square image the spectrogram is folded into.
        num_mel_bins (`int`, defaults to 64): mel bins of the input features; `spec_size` must be a multiple,
            the ratio being the number of time chunks stacked in the image.
        patch_size (`int` or `tuple[int, int]`, defaults to 4): kernel of the patch-embedding convolution.
        patch_stride (`int` or `tuple[int, int]`, defaults to `(4, 4)`): its stride (image height, width);
            the convolution is padded by `(patch_size - patch_stride) // 2` as in the original.
        embed_dim (`int`, defaults to 96): token width of the first stage; it doubles at every patch merging.
        depths (`tuple[int, ...]`, defaults to `(2, 2, 6, 2)`): Swin blocks per stage.
        num_heads (`tuple[int, ...]`, defaults to `(4, 8, 16, 32)`): attention heads per stage.
        window_size (`int`, defaults to 8): side of the attention windows; odd blocks shift them by half. A
            stage whose token grid is not larger than the window attends over the whole grid, unshifted.
        mlp_ratio (`float`, defaults to 4.0): MLP hidden width over token width.
        qkv_bias (`bool`, defaults to True): whether query/key/value projections have a bias.
        hidden_act (`str`, defaults to `"gelu"`): MLP activation (exact erf GELU in the original).
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after patch embedding, attention and MLP.
        attention_probs_dropout_prob (`float`, defaults to 0.0): dropout on attention weights.
        drop_path_rate (`float`, defaults to 0.1): stochastic depth, rising linearly over all blocks.
        patch_norm (`bool`, defaults to True): LayerNorm after the patch-embedding convolution.
        layer_norm_eps (`float`, defaults to 1e-5): eps of every LayerNorm (torch's default in the original).
        batch_norm_eps (`float`, defaults to 1e-5): eps of the mel-bin BatchNorm (`bn0`).
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal weight initialisation.
        use_token_semantic_head (`bool`, defaults to True): the token-semantic CNN head (`enable_tscam`), which
            gives frame-level logits; False gives the plain Swin head (linear layer on the mean token).
        token_semantic_kernel_size (`int`, defaults to 3): time extent of the token-semantic convolution (odd,
            padded to keep the length); its frequency extent is derived: the final token rows per time chunk.
        infer_mode (`bool`, defaults to False): the original's `infer_mode`: tile inputs shorter than
            `num_frames` floor(num_frames / frames) times before the stretch, instead of only stretching them.
            `forward(infer_mode=...)` overrides it per call.
    """

    model_type = "htsat"
    # `Trainer` evaluation/prediction hands `compute_metrics` the clip logits alone and never gathers the frame
    # outputs (B × 1024 × labels per batch, ~2 MB per AudioSet clip); `trainer.predict(data, ignore_keys=[])`
    # returns them as well, as a tuple (logits, framewise_logits, latent_output).
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["framewise_logits", "latent_output"]

    spec_size: int = 256
    num_mel_bins: int = 64
    patch_size: int | list[int] | tuple[int, int] = 4
    patch_stride: int | list[int] | tuple[int, int] = (4, 4)
    embed_dim: int = 96
    depths: list[int] | tuple[int, ...] = (2, 2, 6, 2)
    num_heads: list[int] | tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 8
    mlp_ratio: float | int = 4.0
    qkv_bias: bool = True
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.1
    patch_norm: bool = True
    layer_norm_eps: float = 1e-5
    batch_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    use_token_semantic_head: bool = True
    token_semantic_kernel_size: int = 3
    infer_mode: bool = False

    # Derived geometry. Properties rather than attributes set in __post_init__: `from_pretrained(dir,
    # embed_dim=...)` applies overrides after construction, and stored copies would then go stale. Values
    # found in older config.json files are accepted when they agree and rejected when they do not.
    @property
    def num_layers(self) -> int:
        return len(self.depths)

    @property
    def hidden_size(self) -> int:
        """Width of the final tokens (what the heads see); `hidden_size` is the name transformers looks for."""
        return int(self.embed_dim * 2 ** max(self.num_layers - 1, 0))

    @property
    def freq_ratio(self) -> int:
        """Time chunks stacked in the image (4)."""
        return self.spec_size // self.num_mel_bins if self.num_mel_bins > 0 else 0

    @property
    def num_frames(self) -> int:
        """Frames on the stretched time axis (1024)."""
        return self.spec_size * self.freq_ratio

    def _check_derived(name: str):
        def setter(self, value) -> None:
            if value != getattr(self, name):
                raise ValueError(f"{name}={value} contradicts the geometry it is derived from ({getattr(self, name)})")

        return setter

    num_layers = num_layers.setter(_check_derived("num_layers"))
    hidden_size = hidden_size.setter(_check_derived("hidden_size"))
    freq_ratio = freq_ratio.setter(_check_derived("freq_ratio"))
    num_frames = num_frames.setter(_check_derived("num_frames"))
    del _check_derived

    @property
    def patch_grid(self) -> tuple[int, int]:
        """(rows, columns) of the first stage's token grid: 64 × 64."""
        stride_h, stride_w = _pair(self.patch_stride)
        return self.spec_size // stride_h, self.spec_size // stride_w

    @property
    def patch_padding(self) -> tuple[int, int]:
        (kernel_h, kernel_w), (stride_h, stride_w) = _pair(self.patch_size), _pair(self.patch_stride)
        return (kernel_h - stride_h) // 2, (kernel_w - stride_w) // 2

    def stage_resolution(self, stage: int) -> tuple[int, int]:
        """(rows, columns) of the token grid of `stage` (each patch merging halves both)."""
        rows, columns = self.patch_grid
        return rows // 2**stage, columns // 2**stage

    def stage_window(self, stage: int) -> tuple[int, int]:
        """(window side, shift of the odd blocks) in `stage`: grids not larger than the window are one unshifted window."""
        smallest = min(self.stage_resolution(stage))
        if smallest <= self.window_size:
            return smallest, 0
        return self.window_size, self.window_size // 2

    @property
    def token_semantic_kernel(self) -> tuple[int, int]:
        """(frequency, time) kernel of the token-semantic convolution: final token rows per time chunk × kernel size."""
        final_rows, _ = self.stage_resolution(self.num_layers - 1)
        return final_rows // max(self.freq_ratio, 1), self.token_semantic_kernel_size

    @property
    def frames_per_step(self) -> int:
        """Stretched frames covered by one output time step (32): the time downsampling of patches and merges."""
        _, final_columns = self.stage_resolution(self.num_layers - 1)
        return self.spec_size // final_columns

    def validate_architecture(self) -> None:
        """Cross-field checks on the image geometry; each would otherwise be a shape error deep inside torch."""
        super().validate_architecture()
        if len(self.depths) == 0 or len(self.depths) != len(self.num_heads):
            raise ValueError(
                f"depths {tuple(self.depths)} and num_heads {tuple(self.num_heads)} must be non-empty and equally long "
                "(one entry per stage)"
            )
        if min(self.depths) < 1:
            raise ValueError(f"every stage needs at least one block; depths = {tuple(self.depths)}")
        if self.num_mel_bins < 1 or self.spec_size % self.num_mel_bins != 0:
            raise ValueError(
                f"spec_size ({self.spec_size}) must be a positive multiple of num_mel_bins ({self.num_mel_bins}): the "
                "spectrogram is folded into the square image as spec_size // num_mel_bins stacked time chunks"
            )
        for name in ("patch_size", "patch_stride"):
            value = getattr(self, name)
            if not isinstance(value, int) and len(value) != 2:
                raise ValueError(f"{name} must be an int or (height, width), got {value}")
            if min(_pair(value)) < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        kernel, stride, padding = _pair(self.patch_size), _pair(self.patch_stride), self.patch_padding
        for axis in (0, 1):
            convolved = (self.spec_size + 2 * padding[axis] - kernel[axis]) // stride[axis] + 1
            if self.spec_size % stride[axis] != 0 or convolved != self.patch_grid[axis]:
                raise ValueError(
                    f"patch_size {self.patch_size} with patch_stride {self.patch_stride} does not tile spec_size "
                    f"({self.spec_size}) into spec_size // patch_stride patches; spec_size must be a multiple of the "
                    "stride and patch_size - patch_stride even"
                )
        merges = 2 ** (self.num_layers - 1)
        if any(side % merges != 0 for side in self.patch_grid):
            raise ValueError(
                f"the patch grid {self.patch_grid} must be divisible by 2**(stages - 1) = {merges}: each of the "
                f"{self.num_layers - 1} patch mergings halves it"
            )
        if self.window_size < 1:
            raise ValueError(f"window_size must be positive, got {self.window_size}")
        for stage in range(self.num_layers):
            resolution = self.stage_resolution(stage)
            window, _ = self.stage_window(stage)
            if any(side % window != 0 for side in resolution):
                raise ValueError(
                    f"stage {stage} has a {resolution[0]}x{resolution[1]} token grid that {window}x{window} windows "
                    "do not tile; choose window_size dividing every stage's grid"
                )
            dim = self.embed_dim * 2**stage
            if dim % self.num_heads[stage] != 0:
                raise ValueError(
                    f"stage {stage} width {dim} (embed_dim * 2**{stage}) is not divisible by num_heads[{stage}] = "
                    f"{self.num_heads[stage]}"
                )
        final_rows, _ = self.stage_resolution(self.num_layers - 1)
        if final_rows % self.freq_ratio != 0:
            raise ValueError(
                f"the final token grid has {final_rows} rows, which must split evenly into the {self.freq_ratio} "
                "stacked time chunks (spec_size // num_mel_bins) for the token-semantic regrouping"
            )
        if self.token_semantic_kernel_size < 1 or self.token_semantic_kernel_size % 2 == 0:
            raise ValueError(
                f"token_semantic_kernel_size must be odd (it is padded to keep the length), got "
                f"{self.token_semantic_kernel_size}"
            )
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be positive, got {self.mlp_ratio}")
