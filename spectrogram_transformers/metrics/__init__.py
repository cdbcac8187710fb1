"""The package's metrics as `evaluate` modules, shipped inside the package and loaded offline by path:

    import evaluate
    from spectrogram_transformers import metrics

    audioset = evaluate.load(metrics.path("audioset_map"))     # mAP, mAUC, d-prime (+ per-class AP on request)
    audioset.compute(predictions=scores, references=multi_hot, per_class=True)
    accuracy = evaluate.load(metrics.path("clip_accuracy"))    # arg-max accuracy of (N, C) scores vs class ids

Both call `spectrogram_transformers.training.metrics` (the functions `train`, `ensemble` and `evaluate` use), so
a user's own `Trainer` script gets the same numbers; `evaluate.load` of a local folder reads nothing from the Hub.
"""

from pathlib import Path

__all__ = ["METRICS", "path"]

METRICS = ("audioset_map", "clip_accuracy")


def path(name: str) -> str:
    """The folder of a metric module, for `evaluate.load`."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; the package ships {METRICS}")
    return str(Path(__file__).resolve().parent / name)
