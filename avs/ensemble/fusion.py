"""Ensemble and post-processing rules of paper 000 (sec. 2.4, equation (1)); pure functions on ``Scores``.

The paper's system E02 (Table 2) and how ``ensemble_paper000`` computes it:

  1. Per model, per 10-s file: the mean of the confidences of its 1-s audio segments (10) or frames (12; five
     per test video) -- "For each 10 seconds file, we equally made an ensemble of the output confidences of each
     split audio file and image frame file"                                   -> ``average_segments``
  2. Per family, the equal mean of its models: A04 = A01-A03, V04 = V01-V03, C04 (one model)
     (Table 2, "Ensemble of A01-A03")                                         -> ``combine_families``
  3. Confidence replacement, per video family (V04 and C04): "for each sample, we replaced the confidences of
     video models with those of audio models when the maximum confidence of 10 classes from video models is
     0.20 lower than that of audio models"                                    -> ``replace_low_confidence``
  4. Class-wise ensemble E01 of A04 / V04 / C04 with equal weights, the audio family taking part only in the
     bus / park / tram columns: "we used only bus/park/tram classes' confidence scores and discard the other
     classes in ensemble"                                                     -> ``classwise_select``
  5. Post-processing E02 = equation (1) on E01's confidences                  -> ``postprocess_clamp``

Points the paper leaves open, decided here (each is a parameter):
  - Step 3 compares the audio family's max with each video family's own max (the paper says "video models";
    CLIP models are video models too, sec. 2.3). Rows are replaced whole (all 10 classes). Strict ">" margin.
  - Step 4: per class, the mean over the families that take part in that class; rows are then renormalised to
    sum to 1 (``renormalize=True``). The DCASE 2021 evaluation computed log-loss with scikit-learn < 1.5, which
    renormalised rows itself, so this changes no reported number; scikit-learn >= 1.5 no longer does.
  - Step 5 is applied to the final ensemble (Table 2: "E01 with Post-Processing") without renormalising
    (``renormalize=False``: equation (1) as written); ``avs.eval.metrics`` renormalises rows as the DCASE
    evaluation did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from avs.ensemble.scores import Scores, as_scores

PAPER000_AUDIO_CLASSES = ("bus", "park", "tram")  # paper 000 sec. 2.4
PAPER000_REPLACE_MARGIN = 0.20  # paper 000 sec. 2.4


@dataclasses.dataclass(frozen=True)
class ClampConfig:
    """Equation (1) of paper 000: f(x) = low_value for 0 < x <= low; mid_value for low < x <= mid;
    x for mid < x <= high; high_value for high < x <= 1."""

    low: float = 0.06
    mid: float = 0.20
    high: float = 0.70
    low_value: float = 0.001
    mid_value: float = 0.06
    high_value: float = 0.99

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.mid <= self.high <= 1.0:
            raise ValueError(f"ClampConfig: need 0 <= low <= mid <= high <= 1, got {self.low}, {self.mid}, {self.high}")


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
    audio_classes: tuple[str, ...] = PAPER000_AUDIO_CLASSES  # classes where the audio family takes part
    replace_margin: float | None = PAPER000_REPLACE_MARGIN  # None: no confidence replacement
    renormalize: bool = True  # rows sum to 1 after the class-wise combination
    postprocess: bool = True  # equation (1) on the final ensemble (E02)
    clamp: ClampConfig = ClampConfig()


# ------------------------------------------------------------------------------------------------ rules


def average_segments(scores: Scores | pa.Table) -> Scores:
    """Mean confidence over the rows of each clip: "For each 10 seconds file, we equally made an ensemble of the
    output confidences of each split audio file and image frame file" (paper 000 sec. 2.4).

    Input: one row per 1-s segment or frame (``clip_id`` repeated); output: one row per clip, in order of first
    appearance.
    """
    s = as_scores(scores)
    uniq, first, inverse = np.unique(s.clip_ids, return_index=True, return_inverse=True)
    sums = np.zeros((len(uniq), s.probs.shape[1]))
    np.add.at(sums, inverse, s.probs)
    means = sums / np.bincount(inverse, minlength=len(uniq))[:, None]
    order = np.argsort(first, kind="stable")
    return Scores(uniq[order], means[order], s.classes)


def _aligned(families: Sequence[Scores]) -> list[Scores]:
    if not families:
        raise ValueError("no score tables to combine")
    ref = families[0]
    out = [ref]
    for s in families[1:]:
        if s.classes != ref.classes:
            raise ValueError(f"class lists differ: {list(s.classes)} vs {list(ref.classes)}")
        if len(s) != len(ref) or set(s.clip_ids) != set(ref.clip_ids):
            only_ref = sorted(set(ref.clip_ids) - set(s.clip_ids))[:3]
            only_s = sorted(set(s.clip_ids) - set(ref.clip_ids))[:3]
            raise ValueError(f"score tables cover different clips (e.g. only first: {only_ref}; only other: {only_s})")
        out.append(s if np.array_equal(s.clip_ids, ref.clip_ids) else s.reorder(ref.clip_ids))
    return out


def _normalize_rows(p: np.ndarray) -> np.ndarray:
    total = p.sum(axis=1, keepdims=True)
    return np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)


def combine_families(
    families: Sequence[Scores | pa.Table] | Mapping[str, Scores | pa.Table],
    weights: Sequence[float] | Mapping[str, float] | None = None,
    class_masks: Mapping[int | str, Sequence[str]] | None = None,
    renormalize: bool = False,
) -> Scores:
    """Weighted mean of several score tables, class by class (one row per clip; rows aligned by clip id).

    ``weights``: one per family (default equal: the paper's "equally made an ensemble"). ``class_masks``:
    family (index or name) -> the classes it takes part in (default: all); for each class the mean runs over the
    families taking part in it: ``sum_f w_f m_fc p_fc / sum_f w_f m_fc``. ``renormalize``: rows sum to 1 after.
    """
    names: list[str | int]
    if isinstance(families, Mapping):
        names = list(families)
        tables = [as_scores(families[n]) for n in names]
    else:
        tables = [as_scores(f) for f in families]
        names = list(range(len(tables)))
    tables = _aligned(tables)
    classes = tables[0].classes
    if weights is None:
        w = np.ones(len(tables))
    elif isinstance(weights, Mapping):
        w = np.asarray([float(weights.get(n, 0.0)) for n in names])
    else:
        w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(tables),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"need one non-negative weight per family ({len(tables)}), not all zero; got {weights}")
    mask = np.ones((len(tables), len(classes)))
    for key, cls in (class_masks or {}).items():
        idx = names.index(key) if key in names else None
        if idx is None:
            raise KeyError(f"class_masks names unknown family {key!r}; families: {names}")
        mask[idx] = 0.0
        mask[idx, tables[0].class_index(cls)] = 1.0
    wm = w[:, None] * mask  # (families, classes)
    denom = wm.sum(axis=0)
    if (denom <= 0).any():
        empty = [classes[j] for j in np.flatnonzero(denom <= 0)]
        raise ValueError(f"no family takes part in classes {empty}")
    stacked = np.stack([t.probs for t in tables])  # (families, clips, classes)
    probs = (stacked * wm[:, None, :]).sum(axis=0) / denom
    if renormalize:
        probs = _normalize_rows(probs)
    return Scores(tables[0].clip_ids, probs, classes)


def classwise_select(
    audio: Scores | pa.Table,
    video: Scores | pa.Table | Sequence[Scores | pa.Table],
    classes: Sequence[str] = PAPER000_AUDIO_CLASSES,
    renormalize: bool = True,
) -> Scores:
    """Class-wise audio-visual ensemble, paper 000 sec. 2.4: "audio classification models are generally worse
    than video classification models (Table 2). Due to the reason, we used the good accuracy's class score ...
    Therefore, we used only bus/park/tram classes' confidence scores and discard the other classes in ensemble."

    ``video``: one table or several video families (the paper: V04 and C04). For a class in ``classes`` the
    result is the equal mean of the audio and every video family; for any other class, the equal mean of the
    video families only (the audio scores are discarded there). E.g. with A, V, C:
    ``tram = (A + V + C) / 3`` and ``airport = (V + C) / 2``. ``renormalize``: rows then sum to 1.
    """
    videos = [video] if isinstance(video, (Scores, pa.Table)) else list(video)
    return combine_families([audio, *videos], class_masks={0: tuple(classes)}, renormalize=renormalize)


def low_confidence_rows(
    video: Scores | pa.Table, audio: Scores | pa.Table, margin: float = PAPER000_REPLACE_MARGIN
) -> np.ndarray:
    """(n,) bool, rows (aligned to ``video``) where ``max(audio) - max(video) > margin``."""
    v, a = _aligned([as_scores(video), as_scores(audio)])
    return a.probs.max(axis=1) - v.probs.max(axis=1) > margin


def replace_low_confidence(
    video: Scores | pa.Table, audio: Scores | pa.Table, margin: float = PAPER000_REPLACE_MARGIN
) -> Scores:
    """Confidence replacement, paper 000 sec. 2.4: "for each sample, we replaced the confidences of video models
    with those of audio models when the maximum confidence of 10 classes from video models is 0.20 lower than that
    of audio models. This method improves the recognition performance on night scenes" (Fig. 2).

    Rows of ``video`` whose max confidence is more than ``margin`` below the max confidence of ``audio`` (same
    clip) get the audio row, all classes; other rows are unchanged. Rows follow ``video``'s order.
    """
    v, a = _aligned([as_scores(video), as_scores(audio)])
    rows = a.probs.max(axis=1) - v.probs.max(axis=1) > margin
    probs = v.probs.copy()
    probs[rows] = a.probs[rows]
    return v.with_probs(probs)


def postprocess_clamp(
    scores: Scores | pa.Table | np.ndarray, cfg: ClampConfig = ClampConfig(), renormalize: bool = False
) -> Scores | np.ndarray:
    """Equation (1) of paper 000, applied to every confidence x::

        f(x) = 0.001  when 0    < x <= 0.06
               0.06   when 0.06 < x <= 0.20
               x      when 0.20 < x <= 0.70
               0.99   when 0.70 < x <= 1.0

    ("we avoided the extreme confidence value (e.g. x = 0 ~ 0.001 and 0.99 ~ 1.0) by clamping with the small
    offset"). x = 0 exactly (outside the first interval as printed) also maps to 0.001, the rule's purpose; x > 1
    maps to 0.99. Thresholds and values come from ``cfg``. An array in gives an array out.
    """
    s = None if isinstance(scores, np.ndarray) else as_scores(scores)
    x = np.asarray(scores if s is None else s.probs, dtype=np.float64)
    out = np.select(
        [x <= cfg.low, x <= cfg.mid, x <= cfg.high],
        [cfg.low_value, cfg.mid_value, x],
        default=cfg.high_value,
    )
    if renormalize:
        out = _normalize_rows(out)
    return out if s is None else s.with_probs(out)


def mean_of_models(models: Sequence[Scores | pa.Table]) -> Scores:
    """Equal mean of several models of one family after averaging each over its segments (A04 = A01-A03)."""
    return combine_families([average_segments(m) for m in models])


def ensemble_paper000(
    audio_models: Sequence[Scores | pa.Table],
    video_families: Mapping[str, Sequence[Scores | pa.Table]],
    cfg: EnsembleConfig = EnsembleConfig(),
) -> dict[str, Scores]:
    """The whole rule of paper 000 sec. 2.4 (see the module docstring), every stage returned by name.

    ``audio_models``: per-segment (or per-clip) scores of the log-mel CNNs; ``video_families``: e.g.
    ``{"frame": [V01, V02, V03], "clip": [C04]}``. Returns ``{"audio": A04, "<family>": V04 / C04 (before
    replacement), "<family>_replaced": ..., "ensemble": E01, "ensemble_pp": E02 (if cfg.postprocess)}``.
    """
    out: dict[str, Scores] = {"audio": mean_of_models(audio_models)}
    replaced = []
    for name, models in video_families.items():
        fam = mean_of_models(models)
        out[name] = fam
        if cfg.replace_margin is not None:
            fam = replace_low_confidence(fam, out["audio"], cfg.replace_margin)
            out[f"{name}_replaced"] = fam
        replaced.append(fam)
    out["ensemble"] = classwise_select(out["audio"], replaced, cfg.audio_classes, renormalize=cfg.renormalize)
    if cfg.postprocess:
        out["ensemble_pp"] = postprocess_clamp(out["ensemble"], cfg.clamp)
    return out
