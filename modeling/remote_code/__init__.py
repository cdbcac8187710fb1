"""Custom code that travels with every saved model, so plain `transformers` loads it with `trust_remote_code=True`.

`transformers` copies the module an `auto_map` entry names, and that module's sibling relative imports
(`from .x import y`), into one flat folder; this package's nested subpackages (`..pos_embed`, `..checkpoint`) do
not survive that. So the generator (`python -m spectrogram_transformers.modeling.remote_code.generate`, never
edited by hand; a test fails when its output is stale) flattens the package source into this folder: ONE shared
module (`spectrogram_transformers_shared.py`, what two or more families use) and a thin module per family
(`spectrogram_transformers_<family>.py`, the rest, importing the shared one). `save_pretrained` of every model
class (and of the HTS-AT feature extractor) calls `add_remote_code`: it writes `auto_map` and copies both
modules next to the weights.

The same functions run inside the generated modules, where `__file__` is the generated shared module itself: the
code copied is then the code that is running, so a model loaded with remote code saves a loadable directory too.

With this package installed, the Auto classes keep using the package's registered classes for these directories
(a registered `model_type` counts as local code: no remote code runs and nothing asks to trust it).
"""

import shutil
from pathlib import Path

__all__ = [
    "FEATURE_EXTRACTOR_AUTO_MAP",
    "REMOTE_CODE_CLASSES",
    "REMOTE_CODE_PIPELINE",
    "RemoteCodeMixin",
    "add_remote_code",
    "SHARED_MODULE",
    "remote_code_auto_map",
    "remote_code_custom_pipelines",
    "remote_code_file",
    "remote_code_files",
]

# model_type -> {Auto class: class name in the family's generated module}
REMOTE_CODE_CLASSES: dict[str, dict[str, str]] = {
    "ast": {
        "AutoConfig": "ASTConfig",
        "AutoModel": "ASTModel",
        "AutoModelForAudioClassification": "ASTForAudioClassification",
        "AutoFeatureExtractor": "ASTFeatureExtractor",
    },
    "ssast": {
        "AutoConfig": "SSASTConfig",
        "AutoModel": "SSASTModel",
        "AutoModelForAudioClassification": "SSASTForAudioClassification",
        "AutoModelForPreTraining": "SSASTForPreTraining",
        "AutoFeatureExtractor": "ASTFeatureExtractor",
    },
    "htsat": {
        "AutoConfig": "HTSATConfig",
        "AutoModel": "HTSATModel",
        "AutoModelForAudioClassification": "HTSATForAudioClassification",
        "AutoFeatureExtractor": "HTSATFeatureExtractor",
    },
}
# feature extractor class -> model_type whose module carries it, for `preprocessor_config.json`'s own auto_map.
# Only HTS-AT's: transformers resolves a `feature_extractor_type` of "ASTFeatureExtractor" to ITS class, and an
# auto_map without a type would make AutoFeatureExtractor treat the directory as remote-only (a trust prompt even
# with this package installed). AST/SSAST directories carry AutoFeatureExtractor in config.json's auto_map, which
# AutoFeatureExtractor reads when preprocessor_config.json names no class.
FEATURE_EXTRACTOR_AUTO_MAP: dict[str, str] = {"HTSATFeatureExtractor": "htsat"}


# the package's pipeline for "audio-classification", generated into the shared module: a saved classifier's
# config.json names it in `custom_pipelines`, so `pipeline(..., trust_remote_code=True)` without the package
# windows long audio and resamples any rate as the package does
REMOTE_CODE_PIPELINE = "SpectrogramAudioClassificationPipeline"

# False inside the generated copies of this code (their module is transformers_modules....)
_IS_PACKAGE = __name__.startswith("spectrogram_transformers.")

# the generated module every family module imports (a sibling relative import, which transformers copies along)
SHARED_MODULE = "spectrogram_transformers_shared"


def module_name(model_type: str) -> str:
    return f"spectrogram_transformers_{model_type}"


def remote_code_files(model_type: str) -> list[Path]:
    """The generated modules a family's directory carries: the shared one and the family's (beside this file, or
    beside the generated module running this code)."""
    if model_type not in REMOTE_CODE_CLASSES:
        raise ValueError(f"no remote code for model_type {model_type!r}; known: {sorted(REMOTE_CODE_CLASSES)}")
    paths = [Path(__file__).with_name(f"{name}.py") for name in (SHARED_MODULE, module_name(model_type))]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: regenerate it with `python -m spectrogram_transformers.modeling.remote_code.generate`"
            )
    return paths


def remote_code_file(model_type: str) -> Path:
    """The generated module of a family (the one `auto_map` names; it imports the shared module)."""
    return remote_code_files(model_type)[1]


def remote_code_auto_map(model_type: str) -> dict[str, str]:
    """`auto_map` for config.json: Auto class -> "module.Class" in the family's generated module."""
    return {auto: f"{module_name(model_type)}.{name}" for auto, name in REMOTE_CODE_CLASSES[model_type].items()}


def remote_code_custom_pipelines(model_type: str) -> dict[str, dict]:
    """`custom_pipelines` for config.json: transformers' public mechanism for a pipeline shipped with a model."""
    return {
        "audio-classification": {
            "impl": f"{module_name(model_type)}.{REMOTE_CODE_PIPELINE}",
            "pt": ["AutoModelForAudioClassification"],
            "type": "audio",
        }
    }


def add_remote_code(target, save_directory, model_type: str, copy_file: bool = True, classifier: bool = False) -> None:
    """Set `target.auto_map` (a config or a feature extractor), and `custom_pipelines` for a classifier's config,
    and copy the generated modules into `save_directory`.

    A feature extractor gets only its own `AutoFeatureExtractor` entry.
    """
    auto_map = remote_code_auto_map(model_type)
    if not hasattr(target, "model_type"):  # a feature extractor
        auto_map = {"AutoFeatureExtractor": auto_map["AutoFeatureExtractor"]}
    target.auto_map = {**(getattr(target, "auto_map", None) or {}), **auto_map}
    if classifier:
        target.custom_pipelines = remote_code_custom_pipelines(model_type)
    if copy_file:
        Path(save_directory).mkdir(parents=True, exist_ok=True)
        for source in remote_code_files(model_type):
            destination = Path(save_directory) / source.name
            if not (destination.exists() and destination.samefile(source)):
                shutil.copyfile(source, destination)


class RemoteCodeMixin:
    """`save_pretrained` (and so `push_to_hub`, which saves through it) also writes the family's custom code."""

    def save_pretrained(self, save_directory, *args, **kwargs):
        add_remote_code(
            self.config,
            save_directory,
            self.config.model_type,
            copy_file=kwargs.get("is_main_process", True),
            classifier=type(self).__name__.endswith("ForAudioClassification"),
        )
        try:
            result = super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            if _IS_PACKAGE:  # the entry is for config.json only: this process's pipeline() uses the registered one
                self.config.__dict__.pop("custom_pipelines", None)
        give_weights_umask_permissions(save_directory)
        return result


def give_weights_umask_permissions(directory) -> None:
    """safetensors writes its files through a private temporary file (mode 0600): give the weights the mode every
    other saved file gets from the process umask (usually 0644), so others who can read the model can load it."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    for path in Path(directory).glob("*.safetensors"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~umask)
