"""Metrics against values computed by hand on small arrays."""

import math

import numpy as np
import pytest
from transformers import EvalPrediction

from spectrogram_transformers.training.metrics import (
    accuracy,
    average_precision_per_class,
    build_compute_metrics,
    d_prime,
    mean_average_precision,
    multi_label_metrics,
    roc_auc_per_class,
)

# class 0: scores 0.9 0.8 0.3 0.1 with targets 1 0 1 0
#   ranking 0.9(+) 0.8(-) 0.3(+) 0.1(-): precision at the positives 1/1 and 2/3 -> AP = (1 + 2/3) / 2 = 5/6
#   AUC: pairs (pos, neg) = (0.9,0.8) (0.9,0.1) (0.3,0.8) (0.3,0.1): 3 of 4 ordered -> 0.75
# class 1: scores 0.2 0.6 0.7 0.4 with targets 0 1 1 0: both positives on top -> AP 1, AUC 1
# class 2: scores 0.5 0.5 0.1 0.9 with targets 1 0 0 0: the positive ties with a negative, below a negative at 0.9
#   AP: the first threshold reaching the positive (0.5) predicts 3 clips, 1 right -> recall 1 at precision 1/3 -> 1/3
#   AUC: vs 0.5 tie (1/2), vs 0.1 win, vs 0.9 loss -> 1.5 / 3 = 0.5
SCORES = np.array([[0.9, 0.2, 0.5], [0.8, 0.6, 0.5], [0.3, 0.7, 0.1], [0.1, 0.4, 0.9]])
TARGETS = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_average_precision_by_hand():
    np.testing.assert_allclose(average_precision_per_class(SCORES, TARGETS), [5 / 6, 1.0, 1 / 3], atol=1e-12)
    assert mean_average_precision(SCORES, TARGETS) == pytest.approx((5 / 6 + 1.0 + 1 / 3) / 3)


def test_roc_auc_by_hand():
    np.testing.assert_allclose(roc_auc_per_class(SCORES, TARGETS), [0.75, 1.0, 0.5], atol=1e-12)


def test_d_prime_by_hand():
    # Φ⁻¹(0.75) = 0.6744897501960817
    assert d_prime(0.75) == pytest.approx(math.sqrt(2) * 0.6744897501960817, abs=1e-12)
    assert d_prime(0.5) == pytest.approx(0.0, abs=1e-12)


def test_multi_label_metrics_combine_and_skip_unscorable_classes():
    # a 4th class with no positive example has no AP/AUC: it is left out of the means, not counted as 0
    scores = np.concatenate([SCORES, np.array([[0.1], [0.2], [0.3], [0.4]])], axis=1)
    targets = np.concatenate([TARGETS, np.zeros((4, 1))], axis=1)
    result = multi_label_metrics(scores, targets)
    assert result["num_scored_classes"] == 3
    assert result["mAP"] == pytest.approx((5 / 6 + 1.0 + 1 / 3) / 3)
    assert result["mAUC"] == pytest.approx((0.75 + 1.0 + 0.5) / 3)
    assert result["d_prime"] == pytest.approx(d_prime((0.75 + 1.0 + 0.5) / 3))


def test_mixed_up_soft_targets_count_as_positive():
    soft = TARGETS * 0.6  # mixup weights: the label is present
    np.testing.assert_allclose(average_precision_per_class(SCORES, soft), [5 / 6, 1.0, 1 / 3])


def test_accuracy_by_hand_ids_and_one_hot():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.5, 0.2, 0.1], [0.0, 0.0, 1.0]])
    ids = np.array([0, 1, 2, 2])  # right, right, wrong, right
    assert accuracy(logits, ids) == 0.75
    assert accuracy(logits, np.eye(3)[ids]) == 0.75


def test_compute_metrics_for_trainer():
    single = build_compute_metrics("single_label_classification")
    assert single(EvalPrediction(predictions=np.array([[1.0, 0.0], [0.0, 1.0]]), label_ids=np.array([0, 0]))) == {
        "accuracy": 0.5
    }
    multi = build_compute_metrics("multi_label_classification")(EvalPrediction(predictions=SCORES, label_ids=TARGETS))
    assert multi["mAP"] == pytest.approx((5 / 6 + 1.0 + 1 / 3) / 3)


def test_metric_errors_are_clear():
    with pytest.raises(ValueError, match="no class has both"):
        mean_average_precision(SCORES, np.zeros_like(TARGETS))
    with pytest.raises(ValueError, match="shape"):
        accuracy(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="problem_type"):
        build_compute_metrics("regression")


def test_d_prime_at_the_limits_of_the_normal_quantile():
    """d' = sqrt(2)·Φ⁻¹(AUC) from the standard library: infinite at AUC 1 and 0, as scipy's ppf gives."""
    assert d_prime(1.0) == math.inf
    assert d_prime(0.0) == -math.inf
    assert d_prime(0.9) == pytest.approx(math.sqrt(2) * 1.2815515655446004, abs=1e-12)
    assert d_prime(0.1) == pytest.approx(-d_prime(0.9), abs=1e-12)
