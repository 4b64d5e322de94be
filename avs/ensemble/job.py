"""The ensemble job (``avs ensemble``): prediction files of several models -> paper 000's ensemble stages.

    summary = run_ensemble(EnsembleJobConfig(out="ens", audio=("preds/a01",), frame=("preds/v01",),
                                             clip=("preds/c04",)))

Families (paper 000 Table 2): A = log-mel CNNs (A01-A03 -> A04), V = frame CNNs (V01-V03 -> V04), C = CLIP
late fusion (C04; zero-shot C01-C03 predictions work too). ``avs.ensemble.ensemble_paper000`` computes the
stages: per model the mean over a clip's segments / frames, per family the equal mean of its models,
confidence replacement of each video family by the audio family (margin 0.20), the class-wise ensemble E01
(audio only in bus / park / tram) and the clamp of equation (1), E02. ``weight_audio`` / ``weight_frame`` /
``weight_clip`` weight the families in E01 (the paper: equal); with unequal weights E01 is the same class-wise
rule with those weights (``avs.ensemble.combine_families``).

Writes into ``out`` (one row per clip): ``A04.parquet``, ``V04.parquet``, ``C04.parquet`` (the families present),
``V04_replaced.parquet`` / ``C04_replaced.parquet`` (after confidence replacement), ``E01.parquet``,
``E02.parquet``: ``clip_id``, ``label`` (truth from the predictions, "" when unknown), ``scene_label`` (arg max),
one float column per class. With ``segments`` (default) also ``segments/<stage>.parquet`` on 1-s segments:
the families on their own rows (A04 per audio segment, V04 / C04 per frame) and E01 / E02 per audio segment,
each segment paired with the mean of each video family's frames inside ``[start_s, end_s)`` (the nearest
frame when none is inside). ``ensemble.json`` (members, stages, counts) and ``config.yaml`` come last.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import yaml

import avs
from avs.config import to_dict
from avs.ensemble.fusion import (
    PAPER000_AUDIO_CLASSES,
    PAPER000_REPLACE_MARGIN,
    ClampConfig,
    EnsembleConfig,
    combine_families,
    ensemble_paper000,
    postprocess_clamp,
    replace_low_confidence,
)
from avs.ensemble.scores import Scores
from avs.flags import opt
from avs.shards.storage import Storage

FAMILY_STAGE = {"audio": "A04", "frame": "V04", "clip": "C04"}  # paper 000 Table 2 names
KEY_SEP = "\x1f"  # clip_id / segment separator of segment-level score ids


@dataclasses.dataclass(frozen=True)
class EnsembleJobConfig:
    out: str = opt(
        help="output folder: A04/V04/C04/E01/E02.parquet (one row per clip), segments/<stage>.parquet, "
        "ensemble.json, config.yaml"
    )
    audio: tuple[str, ...] = opt(
        (), "prediction folders / files of log-mel CNNs (family A: A01-A03 -> A04)", nargs="+", metavar="PRED"
    )
    frame: tuple[str, ...] = opt(
        (), "prediction folders / files of frame CNNs (family V: V01-V03 -> V04)", nargs="+", metavar="PRED"
    )
    clip: tuple[str, ...] = opt(
        (),
        "prediction folders / files of the CLIP Late Fusion Network (C04) or zero-shot CLIP (C01-C03) (family C)",
        nargs="+",
        metavar="PRED",
    )
    weight_audio: float = opt(1.0, "weight of family A in the class-wise ensemble E01 (paper 000 sec. 2.4: equal)")
    weight_frame: float = opt(1.0, "weight of family V in E01")
    weight_clip: float = opt(1.0, "weight of family C in E01")
    audio_classes: tuple[str, ...] = opt(
        PAPER000_AUDIO_CLASSES,
        "classes where the audio family takes part in E01 (paper 000 sec. 2.4)",
        aliases=("--classes",),
        metavar="CLASS,...",
    )
    margin: float | None = opt(
        PAPER000_REPLACE_MARGIN, "confidence replacement margin; none: no replacement (paper 000 sec. 2.4)"
    )
    renormalize: bool = opt(True, "E01 rows renormalised to sum to 1")
    postprocess: bool = opt(True, "E02 = equation (1) on E01")
    clamp: ClampConfig = opt(ClampConfig(), "equation (1) thresholds and values (flags --clamp, --clamp-values)")
    segments: bool = opt(True, "also the 1-s segment-level stages (segments/)")

    def __post_init__(self) -> None:
        if not (self.frame or self.clip):
            raise ValueError("ensemble: give prediction files of at least one video family (--frame / --clip)")
        if min(self.weight_audio, self.weight_frame, self.weight_clip) < 0:
            raise ValueError("ensemble: family weights must be >= 0")
        if self.margin is not None and self.margin < 0:
            raise ValueError("ensemble: margin must be >= 0 (or none)")

    def ensemble_config(self) -> EnsembleConfig:
        return EnsembleConfig(
            audio_classes=tuple(self.audio_classes),
            replace_margin=self.margin,
            renormalize=self.renormalize,
            postprocess=self.postprocess,
            clamp=self.clamp,
        )


@dataclasses.dataclass(frozen=True)
class Member:
    path: str
    table: pa.Table  # rows of one model's predictions
    classes: tuple[str, ...]


def _load(paths: Sequence[str]) -> list[Member]:
    from avs.predictions import read_predictions

    out = []
    for p in paths:
        table, classes = read_predictions(p)
        out.append(Member(p, table, classes))
    return out


def _row_scores(m: Member, classes: tuple[str, ...]) -> Scores:
    missing = [c for c in classes if c not in m.classes]
    if missing:
        raise ValueError(f"{m.path}: no class columns {missing}; it has {list(m.classes)}")
    return Scores.from_arrow(m.table, classes=classes)


def _segment_scores(m: Member, classes: tuple[str, ...]) -> Scores:
    """Row-level scores keyed ``clip_id<sep>segment`` (unique per row)."""
    s = _row_scores(m, classes)
    ids = np.char.add(
        np.char.add(s.clip_ids.astype(str), KEY_SEP), np.asarray(m.table.column("segment").to_pylist()).astype(str)
    )
    return Scores(ids, s.probs, classes)


def _split_ids(ids: np.ndarray) -> tuple[list[str], list[int]]:
    parts = [i.split(KEY_SEP) for i in ids]
    return [p[0] for p in parts], [int(p[1]) for p in parts]


def _truth(members: Sequence[Member]) -> dict[str, str]:
    """clip_id -> label (first non-empty), from every prediction table."""
    truth: dict[str, str] = {}
    for m in members:
        if "label" not in m.table.column_names:
            continue
        for cid, lab in zip(m.table.column("clip_id").to_pylist(), m.table.column("label").to_pylist(), strict=True):
            if lab and not truth.get(cid):
                truth[cid] = lab
    return truth


def _table(s: Scores, truth: dict[str, str], segments: bool = False) -> pa.Table:
    t = s.to_arrow()
    if segments:
        clips, segs = _split_ids(s.clip_ids)
        t = t.set_column(0, "clip_id", pa.array(clips, pa.string()))
        t = t.add_column(1, "segment", pa.array(segs, pa.int32()))
        labels = [truth.get(c, "") for c in clips]
    else:
        labels = [truth.get(c, "") for c in s.clip_ids]
    return t.add_column(1, "label", pa.array(labels, pa.string()))


def pair_frames(audio_table: pa.Table, audio_ids: np.ndarray, frames: Member, frame_scores: Scores) -> Scores:
    """Per audio segment row: the mean of the frame rows of the same clip with ``start_s`` in the segment's
    ``[start_s, end_s)``; the nearest frame (to the segment's middle) when none is inside. Rows follow
    ``audio_ids``."""
    f_clip = np.asarray(frames.table.column("clip_id").to_pylist(), dtype=str)
    f_time = np.asarray(frames.table.column("start_s").to_pylist(), dtype=np.float64)
    by_clip: dict[str, np.ndarray] = {}
    order = np.argsort(f_clip, kind="stable")
    uniq, starts = np.unique(f_clip[order], return_index=True)
    ends = list(starts[1:]) + [len(order)]
    for c, a, b in zip(uniq, starts, ends, strict=True):
        by_clip[str(c)] = order[a:b]
    a_clip = audio_table.column("clip_id").to_pylist()
    a_start = np.asarray(audio_table.column("start_s").to_pylist(), dtype=np.float64)
    a_end = np.asarray(audio_table.column("end_s").to_pylist(), dtype=np.float64)
    probs = np.empty((len(a_clip), frame_scores.probs.shape[1]))
    for i, c in enumerate(a_clip):
        rows = by_clip.get(c)
        if rows is None or len(rows) == 0:
            raise ValueError(f"clip {c!r} has audio predictions but no frame predictions in {frames.path}")
        t = f_time[rows]
        inside = rows[(t >= a_start[i]) & (t < a_end[i])]
        if len(inside) == 0:
            inside = rows[[int(np.argmin(np.abs(t - 0.5 * (a_start[i] + a_end[i]))))]]
        probs[i] = frame_scores.probs[inside].mean(axis=0)
    return Scores(audio_ids, probs, frame_scores.classes)


def _family_rows(members: list[Member], classes: tuple[str, ...]) -> Scores:
    """Equal mean of a family's models, row by row (rows matched by clip_id + segment)."""
    return combine_families([_segment_scores(m, classes) for m in members])


def _e01(audio: Scores | None, videos: list[Scores], cfg: EnsembleJobConfig, video_weights: list[float]) -> Scores:
    if audio is None:
        return combine_families(videos, weights=video_weights, renormalize=cfg.renormalize)
    return combine_families(
        [audio, *videos],
        weights=[cfg.weight_audio, *video_weights],
        class_masks={0: tuple(cfg.audio_classes)},
        renormalize=cfg.renormalize,
    )


def run_ensemble(cfg: EnsembleJobConfig, stream: TextIO | None = None) -> dict[str, Any]:
    """Compute and write the ensemble stages of ``cfg`` (see the module docstring); returns the summary."""
    log = stream or sys.stderr
    t_start = time.perf_counter()
    families = {"audio": _load(cfg.audio), "frame": _load(cfg.frame), "clip": _load(cfg.clip)}
    families = {k: v for k, v in families.items() if v}
    everyone = [m for ms in families.values() for m in ms]
    classes = everyone[0].classes
    for m in everyone:
        if set(m.classes) != set(classes):
            raise ValueError(f"{m.path}: classes {list(m.classes)} differ from {everyone[0].path}: {list(classes)}")
    unknown = [c for c in cfg.audio_classes if c not in classes]
    if unknown:
        raise ValueError(f"audio_classes {unknown} are not classes of the predictions {list(classes)}")
    truth = _truth(everyone)
    video_names = [f for f in ("frame", "clip") if f in families]
    video_weights = [cfg.weight_frame if f == "frame" else cfg.weight_clip for f in video_names]
    ecfg = cfg.ensemble_config()

    # ---- clip level (paper 000 sec. 2.4)
    video_families = {f: [_row_scores(m, classes) for m in families[f]] for f in video_names}
    stages: dict[str, Scores] = {}
    if "audio" in families:
        res = ensemble_paper000([_row_scores(m, classes) for m in families["audio"]], video_families, ecfg)
        stages["A04"] = res["audio"]
        for f in video_names:
            stages[FAMILY_STAGE[f]] = res[f]
            if f"{f}_replaced" in res:
                stages[f"{FAMILY_STAGE[f]}_replaced"] = res[f"{f}_replaced"]
        stages["E01"] = res["ensemble"]
        weights = [cfg.weight_audio, *video_weights]
        if len(set(weights)) > 1:  # the paper's rule with unequal family weights
            replaced = [stages.get(f"{FAMILY_STAGE[f]}_replaced", stages[FAMILY_STAGE[f]]) for f in video_names]
            stages["E01"] = _e01(stages["A04"], replaced, cfg, video_weights)
    else:
        from avs.ensemble.fusion import mean_of_models

        for f in video_names:
            stages[FAMILY_STAGE[f]] = mean_of_models(video_families[f])
        stages["E01"] = _e01(None, [stages[FAMILY_STAGE[f]] for f in video_names], cfg, video_weights)
    if cfg.postprocess:
        stages["E02"] = postprocess_clamp(stages["E01"], cfg.clamp)

    out = Storage(cfg.out)
    out.makedirs()
    written: dict[str, str] = {}
    for name, s in stages.items():
        out.write_table(f"{name}.parquet", _table(s, truth))
        written[name] = out.path(f"{name}.parquet")

    # ---- 1-s segment level
    seg_written: dict[str, str] = {}
    if cfg.segments:
        seg_stages: dict[str, Scores] = {}
        fam_rows = {f: _family_rows(families[f], classes) for f in families}
        for f, s in fam_rows.items():
            seg_stages[FAMILY_STAGE[f]] = s
        if "audio" in families:
            ref = families["audio"][0]
            a_ids = _segment_scores(ref, classes).clip_ids
            audio_rows = fam_rows["audio"].reorder(list(a_ids))  # rows of ref, in ref's order
            paired = []
            for f in video_names:
                first = families[f][0]
                rows = fam_rows[f].reorder(list(_segment_scores(first, classes).clip_ids))
                p = pair_frames(ref.table, a_ids, first, rows)
                if cfg.margin is not None:
                    p = replace_low_confidence(p, audio_rows, cfg.margin)
                paired.append(p)
            seg_stages["E01"] = _e01(audio_rows, paired, cfg, video_weights)
            if cfg.postprocess:
                seg_stages["E02"] = postprocess_clamp(seg_stages["E01"], cfg.clamp)
        out.makedirs("segments")
        for name, s in seg_stages.items():
            out.write_table(f"segments/{name}.parquet", _table(s, truth, segments=True))
            seg_written[name] = out.path(f"segments/{name}.parquet")

    report_stages = [s for s in ("A04", "V04", "C04", "E01", "E02") if s in stages]
    summary = {
        "config": to_dict(cfg),
        "members": {f: [m.path for m in ms] for f, ms in families.items()},
        "classes": list(classes),
        "clips": len(stages["E01"]),
        "labelled_clips": sum(1 for c in stages["E01"].clip_ids if truth.get(c)),
        "stages": written,
        "segment_stages": seg_written,
        "report_stages": report_stages,
        "seconds": round(time.perf_counter() - t_start, 3),
        "version": avs.__version__,
    }
    out.write_bytes("config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False).encode())
    out.write_bytes("ensemble.json", (json.dumps(summary, indent=2) + "\n").encode())
    print(f"[avs ensemble] {summary['clips']} clips, stages {list(stages)} -> {out.uri}", file=log, flush=True)
    return summary
