"""What importing `spectrogram_transformers` changes in `transformers`: the Auto classes and the
"audio-classification" pipeline learn this package's models, through their public `register` methods.

| transformers API | registered for "ast", "ssast", "htsat" |
|---|---|
| `AutoConfig.register` | `ASTConfig`, `SSASTConfig`, `HTSATConfig` |
| `AutoModel` / `AutoModelForAudioClassification` / `AutoModelForPreTraining` `.register` | the base, classification and (SSAST) pre-training models |
| `AutoFeatureExtractor.register` | `ASTFeatureExtractor` (AST, SSAST), `HTSATFeatureExtractor` |
| `AutoProcessor.register` | the same feature extractors: a model's processor is its feature extractor, so `AutoProcessor` never asks to trust remote code for a directory this package saved |
| `PIPELINE_REGISTRY.register_pipeline("audio-classification", ...)` | `AudioClassificationPipelineForSpectrogramModels`: this package's windowed, any-rate pipeline for its models, transformers' own pipeline (unchanged) for every other model |
| `PIPELINE_REGISTRY.register_pipeline("audio-feature-extraction", ...)` | `AudioFeatureExtractionPipeline` (a new task: embeddings, see `embedding_pipeline`) |

Nothing else is changed, and nothing is registered under transformers' own model types.

Without importing torch or transformers: each row needs one transformers module (the Auto config, model, feature
extractor and processor modules, the pipeline registry). A row runs at once when its module is already imported,
and otherwise right after that module's first import (a finder on `sys.meta_path` that watches these five module
names only, and does nothing once all have run). Whatever a program imports first, the Auto classes know these
models before they can be used, and `import spectrogram_transformers` alone stays cheap (`--help` needs no torch).

Models and feature extractors are registered as `DeferredClass` stand-ins: the real class's name and config
class, importing the real class at first use and then taking its place in the mapping. The real classes cannot
be imported inside the hook, because transformers' modeling code may itself be importing the Auto modules then.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["DeferredClass", "register_with_transformers"]

_PACKAGE = __name__.rpartition(".")[0]

# model_type -> (config "module:Class", {Auto class: "module:Class"}); modules relative to the package
_FAMILIES: dict[str, tuple[str, dict[str, str]]] = {
    "ast": (
        "modeling.ast.configuration_ast:ASTConfig",
        {
            "AutoModel": "modeling.ast.modeling_ast:ASTModel",
            "AutoModelForAudioClassification": "modeling.ast.modeling_ast:ASTForAudioClassification",
            "AutoFeatureExtractor": "feature_extraction.feature_extraction_ast:ASTFeatureExtractor",
        },
    ),
    "ssast": (
        "modeling.ssast.configuration_ssast:SSASTConfig",
        {
            "AutoModel": "modeling.ssast.modeling_ssast:SSASTModel",
            "AutoModelForAudioClassification": "modeling.ssast.modeling_ssast:SSASTForAudioClassification",
            "AutoModelForPreTraining": "modeling.ssast.modeling_ssast:SSASTForPreTraining",
            # SSAST shares AST's front end (the original dataloaders are bit-identical)
            "AutoFeatureExtractor": "feature_extraction.feature_extraction_ast:ASTFeatureExtractor",
        },
    ),
    "htsat": (
        "modeling.htsat.configuration_htsat:HTSATConfig",
        {
            "AutoModel": "modeling.htsat.modeling_htsat:HTSATModel",
            "AutoModelForAudioClassification": "modeling.htsat.modeling_htsat:HTSATForAudioClassification",
            "AutoFeatureExtractor": "feature_extraction.feature_extraction_htsat:HTSATFeatureExtractor",
        },
    ),
}
_MODEL_AUTO_CLASSES = ("AutoModel", "AutoModelForAudioClassification", "AutoModelForPreTraining")


def _import(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(f"{_PACKAGE}.{module}"), name)


class _DeferredClassType(type):
    """Metaclass of the stand-ins: every attribute a stand-in lacks (`from_pretrained`, `_from_config`, ...), a
    call, and isinstance/issubclass checks go to the real class, imported on first use."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(cls.resolve(), name)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.resolve()(*args, **kwargs)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls.resolve())

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, cls.resolve())


class DeferredClass(metaclass=_DeferredClassType):
    """Stands in for one of this package's classes in an Auto mapping until the class is first used."""

    _reference: str = ""
    _replace: Callable[[type], None] | None = None

    @classmethod
    def resolve(cls) -> type:
        real = _import(cls._reference)
        if cls._replace is not None:
            cls._replace(real)  # the mapping now holds the real class
        return real


def _deferred(reference: str, config_class: type, replace: Callable[[type], None]) -> type:
    module, _, name = reference.partition(":")
    return _DeferredClassType(
        name,
        (DeferredClass,),
        {
            "__module__": f"{_PACKAGE}.{module}",
            "__qualname__": name,
            "config_class": config_class,
            "_reference": reference,
            "_replace": staticmethod(replace),
        },
    )


