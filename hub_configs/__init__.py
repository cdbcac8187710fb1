"""Published model variants as data: `<variant>/config.json` + `preprocessor_config.json`, and label maps.

A variant is named by what changes (`ast-base-f10-t10-1024-audioset`, `htsat-tiny-32k-audioset`), and
holds the architecture and preprocessing only; where the weights live is the converters' business.
"""

import csv
from pathlib import Path

from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, PreTrainedConfig

__all__ = ["HUB_CONFIGS_DIR", "build_model", "list_variants", "load_config", "load_feature_extractor", "load_labels"]

HUB_CONFIGS_DIR = Path(__file__).resolve().parent
LABELS_DIR = HUB_CONFIGS_DIR / "labels"


def list_variants() -> list[str]:
    """Names of every shipped variant (folders holding a config.json)."""
    return sorted(path.parent.name for path in HUB_CONFIGS_DIR.glob("*/config.json"))


def variant_dir(name: str) -> Path:
    directory = HUB_CONFIGS_DIR / name
    if not (directory / "config.json").is_file():
        raise ValueError(f"unknown variant {name!r}; shipped variants: {', '.join(list_variants())}")
    return directory


def load_config(name: str, **overrides) -> PreTrainedConfig:
    """The variant's model config, with `overrides` applied (e.g. `num_labels=10`)."""
    return AutoConfig.from_pretrained(variant_dir(name), **overrides)


def load_feature_extractor(name: str, **overrides):
    return AutoFeatureExtractor.from_pretrained(variant_dir(name), **overrides)


def build_model(name: str, **overrides):
    """A randomly initialised classification model of the variant (weights come from `convert` or the Hub)."""
    config = load_config(name, **overrides)
    return AutoModelForAudioClassification.from_config(config)


def load_labels(path: str | Path) -> dict[int, str]:
    """id -> name from a label CSV in the original repos' `class_labels_indices.csv` layout (index,mid,display_name).

    A bare name looks in this package's `labels/` folder (`esc50`, `speech_commands`). AudioSet's 527-class
    map is not shipped: pass the path of the original repos' `class_labels_indices.csv`.
    """
    path = Path(path)
    if not path.suffix and not path.exists():
        shipped = sorted(label_file.stem for label_file in LABELS_DIR.glob("*.csv"))
        if path.name not in shipped:
            raise FileNotFoundError(
                f"no label file {str(path)!r}: give a CSV path, or one of the shipped label maps {shipped} "
                "(AudioSet's is not shipped: use the original repos' class_labels_indices.csv)"
            )
        path = LABELS_DIR / f"{path.name}.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"index", "display_name"} <= set(rows[0]):
        raise ValueError(f"{path} must be a CSV with columns index,mid,display_name (the original repos' layout)")
    labels = {int(row["index"]): row["display_name"] for row in rows}
    if sorted(labels) != list(range(len(labels))):
        raise ValueError(f"{path}: label indices must be 0..{len(labels) - 1} without gaps")
    return labels
