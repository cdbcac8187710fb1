"""Evaluation metrics of the AST / HTS-AT papers: accuracy (ESC-50, Speech Commands) and mAP, mean AUC and
d-prime (AudioSet).

Why plain numpy / scikit-learn and not `evaluate.load("accuracy")`: `evaluate.load` fetches metric scripts from
the Hub (and a local module file is copied into the modules cache and imported dynamically), which is fragile
offline and gives nothing a Trainer's `compute_metrics` needs beyond a function of (logits, labels). The
definitions follow the original code (YuanGongND/ast `src/utilities/stats.py`, which calls scikit-learn per
class): AP is `average_precision_score`, AUC is `roc_auc_score`, d' = sqrt(2) * Φ⁻¹(mean AUC).

One deliberate difference: a class with no positive (or no negative) example in the evaluation set has no
defined AP/AUC; scikit-learn warns and returns a meaningless 0 (AP) or raises (AUC). Such classes are left out
of the means here and counted in `num_scored_classes`, so a small evaluation set never crashes or silently
drags the mean down.
"""

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

__all__ = [
    "accuracy",
    "average_precision_per_class",
    "build_compute_metrics",
    "d_prime",
    "mean_average_precision",
    "multi_label_metrics",
    "roc_auc_per_class",
    "single_label_metrics",
]


def _as_2d_scores(scores: np.ndarray, name: str = "scores") -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"{name} must have shape (examples, classes), got {scores.shape}")
    return scores


def _as_multi_hot(targets: np.ndarray, num_classes: int) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.ndim == 1:  # class ids -> one-hot
        one_hot = np.zeros((targets.shape[0], num_classes), dtype=np.float64)
        one_hot[np.arange(targets.shape[0]), targets.astype(np.int64)] = 1.0
        return one_hot
    if targets.ndim != 2 or targets.shape[1] != num_classes:
        raise ValueError(f"targets must be class ids (N,) or multi-hot (N, {num_classes}), got {targets.shape}")
    # mixed-up (soft) targets count as positive where the label is present at all
    return (targets > 0).astype(np.float64)


def accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of examples whose arg-max class is the target (class ids, or the arg-max of one-hot rows)."""
    logits = _as_2d_scores(logits, "logits")
    targets = np.asarray(targets)
    target_ids = targets.argmax(axis=1) if targets.ndim == 2 else targets.astype(np.int64)
    if target_ids.shape[0] != logits.shape[0]:
        raise ValueError(f"{logits.shape[0]} predictions but {target_ids.shape[0]} targets")
    if logits.shape[0] == 0:
        raise ValueError("accuracy of an empty evaluation set is undefined")
    return float(np.mean(logits.argmax(axis=1) == target_ids))


def _scorable_classes(multi_hot: np.ndarray) -> np.ndarray:
    """Classes that have at least one positive and one negative example (AP and AUC are defined)."""
    positives = multi_hot.sum(axis=0)
    return np.flatnonzero((positives > 0) & (positives < multi_hot.shape[0]))


def average_precision_per_class(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """AP of every class (NaN for classes without both positives and negatives)."""
    # scikit-learn is the [train] extra: imported here, so that a base install can import this module
    from sklearn.metrics import average_precision_score

    scores = _as_2d_scores(scores)
    multi_hot = _as_multi_hot(targets, scores.shape[1])
    result = np.full(scores.shape[1], np.nan)
    for k in _scorable_classes(multi_hot):
        result[k] = average_precision_score(multi_hot[:, k], scores[:, k])
    return result


def roc_auc_per_class(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """ROC AUC of every class (NaN for classes without both positives and negatives)."""
    # scikit-learn is the [train] extra: imported here, so that a base install can import this module
    from sklearn.metrics import roc_auc_score

    scores = _as_2d_scores(scores)
    multi_hot = _as_multi_hot(targets, scores.shape[1])
    result = np.full(scores.shape[1], np.nan)
    for k in _scorable_classes(multi_hot):
        result[k] = roc_auc_score(multi_hot[:, k], scores[:, k])
    return result


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    per_class = average_precision_per_class(scores, targets)
    if np.all(np.isnan(per_class)):
        raise ValueError("no class has both positive and negative examples: mAP is undefined")
    return float(np.nanmean(per_class))


def d_prime(auc: float) -> float:
    """Sensitivity index of the AudioSet papers: sqrt(2) * Φ⁻¹(AUC) (infinite for AUC 1, 0 for chance)."""
    if auc >= 1.0 or auc <= 0.0:  # the normal quantile's limits (the standard library refuses 0 and 1)
        return math.copysign(math.inf, auc - 0.5)
    return NormalDist().inv_cdf(auc) * math.sqrt(2.0)


def multi_label_metrics(logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """mAP, mean AUC and d-prime of multi-label predictions (scores may be logits or probabilities: both are
    rank-based, and the sigmoid is monotonic)."""
    scores = _as_2d_scores(logits, "logits")
    ap = average_precision_per_class(scores, targets)
    auc = roc_auc_per_class(scores, targets)
    scored = ~np.isnan(ap)
    if not scored.any():
        raise ValueError("no class has both positive and negative examples: mAP/AUC are undefined")
    mean_auc = float(np.mean(auc[scored]))
    return {
        "mAP": float(np.mean(ap[scored])),
        "mAUC": mean_auc,
        "d_prime": d_prime(mean_auc),
        "num_scored_classes": int(scored.sum()),
    }


def single_label_metrics(logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    return {"accuracy": accuracy(logits, targets)}


def build_compute_metrics(problem_type: str) -> Callable:
    """A `Trainer` `compute_metrics` function for the problem type (`EvalPrediction` -> dict of floats)."""
    if problem_type == "multi_label_classification":
        metric_fn = multi_label_metrics
    elif problem_type == "single_label_classification":
        metric_fn = single_label_metrics
    else:
        raise ValueError(f"no metrics for problem_type {problem_type!r}")

    def compute_metrics(eval_prediction) -> dict[str, float]:
        logits = eval_prediction.predictions
        if isinstance(logits, tuple):  # (logits, hidden states...) when the model returns more
            logits = logits[0]
        return metric_fn(logits, eval_prediction.label_ids)

    return compute_metrics
