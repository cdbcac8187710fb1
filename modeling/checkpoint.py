"""Reading checkpoints of any origin into a flat state dict, and the key checks every converter shares.

Pickled files are read with `torch.load(..., weights_only=True)`: a checkpoint from the internet must
never run code on load.
"""

import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file

__all__ = [
    "CheckpointKeyError",
    "CheckpointReadError",
    "check_state_dict_keys",
    "drop_keys",
    "load_checkpoint",
    "read_safetensors",
    "rename_keys",
    "split_fused_qkv",
    "strip_prefix",
    "unwrap_state_dict",
]

_WEIGHT_FILE_NAMES = ("model.safetensors", "pytorch_model.bin")
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
# containers that training frameworks wrap the weights in (Lightning, generic trainers)
_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module")


class CheckpointReadError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupt, another format, or a pickle holding objects other
    than tensors (refused, never run); the message names the file."""


class CheckpointKeyError(KeyError):
    """A checkpoint whose keys do not fit the target model; the message names every offending key."""

    def __str__(self) -> str:  # KeyError would print the message repr-quoted
        return str(self.args[0])


def _find_weight_file(directory: Path) -> Path:
    for name in _WEIGHT_FILE_NAMES:
        if (directory / name).is_file():
            return directory / name
    candidates = sorted(p for p in directory.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
    if len(candidates) != 1:
        raise FileNotFoundError(
            f"{directory} must hold exactly one checkpoint file ({', '.join(_WEIGHT_SUFFIXES)}); found "
            f"{[p.name for p in candidates] or 'none'}"
        )
    return candidates[0]


def unwrap_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """Take the tensors out of training-framework containers (`{'state_dict': ...}`, `{'model': ...}`)."""
    while not any(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        inner = next((checkpoint[key] for key in _CONTAINER_KEYS if isinstance(checkpoint.get(key), Mapping)), None)
        if inner is None:
            raise ValueError(f"no tensors found in checkpoint; top-level keys are {sorted(map(str, checkpoint))}")
        checkpoint = inner
    return {key: value for key, value in checkpoint.items() if isinstance(value, torch.Tensor)}


def load_checkpoint(checkpoint: str | Path | Mapping) -> dict[str, torch.Tensor]:
    """A flat `{name: tensor}` from a file, a directory holding one, or an in-memory (possibly wrapped) dict."""
    if isinstance(checkpoint, Mapping):
        return unwrap_state_dict(checkpoint)
    path = Path(checkpoint)
    if path.is_dir():
        path = _find_weight_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # weights_only refused an object: never run a file's code
        refused = re.search(r"Unsupported (?:global|operand)[^\n.]*", str(error))
        raise CheckpointReadError(
            f"refused to unpickle {path}: it holds objects other than tensors"
            f"{f' ({refused.group(0).strip()})' if refused else ''}, and checkpoints are read with "
            "torch.load(weights_only=True), which never runs a file's code; re-save its state_dict (tensors only) "
            "or convert it to safetensors where you trust it"
        ) from None
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file: say which file and why
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointReadError(
            f"could not read {path} as a PyTorch checkpoint ({first_line}); the file is truncated, corrupt or in "
            "another format"
        ) from None
    if not isinstance(loaded, Mapping):
        raise CheckpointReadError(f"{path} holds a {type(loaded).__name__}, expected a state dict")
    return unwrap_state_dict(loaded)


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a `.safetensors` file; a truncated or foreign file raises a ValueError naming it."""
    from safetensors import SafetensorError

    try:
        return load_file(str(path))
    except SafetensorError as error:
        raise CheckpointReadError(
            f"could not read {path} as safetensors ({error}); the file is truncated, corrupt or in another format "
            "(a pickled .pth/.bin renamed to .safetensors?)"
        ) from error


def drop_keys(state_dict: Mapping[str, torch.Tensor], patterns: Iterable[str]) -> dict[str, torch.Tensor]:
    """The state dict without the keys that fully match any of `patterns` (regexes): keys dropped on purpose."""
    compiled = [re.compile(pattern) for pattern in patterns]
    return {key: value for key, value in state_dict.items() if not any(p.fullmatch(key) for p in compiled)}


def split_fused_qkv(
    state_dict: Mapping[str, torch.Tensor], fused_names: tuple[str, ...] = ("qkv",)
) -> dict[str, torch.Tensor]:
    """Split every `<...>.<fused>.{weight,bias}` (3·D rows: query, key, value in turn) into q_proj/k_proj/v_proj.

    timm, the original AST/SSAST/HTS-AT and this package's saves before the separate projections all stack
    q, k, v along dim 0.
    """
    pattern = re.compile(rf"(.*\.)(?:{'|'.join(map(re.escape, fused_names))})\.(weight|bias)")
    split = {}
    for key, value in state_dict.items():
        match = pattern.fullmatch(key)
        if match is None:
            split[key] = value
            continue
        if value.shape[0] % 3:
            raise ValueError(f"{key} has {value.shape[0]} rows, not 3 equal query/key/value parts")
        for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
            split[f"{match.group(1)}{name}.{match.group(2)}"] = part.clone()
    return split


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Remove `prefix` from the keys that carry it (DataParallel's `module.`, Lightning's `sed_model.`)."""
    return {(key[len(prefix) :] if key.startswith(prefix) else key): value for key, value in state_dict.items()}


def rename_keys(
    state_dict: Mapping[str, torch.Tensor], rules: Iterable[tuple[str, str]]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename keys with the first matching `(regex, replacement)` rule; returns (renamed, unmatched keys)."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    renamed, unmatched = {}, []
    for key, value in state_dict.items():
        for pattern, replacement in compiled:
            if pattern.fullmatch(key):
                renamed[pattern.sub(replacement, key)] = value
                break
        else:
            unmatched.append(key)
    return renamed, unmatched


def check_state_dict_keys(
    converted: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    unknown_source_keys: Iterable[str] = (),
    source: str = "checkpoint",
) -> None:
    """Raise `CheckpointKeyError` naming unknown, missing and wrongly shaped keys; pass when all fit."""
    problems = []
    unknown = sorted(unknown_source_keys)
    if unknown:
        problems.append(f"unexpected keys in the {source}: {unknown}")
    missing = sorted(set(expected) - set(converted))
    if missing:
        problems.append(f"keys missing from the {source}: {missing}")
    extra = sorted(set(converted) - set(expected))
    if extra:
        problems.append(f"converted keys the model does not have: {extra}")
    shapes = [
        f"{key}: checkpoint {tuple(converted[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in sorted(set(converted) & set(expected))
        if converted[key].shape != expected[key].shape
    ]
    if shapes:
        problems.append("shape mismatches: " + "; ".join(shapes))
    if problems:
        raise CheckpointKeyError("; ".join(problems))
