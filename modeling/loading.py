"""`from_pretrained` that reads a checkpoint once, adapts it, and never leaves encoder weights random.

`transformers` initialises any weight a checkpoint lacks and only reports it in a table; for a foreign
checkpoint (another library's key names) that means a model with a random encoder and plausible-looking
output. Here every model class of the package loads through `CheckedLoadingMixin.from_pretrained`:

1. the weights are read ONCE (`model.safetensors`, sharded, or `pytorch_model.bin`, from a directory or the
   Hub) and handed to the class's `_adapt_checkpoint` (format conversion, positional-embedding resizing);
2. the keys are split between the encoder (`base_model_prefix`) and the task heads, then checked against the
   target: a missing, unexpected or mis-shaped ENCODER key raises `CheckpointKeyError` naming it; a head the
   checkpoint lacks is initialised fresh (logged), heads of another task are dropped (logged), and a head of
   another size is re-initialised only with `ignore_mismatched_sizes=True`, as transformers requires;
3. `PreTrainedModel.from_pretrained` builds the model once from that state dict (dtype, device map, ...).
"""

import json

import torch
from transformers import PreTrainedConfig
from transformers import initialization as init
from transformers.utils import logging

from .checkpoint import CheckpointKeyError, load_checkpoint

__all__ = ["CheckedLoadingMixin", "HUB_KWARGS", "read_saved_state_dict", "select_checkpoint_keys"]

logger = logging.get_logger(__name__)

# keyword arguments of `from_pretrained` that locate files rather than configure the model
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")
_WEIGHT_FILES = (
    ("model.safetensors", "model.safetensors.index.json"),
    ("pytorch_model.bin", "pytorch_model.bin.index.json"),
)


def read_saved_state_dict(name_or_path, **hub_kwargs) -> dict[str, torch.Tensor]:
    """All weights of a saved model (directory or Hub id): single-file or sharded safetensors, else `.bin`."""
    from transformers.utils import cached_file

    def resolve(filename: str):
        return cached_file(name_or_path, filename, _raise_exceptions_for_missing_entries=False, **hub_kwargs)

    for single, index in _WEIGHT_FILES:
        path = resolve(single)
        if path is not None:
            return load_checkpoint(path)
        index_path = resolve(index)
        if index_path is not None:
            with open(index_path, encoding="utf-8") as handle:
                shards = sorted(set(json.load(handle)["weight_map"].values()))
            state_dict = {}
            for shard in shards:
                state_dict.update(load_checkpoint(resolve(shard)))
            return state_dict
    raise FileNotFoundError(f"{name_or_path} has no model.safetensors or pytorch_model.bin (single or sharded)")


