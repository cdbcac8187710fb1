"""LoRA fine-tuning for `spectrogram-transformers train --lora R`: the recipe's model wrapped in a PEFT adapter.

Every family names its attention projections as transformers 5 does (`q_proj`, `k_proj`, `v_proj`, `o_proj`;
MLP `fc1`/`fc2`), so the targets are the ones people use on transformers' own AST (default `q_proj,v_proj`). The
classification head is new for most fine-tuning runs, so it trains in full (`modules_to_save=["classifier"]`).
A run saves the adapter under `<output_dir>/adapter` and the merged model (a plain model directory, no PEFT
needed to load it) in `<output_dir>` itself, where a run without LoRA puts its model.

Needs the `[lora]` extra (`peft`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedModel

from ..errors import InvalidInputError

__all__ = [
    "ADAPTER_DIR",
    "DEFAULT_LORA_TARGETS",
    "LoraSettings",
    "LoraTargetError",
    "apply_lora",
    "is_lora_model",
    "parse_lora_targets",
    "save_lora_model",
]

ADAPTER_DIR = "adapter"
DEFAULT_LORA_TARGETS = ("q_proj", "v_proj")
# the trained-in-full head of every family's classification model
HEAD_MODULES = ["classifier"]


class LoraTargetError(InvalidInputError):
    """`--lora_targets` names a module the model does not have (a user's mistake: one line, not a traceback)."""


@dataclass(frozen=True)
class LoraSettings:
    """What `train --lora R [--lora_targets ...]` asks for.

    Args:
        rank: LoRA rank r of every adapted linear.
        targets: module names to adapt (matched as the last part of a module's name, as PEFT does).
        alpha: LoRA scaling numerator; the update is scaled by alpha / rank (default 2·rank, a scale of 2).
    """

    rank: int
    targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    alpha: int | None = None

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"--lora takes a rank of at least 1, got {self.rank}")
        if not self.targets:
            raise ValueError("--lora_targets names no module")


def parse_lora_targets(text: str | None) -> tuple[str, ...]:
    """`"q_proj,v_proj"` -> ("q_proj", "v_proj"); None -> the default targets."""
    if text is None:
        return DEFAULT_LORA_TARGETS
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _require_peft():
    try:
        import peft
    except ImportError as error:
        raise ImportError("train --lora needs PEFT: pip install 'spectrogram-transformers[lora]'") from error
    return peft


def apply_lora(network: PreTrainedModel, settings: LoraSettings):
    """`network` wrapped for LoRA training: only the adapters of `settings.targets` and the head train.

    Raises `LoraTargetError` naming the targets the model has no module for (and the names it has).
    """
    peft = _require_peft()
    leaf_names = {name.rsplit(".", 1)[-1] for name, _ in network.named_modules()}
    missing = [target for target in settings.targets if target not in leaf_names]
    if missing:
        linears = sorted(
            {name.rsplit(".", 1)[-1] for name, module in network.named_modules() if type(module).__name__ == "Linear"}
        )
        raise LoraTargetError(
            f"--lora_targets {','.join(missing)}: {network.config.model_type} has no module of that name; its linear "
            f"layers are {', '.join(linears)}"
        )
    config = peft.LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha or 2 * settings.rank,
        target_modules=list(settings.targets),
        modules_to_save=HEAD_MODULES,
    )
    return peft.get_peft_model(network, config)


def is_lora_model(model) -> bool:
    try:
        import peft
    except ImportError:
        return False
    return isinstance(model, peft.PeftModel)


def save_lora_model(trainer, output_dir: str | Path) -> Path:
    """The adapter (with the feature extractor) under `<output_dir>/adapter`, the merged model in `output_dir`.

    The merge runs on a copy, so the trainer's model keeps its adapter. Returns the adapter directory.
    """
    adapter_dir = Path(output_dir) / ADAPTER_DIR
    trainer.save_model(str(adapter_dir))
    if trainer.is_world_process_zero():
        adapted = trainer.accelerator.unwrap_model(trainer.model)
        merged = copy.deepcopy(adapted).merge_and_unload()
        merged.save_pretrained(output_dir)
        if trainer.processing_class is not None:
            trainer.processing_class.save_pretrained(output_dir)
    return adapter_dir
