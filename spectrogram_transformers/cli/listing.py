"""`spectrogram-transformers list`: the shipped model variants (hub_configs) and training recipes, one line each.

    spectrogram-transformers list               # both
    spectrogram-transformers list variants      # or: recipes
    spectrogram-transformers list --json

Reads the shipped JSON files only (no torch, no model is built), so it answers at once on any install.
"""

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "describe_recipe", "describe_variant", "run"]

_RECIPE_WIDTH = 110  # characters of a recipe's description shown on its line
_FAMILY_NAMES = {"ast": "AST", "ssast": "SSAST", "htsat": "HTS-AT"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="?", choices=("variants", "recipes"), help="list only these (default: both)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _package_folder(subpackage: str) -> Path:
    """Where a subpackage's files are, found without importing it (its `__init__` may import transformers)."""
    spec = importlib.util.find_spec(f"spectrogram_transformers.{subpackage}")
    return Path(next(iter(spec.submodule_search_locations)))


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _input_seconds(preprocessor: dict[str, Any]) -> float | None:
    rate = preprocessor.get("sampling_rate")
    if not rate:
        return None
    if "clip_samples" in preprocessor:  # HTS-AT: a fixed number of samples
        return preprocessor["clip_samples"] / rate
    if "max_length" in preprocessor and "frame_shift_ms" in preprocessor:  # AST/SSAST: fbank frames
        return preprocessor["max_length"] * preprocessor["frame_shift_ms"] / 1000
    return None


def describe_variant(directory: Path) -> str:
    """What a variant is, from its config.json and preprocessor_config.json: family, task, size, labels, input."""
    config = _read_json(directory / "config.json")
    preprocessor_file = directory / "preprocessor_config.json"
    preprocessor = _read_json(preprocessor_file) if preprocessor_file.is_file() else {}
    family = _FAMILY_NAMES.get(config.get("model_type"), config.get("model_type", "?"))
    architecture = (config.get("architectures") or [""])[0]
    if architecture.endswith("ForPreTraining"):
        task = "pre-training"
    elif architecture.endswith("ForAudioClassification"):
        labels = config.get("num_labels") or len(config.get("id2label") or {})
        kind = "multi-label" if config.get("problem_type") == "multi_label_classification" else "single-label"
        task = f"classifier, {labels} labels ({kind})"
    else:
        task = "encoder"
    if "embed_dim" in config:  # HTS-AT: Swin stages
        size = f"embed {config['embed_dim']}, depths {'-'.join(map(str, config.get('depths', [])))}"
    else:
        size = f"{config.get('num_hidden_layers')} layers x {config.get('hidden_size')}"
        patch = config.get("patch_size")
        if patch:
            patch = patch if isinstance(patch, list) else [patch, patch]
            size += f", patches {patch[0]}x{patch[1]}"
            stride = [config.get("frequency_stride"), config.get("time_stride")]
            if all(stride) and stride != patch:
                size += f" every {stride[0]}x{stride[1]}"
    seconds = _input_seconds(preprocessor)
    rate = preprocessor.get("sampling_rate")
    audio = f"{seconds:g} s at {rate / 1000:g} kHz" if seconds and rate else "input length not set"
    return f"{family} {task}; {size}; {audio}"


def describe_recipe(path: Path) -> str:
    recipe = _read_json(path)
    families = ", ".join(_FAMILY_NAMES.get(name, name) for name in recipe.get("families", {}))
    description = " ".join(str(recipe.get("description", "")).split())
    first_sentence = description.split(". ")[0].rstrip(".")
    if len(first_sentence) > _RECIPE_WIDTH:
        first_sentence = first_sentence[: _RECIPE_WIDTH - 3].rsplit(" ", 1)[0] + " ..."
    return f"{first_sentence} [{families}]"


def run(args: argparse.Namespace) -> int:
    listing: dict[str, dict[str, str]] = {}
    if args.what in (None, "variants"):
        variants = sorted(path.parent for path in _package_folder("hub_configs").glob("*/config.json"))
        listing["variants"] = {directory.name: describe_variant(directory) for directory in variants}
    if args.what in (None, "recipes"):
        recipes = sorted((_package_folder("training") / "recipes").glob("*.json"))
        listing["recipes"] = {path.stem: describe_recipe(path) for path in recipes}
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    headings = {
        "variants": "Model variants (train --model NAME; in Python: spectrogram_transformers.hub_configs.build_model(NAME))",
        "recipes": "Training recipes (train --recipe NAME)",
    }
    for section, entries in listing.items():
        print(headings[section])
        width = max(map(len, entries), default=0)
        for name, description in entries.items():
            print(f"  {name:<{width}}  {description}")
        print()
    return 0