def _config_classes() -> dict[str, type]:
    return {model_type: _import(config) for model_type, (config, _) in _FAMILIES.items()}


def _register_configs(configuration_auto: ModuleType) -> None:
    for model_type, config_class in _config_classes().items():
        configuration_auto.AutoConfig.register(model_type, config_class, exist_ok=True)


def _register_models(modeling_auto: ModuleType) -> None:
    configs = _config_classes()
    for model_type, (_, classes) in _FAMILIES.items():
        for auto_name in _MODEL_AUTO_CLASSES:
            if auto_name in classes:
                auto_class = getattr(modeling_auto, auto_name)
                config_class = configs[model_type]

                def replace(real: type, auto_class=auto_class, config_class=config_class) -> None:
                    auto_class.register(config_class, real, exist_ok=True)

                auto_class.register(config_class, _deferred(classes[auto_name], config_class, replace), exist_ok=True)


def _register_feature_extractors(feature_extraction_auto: ModuleType) -> None:
    _register_extractors_with(feature_extraction_auto.AutoFeatureExtractor)


def _register_processors(processing_auto: ModuleType) -> None:
    _register_extractors_with(processing_auto.AutoProcessor)


def _register_extractors_with(auto_class: type) -> None:
    configs = _config_classes()
    for model_type, (_, classes) in _FAMILIES.items():
        config_class = configs[model_type]

        def replace(real: type, config_class=config_class) -> None:
            auto_class.register(config_class, real, exist_ok=True)

        auto_class.register(
            config_class, _deferred(classes["AutoFeatureExtractor"], config_class, replace), exist_ok=True
        )


# this package's modules that define the pipeline classes; each imports `transformers.pipelines` at its top
_PIPELINE_MODULES = (f"{_PACKAGE}.pipelines", f"{_PACKAGE}.embedding_pipeline")
_pipeline_registration_waiting = False


def _initializing(name: str) -> bool:
    """Whether module `name` is being executed right now (importlib marks its spec while it runs)."""
    module = sys.modules.get(name)
    return module is not None and bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _register_pipelines(pipelines: ModuleType, finished: str | None = None) -> None:
    global _pipeline_registration_waiting
    # Importing one of our pipeline modules first imports `transformers.pipelines`, whose hook lands here while that
    # module is still half-defined: the registration then waits for the end of it (`finish_pipeline_module`).
    if any(_initializing(name) for name in _PIPELINE_MODULES if name != finished):
        _pipeline_registration_waiting = True
        return
    _pipeline_registration_waiting = False
    from .embedding_pipeline import register_embedding_pipeline
    from .pipelines import register_pipeline

    register_pipeline(pipelines.PIPELINE_REGISTRY)
    register_embedding_pipeline()


def finish_pipeline_module(name: str) -> None:
    """The last statement of each pipeline module: runs the pipeline registration if it waited for that module."""
    if _pipeline_registration_waiting and "transformers.pipelines" in sys.modules:
        _register_pipelines(sys.modules["transformers.pipelines"], finished=name)


# transformers module -> what to register once it is imported
_HOOKS: dict[str, Callable[[ModuleType], None]] = {
    "transformers.models.auto.configuration_auto": _register_configs,
    "transformers.models.auto.modeling_auto": _register_models,
    "transformers.models.auto.feature_extraction_auto": _register_feature_extractors,
    "transformers.models.auto.processing_auto": _register_processors,
    "transformers.pipelines": _register_pipelines,
}


class _RunAfterExec(importlib.abc.Loader):
    """Wraps a watched module's loader: executes the module, then the registration waiting for it."""

    def __init__(self, loader: importlib.abc.Loader, callback: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._callback = callback

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader, ... of the real loader
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._callback(module)


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a watched name, asks the other finders and wraps the loader they return."""

    def __init__(self, pending: dict[str, Callable[[ModuleType], None]]) -> None:
        self._pending = pending
        self._lock = threading.Lock()

    def find_spec(self, name: str, path=None, target=None):
        if name not in self._pending:
            return None
        with self._lock:  # (the finder stays on sys.meta_path: removing it while the import system walks the
            callback = self._pending.pop(name, None)  # list would skip the next finder; empty, it costs one lookup)
        if callback is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RunAfterExec(spec.loader, callback)
                return spec
        return None


_installed = False


def register_with_transformers() -> None:
    """Register this package with transformers now where the needed transformers module is imported, else as soon
    as it is (idempotent; called by `import spectrogram_transformers`)."""
    global _installed
    if _installed:
        return
    _installed = True
    pending = {}
    for name, callback in _HOOKS.items():
        module = sys.modules.get(name)
        if module is not None:
            callback(module)
        else:
            pending[name] = callback
    if pending:
        sys.meta_path.insert(0, _AfterImportFinder(pending))
