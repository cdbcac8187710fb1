"""Arg-max accuracy of (N, C) clip scores against class ids (ESC-50, Speech Commands), as in the AST / HTS-AT papers;
an `evaluate` module around `spectrogram_transformers.training.metrics.accuracy`."""

import datasets
import evaluate
import numpy as np

from spectrogram_transformers.training.metrics import accuracy

_DESCRIPTION = "Fraction of clips whose highest-scoring class is the reference class."

_KWARGS_DESCRIPTION = """
Args:
    predictions: (N, C) scores (logits or probabilities).
    references: (N,) class ids.
Returns:
    {"accuracy"}.
"""


class ClipAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float64")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        return {"accuracy": accuracy(np.asarray(predictions, dtype=np.float64), np.asarray(references))}
