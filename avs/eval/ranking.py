"""Paper 002 §2.5: frame scores -> shot-clip scores -> a ranked list of clips per class, score fusion, and the
ranking metrics (LRAP, AP, AP at depth k), with scikit-learn doing the metric arithmetic.

    clips, scores = clip_max(frame_clip_ids, frame_scores)       # (clips,), (clips, classes): max over frames
    ranked = top_k(clips, scores, classes, k=1000)               # {class: [(clip, score), ...] best first}
    fused = fuse([scores_a, scores_b], weights=[2, 1])           # Table 3's 2:1 fusion (equal weights: ensemble)
    ap = average_precision_at_k(truth_c, scores_c, k=1000)       # TRECVID lists are capped at k
    lrap(truth_soft >= 0.5, scores)                              # Table 2's LRAP (sklearn)
    voc07_average_precision(flags_c, scores_c)                   # VOC 2007 devkit 11-point AP (paper 001)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def clip_max(clip_ids: Sequence[str], frame_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame scores ``(frames, classes)`` of frames from ``clip_ids`` -> (sorted unique clip ids,
    ``(clips, classes)`` maxima): "selected max confidence value as the output for each feature in a shot-clip"."""
    ids = np.asarray(list(clip_ids), dtype=object)
    scores = np.asarray(frame_scores, dtype=np.float64)
    if scores.ndim != 2 or len(ids) != len(scores):
        raise ValueError(f"clip_max: {len(ids)} clip ids for frame scores of shape {scores.shape}")
    clips, inverse = np.unique(ids.astype(str), return_inverse=True)
    out = np.full((len(clips), scores.shape[1]), -np.inf)
    np.maximum.at(out, inverse, scores)
    return clips, out


def top_k(
    clips: Sequence[str], scores: np.ndarray, classes: Sequence[str], k: int = 1000
) -> dict[str, list[tuple[str, float]]]:
    """For each class, the ``k`` clips with the highest score, best first (ties: clip id order)."""
    clips = np.asarray(list(clips), dtype=object)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(clips), len(classes)):
        raise ValueError(f"top_k: scores {scores.shape} for {len(clips)} clips x {len(classes)} classes")
    order_ids = np.argsort(clips.astype(str), kind="stable")
    out: dict[str, list[tuple[str, float]]] = {}
    for j, name in enumerate(classes):
        col = scores[order_ids, j]
        best = order_ids[np.argsort(-col, kind="stable")[:k]]
        out[name] = [(str(clips[i]), float(scores[i, j])) for i in best]
    return out


def fuse(score_sets: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of several systems' ``(clips, classes)`` scores on the same clips (None: equal weights, the
    paper's "merged with equal weight"; [2, 1] and [5, 1]: Table 3's fusions with another team's model)."""
    arrays = [np.asarray(s, dtype=np.float64) for s in score_sets]
    if not arrays or any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError("fuse: one or more score arrays of the same shape expected")
    w = np.ones(len(arrays)) if weights is None else np.asarray(list(weights), dtype=np.float64)
    if w.shape != (len(arrays),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"fuse: {len(arrays)} non-negative weights expected, got {list(w)}")
    return np.tensordot(w / w.sum(), np.stack(arrays), axes=1)


def average_precision_at_k(truth: np.ndarray, scores: np.ndarray, k: int | None = None) -> float | None:
    """AP of one class over the clips ranked by ``scores``, counting only the top ``k`` (None: all).

    With R relevant clips, AP@k = (1 / R) sum over the relevant clips at ranks r <= k of precision@r (trec_eval's
    cut-off AP). It is computed as scikit-learn's ``average_precision_score`` on the top-k list times the share
    of the relevant clips that list holds; for k >= the number of clips it is sklearn's AP itself. None when the
    class has no relevant clip."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(truth).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    relevant = int(y.sum())
    if relevant == 0:
        return None
    if k is None or k >= len(s):
        return float(average_precision_score(y, s))
    top = np.argsort(-s, kind="stable")[:k]
    found = int(y[top].sum())
    if found == 0:
        return 0.0
    if found == len(top):  # every listed clip relevant: precision 1 at each rank
        return found / relevant
    return float(average_precision_score(y[top], s[top])) * found / relevant


def mean_average_precision(
    truth: np.ndarray, scores: np.ndarray, classes: Sequence[str], k: int | None = 1000
) -> dict[str, object]:
    """Per-class AP@k and their mean over the classes with a relevant clip: ``{"map", "per_class", "k"}``."""
    truth = np.asarray(truth).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    per_class = {c: average_precision_at_k(truth[:, j], scores[:, j], k) for j, c in enumerate(classes)}
    values = [v for v in per_class.values() if v is not None]
    return {"map": float(np.mean(values)) if values else None, "per_class": per_class, "k": k}


def lrap(truth: np.ndarray, scores: np.ndarray) -> float:
    """Label ranking average precision (scikit-learn), as paper 002's Table 2; truth binarised by the caller."""
    from sklearn.metrics import label_ranking_average_precision_score

    return float(label_ranking_average_precision_score(np.asarray(truth).astype(int), np.asarray(scores)))


def voc07_average_precision(flags: np.ndarray, scores: np.ndarray) -> float | None:
    """The Pascal VOC 2007 devkit's classification AP (``VOCevalcls.m``), for paper 001's transfer task: images
    sorted by decreasing score (ties in input order, as MATLAB's ``sort``), flags 1 = true, -1 = false, 0 =
    "difficult" (neither a true nor a false positive: left out); precision / recall at every rank; AP = the mean
    over recall thresholds t = 0, 0.1, ..., 1 of the largest precision at recall >= t (0 where none). None when
    the class has no true image."""
    f = np.asarray(flags).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if f.shape != s.shape or f.ndim != 1:
        raise ValueError(f"voc07_average_precision: flags {f.shape} and scores {s.shape} must be equal 1-D")
    if not np.isin(f, (-1, 0, 1)).all():
        raise ValueError("voc07_average_precision: flags must be 1, -1 or 0 (difficult)")
    positives = int((f > 0).sum())
    if positives == 0:
        return None
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(f[order] > 0)
    fp = np.cumsum(f[order] < 0)
    rec = tp / positives
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = tp / (tp + fp)  # nan where only difficult images were seen: MATLAB's max ignores NaN too
    ap = 0.0
    for t in np.linspace(0.0, 1.0, 11):
        p = prec[(rec >= t) & ~np.isnan(prec)]
        ap += (p.max() if p.size else 0.0) / 11.0
    return float(ap)