def select_checkpoint_keys(
    state_dict: dict[str, torch.Tensor],
    expected: dict[str, torch.Size],
    prefix: str,
    is_base_model: bool,
    ignore_mismatched_sizes: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """The part of `state_dict` the target model takes, in its key names; raises for any encoder mismatch.

    Args:
        state_dict: checkpoint in this package's names, with or without the encoder prefix.
        expected: the target model's state-dict shapes.
        prefix: the encoder's `base_model_prefix` followed by "." (keys of a head model carry it).
        is_base_model: the target IS the encoder (keys without prefix).
        ignore_mismatched_sizes: re-initialise heads whose shape differs (other `num_labels`).

    Returns:
        (state dict to load, {"fresh": head keys left to initialisation, "dropped": checkpoint keys of other
        heads, "mismatched": re-initialised head keys}).
    """
    has_prefix = any(key.startswith(prefix) for key in state_dict)
    if is_base_model:
        selected = {
            key.removeprefix(prefix): v for key, v in state_dict.items() if key.startswith(prefix) or not has_prefix
        }
        dropped = sorted(key for key in state_dict if has_prefix and not key.startswith(prefix))
        encoder_keys = set(expected)
    else:
        selected = dict(state_dict) if has_prefix else {prefix + key: value for key, value in state_dict.items()}
        encoder_keys = {key for key in expected if key.startswith(prefix)}
        dropped = sorted(key for key in selected if key not in expected and not key.startswith(prefix))
        for key in dropped:
            selected.pop(key)

    problems = []
    missing = sorted(encoder_keys - set(selected))
    if missing:
        problems.append(f"encoder weights missing from the checkpoint: {missing}")
    unexpected = sorted(key for key in selected if key not in expected)
    if unexpected:
        problems.append(f"unexpected encoder weights in the checkpoint: {unexpected}")
    mismatched = sorted(key for key in set(selected) & set(expected) if selected[key].shape != expected[key])
    encoder_mismatched = [key for key in mismatched if key in encoder_keys]
    if encoder_mismatched:
        problems.append(
            "encoder weights of another shape: "
            + "; ".join(
                f"{k}: checkpoint {tuple(selected[k].shape)} vs model {tuple(expected[k])}" for k in encoder_mismatched
            )
        )
    if problems:
        raise CheckpointKeyError(
            "; ".join(problems) + ". The checkpoint does not fit this architecture (a checkpoint of another format "
            "needs `spectrogram_transformers.convert`; see SUPPORTED_SOURCES)"
        )
    head_mismatched = [key for key in mismatched if key not in encoder_keys]
    if head_mismatched and not ignore_mismatched_sizes:
        raise CheckpointKeyError(
            "head weights of another shape: "
            + "; ".join(
                f"{k}: checkpoint {tuple(selected[k].shape)} vs model {tuple(expected[k])}" for k in head_mismatched
            )
            + ". Pass ignore_mismatched_sizes=True to initialise a new head (e.g. another num_labels)"
        )
    for key in head_mismatched:
        selected.pop(key)
    fresh = sorted(set(expected) - set(selected))
    return selected, {"fresh": fresh, "dropped": dropped, "mismatched": head_mismatched}


class CheckedLoadingMixin:
    """`from_pretrained` through `select_checkpoint_keys`; subclasses adapt configs and checkpoints by hooks."""

    @classmethod
    def _loading_configs(cls, pretrained_model_name_or_path, kwargs: dict) -> tuple:
        """(config to build, config the checkpoint was saved with, remaining kwargs)."""
        config = kwargs.pop("config", None)
        hub_kwargs = {name: kwargs[name] for name in HUB_KWARGS if name in kwargs}
        if config is None:
            config, kwargs = cls.config_class.from_pretrained(
                pretrained_model_name_or_path, return_unused_kwargs=True, **kwargs
            )
            kwargs.update(hub_kwargs)
        elif not isinstance(config, PreTrainedConfig):  # a path or Hub id of a config
            config = cls.config_class.from_pretrained(config, **hub_kwargs)
        saved_config = cls.config_class.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        return config, saved_config, kwargs

    @classmethod
    def _adapt_checkpoint(cls, state_dict: dict[str, torch.Tensor], saved_config, config) -> dict[str, torch.Tensor]:
        """The checkpoint in this class's key names and geometry (identity by default)."""
        return state_dict

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        if pretrained_model_name_or_path is None or kwargs.get("state_dict") is not None:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        output_loading_info = kwargs.pop("output_loading_info", False)
        ignore_mismatched_sizes = kwargs.pop("ignore_mismatched_sizes", False)
        hub_kwargs = {name: kwargs[name] for name in HUB_KWARGS if name in kwargs}
        config, saved_config, kwargs = cls._loading_configs(pretrained_model_name_or_path, kwargs)
        state_dict = cls._adapt_checkpoint(
            read_saved_state_dict(pretrained_model_name_or_path, **hub_kwargs), saved_config, config
        )
        # shapes only: built on the meta device as transformers does (its linspace/arange stay on the CPU)
        with torch.device("meta"), init.meta_device_safe_creation_ops(), init.no_init_weights():
            expected = {key: value.shape for key, value in cls(config).state_dict().items()}
        prefix = cls.base_model_prefix + "."
        is_base_model = not any(key.startswith(prefix) for key in expected)
        state_dict, report = select_checkpoint_keys(
            state_dict, expected, prefix, is_base_model, ignore_mismatched_sizes
        )
        if report["dropped"]:
            logger.info(f"{cls.__name__}: checkpoint weights of other heads not used: {report['dropped']}")
        if report["fresh"]:
            logger.warning(
                f"{cls.__name__}: newly initialised (not in the checkpoint {pretrained_model_name_or_path}): "
                f"{report['fresh']}; train the model before using it for predictions"
            )
        for name in HUB_KWARGS:
            kwargs.pop(name, None)
        model = super().from_pretrained(None, *model_args, config=config, state_dict=state_dict, **kwargs)
        # as transformers does: PEFT writes `model.name_or_path` into adapters as `base_model_name_or_path`
        model.config.name_or_path = model.name_or_path = str(pretrained_model_name_or_path)
        if output_loading_info:
            info = {
                "missing_keys": report["fresh"],
                "unexpected_keys": report["dropped"],
                "mismatched_keys": report["mismatched"],
                "error_msgs": [],
            }
            return model, info
        return model
