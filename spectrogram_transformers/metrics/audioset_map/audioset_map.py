"""mAP, mean ROC AUC and d-prime of multi-label scores (AudioSet), as in the AST / HTS-AT papers; an `evaluate`
module around `spectrogram_transformers.training.metrics`."""

import datasets
import evaluate
import numpy as np

from spectrogram_transformers.training.metrics import average_precision_per_class, multi_label_metrics

_DESCRIPTION = """mAP (mean over classes of scikit-learn's average precision), mAUC and d' = sqrt(2) * inverse normal
CDF(mAUC) of (N, C) scores (logits or probabilities) against (N, C) multi-hot references. Classes without both a
positive and a negative example are left out of the means (`num_scored_classes`)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: (N, C) scores.
    references: (N, C) multi-hot targets (values > 0 count as positive).
    per_class: also return `per_class_ap` (NaN for classes that cannot be scored).
Returns:
    {"mAP", "mAUC", "d_prime", "num_scored_classes"} (+ "per_class_ap").
"""

_CITATION = """@inproceedings{gong21b_interspeech, title={{AST: Audio Spectrogram Transformer}}, author={Gong, Yuan and Chung, Yu-An and Glass, James}, booktitle={Proc. Interspeech 2021}, year={2021}}"""


class AudiosetMap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("float64")),
                }
            ),
        )

    def _compute(self, predictions, references, per_class: bool = False):
        scores, targets = np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64)
        result = multi_label_metrics(scores, targets)
        if per_class:
            result["per_class_ap"] = average_precision_per_class(scores, targets).tolist()
        return result
