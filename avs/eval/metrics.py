"""Multi-class log-loss and accuracy (DCASE2021 Task 1B metrics, paper 000), overall and per class.

scikit-learn computes them (``log_loss``, ``accuracy_score``, ``confusion_matrix``). Rows of confidences are
renormalised to sum to 1 first (``normalize=True``): the DCASE 2021 evaluation used scikit-learn < 1.5, whose
``log_loss`` did this itself, and post-processed scores (equation (1) of paper 000) do not sum to 1.
scikit-learn >= 1.5 no longer renormalises (it warns and uses the values as given).

Per class: log-loss = mean of -log p(true class) over the clips of that class; accuracy = the fraction of that
class's clips predicted as it (the class's recall), as in the DCASE class-wise tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm


def label_indices(y_true: Sequence[Any] | np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Class names (or indices) -> ``(n,)`` int64 indices into ``classes``."""
    y = np.asarray(y_true)
    if y.dtype.kind in "iu":
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(f"label index out of range 0..{len(classes) - 1}")
        return y.astype(np.int64)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in y if str(v) not in index})
    if unknown:
        raise ValueError(f"labels not in classes: {unknown[:5]}; classes: {list(classes)}")
    return np.asarray([index[str(v)] for v in y], dtype=np.int64)


def _probs(probs: np.ndarray, n_classes: int, normalize: bool) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != n_classes:
        raise ValueError(f"probs must be (n, {n_classes}), got {p.shape}")
    if normalize:
        total = p.sum(axis=1, keepdims=True)
        p = np.divide(p, total, out=np.full_like(p, 1.0 / n_classes), where=total > 0)
    return p


def log_loss(y_true, probs: np.ndarray, classes: Sequence[str], normalize: bool = True) -> float:
    """Mean multi-class log-loss (``sklearn.metrics.log_loss`` with every class as a label)."""
    y = label_indices(y_true, classes)
    p = _probs(probs, len(classes), normalize)
    return float(skm.log_loss(y, p, labels=np.arange(len(classes))))


def accuracy(y_true, probs: np.ndarray, classes: Sequence[str]) -> float:
    """Fraction of clips whose arg-max class is the true one (``sklearn.metrics.accuracy_score``)."""
    y = label_indices(y_true, classes)
    p = np.asarray(probs)
    return float(skm.accuracy_score(y, p.argmax(axis=1)))


def confusion(y_true, probs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """``(classes, classes)`` counts, rows = true class, columns = predicted class."""
    y = label_indices(y_true, classes)
    return skm.confusion_matrix(y, np.asarray(probs).argmax(axis=1), labels=np.arange(len(classes)))


def classification_metrics(y_true, probs: np.ndarray, classes: Sequence[str], normalize: bool = True) -> dict[str, Any]:
    """``{"n", "log_loss", "accuracy", "classes", "per_class": {class: {"n", "log_loss", "accuracy"}}}``.

    Classes with no clips get ``n = 0`` and ``None`` for their metrics.
    """
    classes = list(classes)
    y = label_indices(y_true, classes)
    p = _probs(probs, len(classes), normalize)
    pred = p.argmax(axis=1)
    per_class: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(classes):
        rows = y == j
        n = int(rows.sum())
        if n == 0:
            per_class[name] = {"n": 0, "log_loss": None, "accuracy": None}
            continue
        per_class[name] = {
            "n": n,
            "log_loss": float(skm.log_loss(y[rows], p[rows], labels=np.arange(len(classes)))),
            "accuracy": float(skm.accuracy_score(y[rows], pred[rows])),
        }
    return {
        "n": int(len(y)),
        "log_loss": float(skm.log_loss(y, p, labels=np.arange(len(classes)))),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "classes": classes,
        "per_class": per_class,
    }
