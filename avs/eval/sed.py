"""Sound event detection metrics (paper 003, DCASE 2020 Task 4), computed by sed_eval and sed_scores_eval.

    f1 = event_based_f1(detected, truth)           # {"macro", "micro", "per_class", ...} (sed_eval)
    seg = segment_based_f1(detected, truth, durations=durations)   # 1-s segments (sed_eval)
    dfs = score_dataframes(frame_scores, classes, hop_s, durations)  # sed_scores_eval's score DataFrames
    res = psds(dfs, truth, durations, PSDS_SCENARIOS["psds"])        # {"value", "per_class", "roc"}
    m = evaluate_sed(truth, durations, frame_scores=FrameScores(...))  # everything avs evaluate reports

Nothing here re-computes a metric: event / segment F1 are ``sed_eval.sound_event.EventBasedMetrics`` /
``SegmentBasedMetrics`` fed file by file as the DCASE 2020 baseline's ``evaluation_measures.py`` does, PSDS is
``sed_scores_eval.intersection_based.psds``. Inputs are plain Python: ``{clip: [(onset_s, offset_s, label)]}``
for events (clips keyed by audio id, ``avs.eval.sed_post.audio_id``), ``{clip: seconds}`` for durations,
``{clip: (frames, classes) array}`` for frame scores.

Settings (every number from paper 003 sec. 4.2 or the DCASE 2021 Task 4 rules):
  - event-based F1: onset collar 200 ms, offset collar max(200 ms, 20 % of the event) (``t_collar=0.2,
    percentage_of_length=0.2``; sed_eval's own default is 0.5); macro = mean of the class-wise F1 over the
    classes that have truth events (sed_eval's class-wise average), micro = the overall F1;
  - segment-based F1: 1-s segments;
  - PSDS ``psds``: paper 003 (dtc 0.5, gtc 0.5, cttc 0.3, alpha_ct 1, alpha_st 0, e_max 100 per hour);
    ``psds1`` (dtc 0.7, gtc 0.7, alpha_ct 0, alpha_st 1, e_max 100) and ``psds2`` (dtc 0.1, gtc 0.1, cttc 0.3,
    alpha_ct 0.5, alpha_st 1, e_max 100): the DCASE 2021 scenarios.

PSDS is computed two ways, and every result says which (``psds_method``):
  - "threshold-free": sed_scores_eval on the (median-filtered) frame scores: every distinct score is a
    threshold (Ebbers et al., ICASSP 2022);
  - "operating points": on a set of detections at several thresholds, as psds_eval did: the published
    DCASE 2020 numbers used 50 thresholds 0.01, 0.03, ..., 0.99. From frame scores, the scores are snapped to
    those thresholds (``sed_post.snap_to_thresholds``), which reproduces the 50-point PSDS (TRAINING.md); from
    a folder of ``*_th_<t>.tsv`` detections, a piecewise-constant score is rebuilt (each moment scores the
    largest threshold whose detections cover it), which thresholded at each ``t`` gives back exactly the
    detections of ``t`` when they are nested (a detection at a higher threshold lies inside one at a lower
    threshold, as thresholds of one score always are; other folders are refused with a reason).
sed_scores_eval needs truth events for every class it scores: classes with none are left out of PSDS (listed
in ``psds_classes_without_truth``).

The frame-scores predictions layout that ``avs evaluate`` reads is ``FRAME_SCORES_LAYOUT`` below.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from avs.eval.sed_post import (
    DEFAULT_THRESHOLD,
    Event,
    audio_id,
    dcase_filename,
    decode_events,
    frame_timestamps,
    median_filter,
    operating_thresholds,
    snap_to_thresholds,
)

T_COLLAR_S = 0.2  # paper 003 sec. 4.2 / the baseline: event-based F1 with a 200 ms collar
PERCENTAGE_OF_LENGTH = 0.2  # ... and an offset collar of 20 % of the event's length
SEGMENT_S = 1.0  # segment-based F1 on 1-s segments (the baseline's time_resolution=1.)

# The predictions layout of kind "frame_scores" (avs predict of an SED task; avs evaluate reads it):
FRAME_SCORES_LAYOUT = """\
one row per (clip, output frame), rows of a clip in frame order:
  clip_id    string   the clip (a DESED manifest's "<subset>/<stem>", or any id)
  segment    int32    the frame index in the clip, 0-based; frame t covers [t hop_s, (t + 1) hop_s)
  start_s    float64  t hop_s (seconds from the clip's start; informational)
  end_s      float64  (t + 1) hop_s
  filename   string   optional: the DCASE file name ("Y...wav"); the clip's audio id (the key it is matched
                      to the truth TSV's audio_id(filename) by) is audio_id(filename), else audio_id(clip_id):
                      clip_id's last path part, less a media extension (avs.eval.sed_post.audio_id)
  <class>    float64  one column per class: the frame's score in [0, 1] (sigmoid), in avs.classes order
  (other columns, e.g. split, label: ignored)
schema metadata: avs.kind = b"frame_scores"; avs.hop_s = the frame hop in seconds (JSON number, e.g.
b"0.06375" for the CRNN's 157 frames per 10 s); avs.classes = the class names (JSON list)"""
FRAME_INDEX_COLUMN = "segment"


@dataclasses.dataclass(frozen=True)
class PsdsScenario:
    """The settings of one PSDS (sed_scores_eval.intersection_based.psds's arguments)."""

    dtc: float  # detection tolerance criterion
    gtc: float  # ground truth intersection criterion
    cttc: float | None  # cross-trigger tolerance criterion (None when alpha_ct is 0)
    alpha_ct: float  # weight of cross triggers in the effective FP rate
    alpha_st: float  # weight of the class instability (std of per-class TPR)
    max_efpr: float = 100.0  # e_max: false positives per hour

    def kwargs(self) -> dict[str, Any]:
        return {
            "dtc_threshold": self.dtc,
            "gtc_threshold": self.gtc,
            "cttc_threshold": self.cttc if self.alpha_ct else None,
            "alpha_ct": self.alpha_ct,
            "alpha_st": self.alpha_st,
            "max_efpr": self.max_efpr,
        }


PSDS_SCENARIOS: dict[str, PsdsScenario] = {
    "psds": PsdsScenario(dtc=0.5, gtc=0.5, cttc=0.3, alpha_ct=1.0, alpha_st=0.0, max_efpr=100.0),  # 003 sec. 4.2
    "psds1": PsdsScenario(dtc=0.7, gtc=0.7, cttc=None, alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0),  # DCASE 2021
    "psds2": PsdsScenario(dtc=0.1, gtc=0.1, cttc=0.3, alpha_ct=0.5, alpha_st=1.0, max_efpr=100.0),  # DCASE 2021
}


def _quiet_import(name: str):
    """Import a module whose imports warn about matters of their own (dcase_util: pkg_resources)."""
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


def _nan_to_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _classes_of(truth: Mapping[str, Sequence[Event]], *more: Mapping[str, Sequence[Event]]) -> list[str]:
    labels = {e[2] for events in (truth, *more) for clip in events.values() for e in clip}
    return sorted(labels)


def _files(
    truth: Mapping[str, Sequence[Event]], detected: Mapping[str, Sequence[Event]], files: Sequence[str] | None
) -> list[str]:
    if files is None:
        return sorted(set(truth) | set(detected))
    files = list(files)
    extra = sorted((set(truth) | set(detected)) - set(files))
    if extra:
        raise ValueError(f"events for {len(extra)} clip(s) outside the evaluated files, e.g. {extra[:3]}")
    return files


def _event_dicts(clip: str, events: Sequence[Event]) -> list[dict[str, Any]]:
    return [
        {"filename": clip, "onset": float(on), "offset": float(off), "event_label": str(lab)} for on, off, lab in events
    ]


def _check_labels(classes: Sequence[str], *event_sets: Mapping[str, Sequence[Event]]) -> None:
    unknown = sorted({e[2] for events in event_sets for clip in events.values() for e in clip} - set(classes))
    if unknown:
        raise ValueError(f"event labels {unknown} are not among the classes {list(classes)}")


def _f1_summary(metric: Any, classes: Sequence[str], n_files: int) -> dict[str, Any]:
    overall = metric.results_overall_metrics()["f_measure"]
    avg = metric.results_class_wise_average_metrics()["f_measure"]
    cw = metric.results_class_wise_metrics()
    return {
        "macro": _nan_to_none(avg["f_measure"]),
        "micro": _nan_to_none(overall["f_measure"]),
        "precision_micro": _nan_to_none(overall["precision"]),
        "recall_micro": _nan_to_none(overall["recall"]),
        "per_class": {c: _nan_to_none(cw[c]["f_measure"]["f_measure"]) for c in classes},
        "classes": list(classes),
        "n_files": n_files,
    }


def event_based_f1(
    detected: Mapping[str, Sequence[Event]],
    truth: Mapping[str, Sequence[Event]],
    classes: Sequence[str] | None = None,
    *,
    files: Sequence[str] | None = None,
    t_collar: float = T_COLLAR_S,
    percentage_of_length: float = PERCENTAGE_OF_LENGTH,
) -> dict[str, Any]:
    """Event-based F1 of ``detected`` against ``truth`` (sed_eval ``EventBasedMetrics``, fed one file at a time,
    ``empty_system_output_handling="zero_score"``, as the DCASE 2020 baseline): ``{"macro", "micro",
    "precision_micro", "recall_micro", "per_class": {class: F1 or None}, "classes", "n_files"}`` as fractions.

    ``classes`` default: every label in truth and detections. ``files`` default: every clip in either (a clip
    without truth events: its detections are false positives); with ``files``, events of other clips are an
    error. A class without truth events has F1 None and is left out of the macro average (sed_eval)."""
    sed_eval = _quiet_import("sed_eval")
    classes = list(classes) if classes is not None else _classes_of(truth, detected)
    _check_labels(classes, truth, detected)
    files = _files(truth, detected, files)
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=classes,
        t_collar=t_collar,
        percentage_of_length=percentage_of_length,
        empty_system_output_handling="zero_score",
    )
    for clip in files:
        metric.evaluate(
            reference_event_list=_event_dicts(clip, truth.get(clip, ())),
            estimated_event_list=_event_dicts(clip, detected.get(clip, ())),
        )
    return _f1_summary(metric, classes, len(files))


def segment_based_f1(
    detected: Mapping[str, Sequence[Event]],
    truth: Mapping[str, Sequence[Event]],
    classes: Sequence[str] | None = None,
    *,
    files: Sequence[str] | None = None,
    durations: Mapping[str, float] | None = None,
    time_resolution: float = SEGMENT_S,
) -> dict[str, Any]:
    """Segment-based F1 on ``time_resolution``-s segments (sed_eval ``SegmentBasedMetrics``, one file at a time,
    each over its duration when ``durations`` has it); the same keys as ``event_based_f1``."""
    sed_eval = _quiet_import("sed_eval")
    classes = list(classes) if classes is not None else _classes_of(truth, detected)
    _check_labels(classes, truth, detected)
    files = _files(truth, detected, files)
    metric = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=classes, time_resolution=time_resolution)
    for clip in files:
        metric.evaluate(
            reference_event_list=_event_dicts(clip, truth.get(clip, ())),
            estimated_event_list=_event_dicts(clip, detected.get(clip, ())),
            evaluated_length_seconds=None if durations is None else durations.get(clip),
        )
    return _f1_summary(metric, classes, len(files))


# ------------------------------------------------------------------------------------------------- PSDS
def score_dataframes(
    scores: Mapping[str, np.ndarray],
    classes: Sequence[str],
    hop_s: float,
    durations: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """``{clip: (frames, classes) scores}`` -> ``{clip: DataFrame}`` in sed_scores_eval's format (``onset``,
    ``offset``, one column per class; ``create_score_dataframe``), frame t spanning ``[t hop, (t + 1) hop)``
    clipped to the clip's duration (``sed_post.frame_timestamps``)."""
    sse_scores = _quiet_import("sed_scores_eval.base_modules.scores")
    out = {}
    for clip, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        ts = frame_timestamps(len(s), hop_s, None if durations is None else durations.get(clip))
        out[clip] = sse_scores.create_score_dataframe(s[: len(ts) - 1], ts, list(classes))
    return out


def _class_columns(df: Any) -> list[str]:
    return [c for c in df.columns if c not in ("onset", "offset")]


def _detectable(dfs: dict[str, Any], truth: Mapping[str, Sequence[Event]], classes: Sequence[str]) -> dict[str, Any]:
    """sed_scores_eval cannot build the ROC of a class that no threshold ever detects (all scores -inf, which
    only operating points make): give it one frame scoring 0.0, in a clip and at a time with no
    truth event of that class, so its ROC is the true (0, 0) + a false positive: TPR 0 at every eFPR, which is
    what such a class contributes, whatever the eFPR (and whatever its cross triggers)."""
    for c in classes:
        if any(np.isfinite(df[c].to_numpy()).any() for df in dfs.values()):
            continue
        for clip in sorted(dfs, key=lambda k: sum(e[2] == c for e in truth.get(k, ()))):
            df = dfs[clip]
            spans = [(e[0], e[1]) for e in truth.get(clip, ()) if e[2] == c]
            on, off = df["onset"].to_numpy(), df["offset"].to_numpy()
            free = [i for i in range(len(df)) if all(off[i] <= a or on[i] >= b for a, b in spans)]
            if free:
                df = df.copy()
                df.loc[df.index[free[0]], c] = 0.0
                dfs[clip] = df
                break
    return dfs


def psds(
    dfs: Mapping[str, Any],
    truth: Mapping[str, Sequence[Event]],
    durations: Mapping[str, float],
    scenario: PsdsScenario = PSDS_SCENARIOS["psds"],
) -> dict[str, Any]:
    """PSDS of score DataFrames (``score_dataframes``) with ``sed_scores_eval.intersection_based.psds``:
    ``{"value", "per_class": {class: single-class PSDS}, "roc": (effective TPR, effective FPR per hour),
    "classes", "classes_without_truth"}``. Every clip of ``dfs`` is evaluated (missing truth = no event); the
    classes without any truth event are left out (sed_scores_eval needs events for every class)."""
    ib = _quiet_import("sed_scores_eval.intersection_based")
    clips = sorted(dfs)
    missing = [c for c in clips if c not in durations]
    if missing:
        raise ValueError(f"no duration for {len(missing)} clip(s), e.g. {missing[:3]}")
    all_classes = _class_columns(dfs[clips[0]])
    with_truth = {e[2] for c in clips for e in truth.get(c, ())}
    classes = [c for c in all_classes if c in with_truth]
    if not classes:
        raise ValueError("no truth event in the evaluated clips: PSDS needs some")
    gt = {c: [[float(on), float(off), lab] for on, off, lab in truth.get(c, ()) if lab in classes] for c in clips}
    sub = {c: dfs[c][["onset", "offset", *classes]] for c in clips}
    sub = _detectable(sub, gt, classes)
    value, per_class, roc, _ = ib.psds(
        scores=sub, ground_truth=gt, audio_durations={c: float(durations[c]) for c in clips}, **scenario.kwargs()
    )
    return {
        "value": float(value),
        "per_class": {c: float(v) for c, v in per_class.items()},
        "roc": (np.asarray(roc[0], dtype=np.float64), np.asarray(roc[1], dtype=np.float64)),
        "classes": classes,
        "classes_without_truth": [c for c in all_classes if c not in with_truth],
    }


def snapped_dataframes(dfs: Mapping[str, Any], thresholds: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Score DataFrames with every score snapped to the operating points ``thresholds``
    (``sed_post.snap_to_thresholds``): their PSDS is the PSDS over those operating points."""
    out = {}
    for clip, df in dfs.items():
        df = df.copy()
        cols = _class_columns(df)
        df[cols] = snap_to_thresholds(df[cols].to_numpy(), thresholds)
        out[clip] = df
    return out


def operating_point_dataframes(
    detections: Mapping[float, Mapping[str, Sequence[Event]]],
    classes: Sequence[str],
    durations: Mapping[str, float],
) -> dict[str, Any]:
    """Detections at several thresholds ``{threshold: {clip: events}}`` -> score DataFrames whose thresholding at
    each of those thresholds gives back its detections: each span between two event boundaries of a clip scores,
    per class, the largest threshold whose detections cover it (-inf when none does). Raises ValueError when
    the detections are not nested (then no score gives them back)."""
    sse_scores = _quiet_import("sed_scores_eval.base_modules.scores")
    ts_sorted = sorted(detections)
    if not ts_sorted:
        raise ValueError("no operating points")
    out = {}
    for clip in sorted(durations):
        dur = float(durations[clip])
        bounds = {0.0, dur}
        for t in ts_sorted:
            for on, off, _ in detections[t].get(clip, ()):
                bounds.update((min(max(float(on), 0.0), dur), min(max(float(off), 0.0), dur)))
        edges = np.asarray(sorted(bounds), dtype=np.float64)
        mid = (edges[:-1] + edges[1:]) / 2
        covered = np.zeros((len(ts_sorted), len(mid), len(classes)), dtype=bool)  # (thresholds, spans, classes)
        index = {c: j for j, c in enumerate(classes)}
        for k, t in enumerate(ts_sorted):
            for on, off, lab in detections[t].get(clip, ()):
                if lab not in index:
                    raise ValueError(f"threshold {t}: event label {lab!r} is not among the classes {list(classes)}")
                covered[k, (mid > on) & (mid < off), index[lab]] = True
        grows = covered[1:] & ~covered[:-1]  # detected at a higher threshold, not at the lower one
        if grows.any():
            k, i, j = np.argwhere(grows)[0]
            raise ValueError(
                f"operating points are not nested: {clip} at {mid[i]:.3f} s is detected as {classes[j]!r} at "
                f"threshold {ts_sorted[k + 1]} but not at {ts_sorted[k]}; PSDS over such operating points needs "
                "psds_eval, which does not run with numpy 2"
            )
        thr = np.asarray(ts_sorted, dtype=np.float64)
        n_cov = covered.sum(axis=0)  # nested: covered at the n_cov lowest thresholds
        score = np.where(n_cov > 0, thr[np.maximum(n_cov - 1, 0)], -np.inf)
        out[clip] = sse_scores.create_score_dataframe(score, edges, list(classes))
    return out


# --------------------------------------------------------------------------------------- whole systems
@dataclasses.dataclass(frozen=True)
class FrameScores:
    """Frame scores of one system: ``scores[clip]`` is ``(frames, classes)``, frame t spanning
    ``[t hop_s, (t + 1) hop_s)``; ``filenames[clip]`` the DCASE file names (for detection TSVs)."""

    scores: Mapping[str, np.ndarray]
    classes: tuple[str, ...]
    hop_s: float
    filenames: Mapping[str, str] = dataclasses.field(default_factory=dict)


def frame_scores_from_table(table: Any, classes: Sequence[str] | None = None) -> FrameScores:
    """A predictions table of kind ``frame_scores`` (``FRAME_SCORES_LAYOUT``) -> ``FrameScores``."""
    meta = table.schema.metadata or {}
    if b"avs.hop_s" not in meta:
        raise ValueError("frame_scores predictions without avs.hop_s metadata (the frame hop in seconds)")
    hop_s = float(json.loads(meta[b"avs.hop_s"]))
    if classes is None:
        if b"avs.classes" not in meta:
            raise ValueError("frame_scores predictions without avs.classes metadata")
        classes = json.loads(meta[b"avs.classes"])
    classes = tuple(classes)
    missing = [c for c in ("clip_id", FRAME_INDEX_COLUMN, *classes) if c not in table.column_names]
    if missing:
        raise ValueError(f"frame_scores predictions lack the column(s) {missing} (layout: avs.eval.sed)")
    table = table.sort_by([("clip_id", "ascending"), (FRAME_INDEX_COLUMN, "ascending")])
    ids = np.asarray(table.column("clip_id").to_pylist(), dtype=object)
    frames = table.column(FRAME_INDEX_COLUMN).to_numpy()
    names = table.column("filename").to_pylist() if "filename" in table.column_names else None
    values = np.stack([table.column(c).to_numpy().astype(np.float64) for c in classes], axis=1)
    out: dict[str, np.ndarray] = {}
    filenames: dict[str, str] = {}
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(ids)], strict=True):
        name = names[a] if names is not None and names[a] else dcase_filename(str(ids[a]))
        key = audio_id(name)
        if key in out:
            raise ValueError(f"two clips of the predictions have the audio id {key!r}")
        if not np.array_equal(frames[a:b], np.arange(b - a)):
            raise ValueError(f"clip {ids[a]!r}: frame indices are not 0..{b - a - 1}")
        out[key] = values[a:b]
        filenames[key] = dcase_filename(name)
    return FrameScores(out, classes, hop_s, filenames)


def _restrict(events: Mapping[str, Sequence[Event]], files: Sequence[str]) -> tuple[dict[str, list[Event]], list[str]]:
    keep = set(files)
    return {k: list(v) for k, v in events.items() if k in keep}, sorted(set(events) - keep)


def _psds_block(
    dfs: dict[str, Any], truth: Mapping[str, Sequence[Event]], durations: Mapping[str, float]
) -> tuple[dict[str, Any], dict[str, Any]]:
    values: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for name, scenario in PSDS_SCENARIOS.items():
        r = psds(dfs, truth, durations, scenario)
        values[name] = r["value"]
        values[f"{name}_per_class"] = r["per_class"]
        values["classes"] = r["classes"]
        values["classes_without_truth"] = r["classes_without_truth"]
        curves[name] = r["roc"]
    return values, curves


@dataclasses.dataclass
class SedResult:
    metrics: dict[str, Any]  # what metrics.json holds for the system
    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # PSD-ROC per scenario: (effective TPR, eFPR per hour)
    detected: dict[str, list[Event]]  # the detections the F1 scores are of


def evaluate_sed(
    truth: Mapping[str, Sequence[Event]],
    durations: Mapping[str, float],
    *,
    detections: Mapping[str, Sequence[Event]] | None = None,
    operating_points: Mapping[float, Mapping[str, Sequence[Event]]] | None = None,
    frame_scores: FrameScores | None = None,
    classes: Sequence[str] | None = None,
    threshold: float | Sequence[float] | Mapping[str, float] = DEFAULT_THRESHOLD,
    median_frames: int | None = None,
    median_s: float | None = None,
    n_operating_points: int = 50,
) -> SedResult:
    """Every SED metric of one system (exactly one of ``detections``, ``operating_points``, ``frame_scores``)
    over the clips of ``durations`` (truth must be among them; system clips beyond them are left out and
    counted in ``ignored_clips``). Returns ``SedResult``; its ``metrics``:

    ``event_f1_macro``, ``event_f1_micro``, ``segment_f1_macro``, ``segment_f1_micro`` (fractions), ``psds``,
    ``psds1``, ``psds2`` (None for a single detections TSV), ``psds_method`` ("threshold-free", "operating
    points" or None), ``f1_from`` (which detections the F1 are of), ``per_class``, ``settings``; for frame
    scores also ``psds_operating_points`` (the PSDS over ``n_operating_points`` thresholds, 0: not computed).

    Frame scores: F1 on ``decode_events(scores, threshold, median_frames)``; PSDS on the median-filtered scores
    (threshold-free) and snapped to the operating points. ``median_frames`` default: from ``median_s`` (default
    0.45 s) with ``sed_post.median_window_frames``. Operating points: F1 on the smallest threshold >= 0.5 (the
    detections thresholding their rebuilt score at 0.5 gives), or the largest one."""
    from avs.eval.sed_post import DEFAULT_MEDIAN_S, median_window_frames

    given = [x is not None for x in (detections, operating_points, frame_scores)]
    if sum(given) != 1:
        raise ValueError("give exactly one of detections, operating_points, frame_scores")
    files = sorted(durations)
    truth_d, outside = _restrict(truth, files)
    if outside:
        raise ValueError(f"truth has {len(outside)} clip(s) without a duration, e.g. {outside[:3]}")
    settings: dict[str, Any] = {
        "t_collar": T_COLLAR_S,
        "percentage_of_length": PERCENTAGE_OF_LENGTH,
        "segment_s": SEGMENT_S,
        "psds_scenarios": {k: dataclasses.asdict(v) for k, v in PSDS_SCENARIOS.items()},
    }
    curves: dict[str, Any] = {}
    psds_values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    note = None
    if frame_scores is not None:
        classes = list(classes or frame_scores.classes)
        unknown = [c for c in classes if c not in frame_scores.classes]
        if unknown:
            raise ValueError(f"the frame scores have no classes {unknown}; they have {list(frame_scores.classes)}")
        _check_labels(classes, truth_d)
        if list(classes) != list(frame_scores.classes):
            order = [frame_scores.classes.index(c) for c in classes]
            frame_scores = dataclasses.replace(
                frame_scores, scores={k: v[:, order] for k, v in frame_scores.scores.items()}, classes=tuple(classes)
            )
        hop = frame_scores.hop_s
        if median_frames is None:
            median_frames = median_window_frames(DEFAULT_MEDIAN_S if median_s is None else median_s, hop)
        lacking = [f for f in files if f not in frame_scores.scores]
        if lacking:
            raise ValueError(f"no frame scores for {len(lacking)} clip(s) of the durations, e.g. {lacking[:3]}")
        ignored = sorted(set(frame_scores.scores) - set(files))
        filtered = {f: median_filter(frame_scores.scores[f], median_frames) for f in files}
        detected = {
            f: decode_events(frame_scores.scores[f], classes, hop, threshold, median_frames, durations[f])
            for f in files
        }
        settings.update({"threshold": _jsonable(threshold), "median_frames": median_frames, "hop_s": hop})
        f1_from = f"frame scores: threshold {_jsonable(threshold)}, median filter {median_frames} frames"
        dfs = score_dataframes(filtered, classes, hop, durations)
        method = "threshold-free"
        try:
            psds_values, curves = _psds_block(dfs, truth_d, durations)
        except ValueError as exc:
            method, note = None, str(exc)
        if n_operating_points and method is not None:
            thr = operating_thresholds(n_operating_points)
            op_values, op_curves = _psds_block(snapped_dataframes(dfs, thr), truth_d, durations)
            extra["psds_operating_points"] = {
                "psds": op_values["psds"],
                "psds1": op_values["psds1"],
                "psds2": op_values["psds2"],
                "n_thresholds": len(thr),
                "threshold_range": [round(float(thr[0]), 6), round(float(thr[-1]), 6)],
            }
            curves.update({f"{k} (operating points)": v for k, v in op_curves.items()})
    elif operating_points is not None:
        if not operating_points:
            raise ValueError("no operating points (no *_th_<t>.tsv files)")
        classes = list(classes) if classes else _classes_of(truth_d, *operating_points.values())
        _check_labels(classes, truth_d, *operating_points.values())
        ops: dict[float, dict[str, list[Event]]] = {}
        ignored_set: set[str] = set()
        for t, events in operating_points.items():
            ops[t], ign = _restrict(events, files)
            ignored_set.update(ign)
        ignored = sorted(ignored_set)
        ts_sorted = sorted(ops)
        f1_t = next((t for t in ts_sorted if t >= 0.5), ts_sorted[-1])
        detected = ops[f1_t]
        f1_from = f"operating point {f1_t:g} of {len(ts_sorted)}"
        settings.update({"operating_points": [float(t) for t in ts_sorted], "f1_operating_point": f1_t})
        method = "operating points"
        try:
            dfs = operating_point_dataframes(ops, classes, durations)
            psds_values, curves = _psds_block(dfs, truth_d, durations)
        except ValueError as exc:
            method, note = None, str(exc)
    else:
        assert detections is not None
        classes = list(classes) if classes else _classes_of(truth_d, detections)
        _check_labels(classes, truth_d, detections)
        detected, ignored = _restrict(detections, files)
        f1_from = "detections"
        method = None
        note = "one operating point (a detections TSV): PSDS needs scores or several operating points"
    event = event_based_f1(detected, truth_d, classes, files=files)
    segment = segment_based_f1(detected, truth_d, classes, files=files, durations=durations)
    n_truth = {c: sum(e[2] == c for f in files for e in truth_d.get(f, ())) for c in classes}
    n_det = {c: sum(e[2] == c for f in files for e in detected.get(f, ())) for c in classes}
    per_class = {
        c: {
            "n_truth": n_truth[c],
            "n_detected": n_det[c],
            "event_f1": event["per_class"][c],
            "segment_f1": segment["per_class"][c],
            "psds": (psds_values.get("psds_per_class") or {}).get(c),
        }
        for c in classes
    }
    metrics: dict[str, Any] = {
        "n_clips": len(files),
        "classes": list(classes),
        "event_f1_macro": event["macro"],
        "event_f1_micro": event["micro"],
        "segment_f1_macro": segment["macro"],
        "segment_f1_micro": segment["micro"],
        "event_precision_micro": event["precision_micro"],
        "event_recall_micro": event["recall_micro"],
        "psds": psds_values.get("psds"),
        "psds1": psds_values.get("psds1"),
        "psds2": psds_values.get("psds2"),
        "psds_method": method,
        **({"psds_note": note} if note else {}),
        **extra,
        "psds_classes_without_truth": psds_values.get("classes_without_truth", []),
        "f1_from": f1_from,
        "ignored_clips": len(ignored),
        "per_class": per_class,
        "settings": settings,
    }
    return SedResult(metrics, curves, detected)


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): float(v) for k, v in x.items()}
    if isinstance(x, np.ndarray | list | tuple):
        return [float(v) for v in np.asarray(x).ravel()]
    return float(x)
