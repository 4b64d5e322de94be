"""Multi-label clip ranking evaluation (paper 002 §2.5, TRECVID DSDI): per-clip class scores against each clip's
set of true classes -> LRAP, per-class AP (whole list and capped at depth k) and their means, and a report.

    clips, scores = clip_scores_of(table, classes)           # per-frame rows -> per-clip max (or as they are)
    truth = truth_matrix(clips, read_label_truth("shots.csv", classes), classes)   # (clips, classes) 1 / -1 / 0
    result = evaluate_multilabel(truth, scores, classes, k=1000)
    write_multilabel_report("report/C04", result, name="C04", frequency=train_counts)

The arithmetic is scikit-learn's (``avs.eval.ranking``: ``label_ranking_average_precision_score``,
``average_precision_score``); AP at depth k is trec_eval's cut-off AP over the top-k list (TRECVID's lists are
capped at 1000 shots); ``ap_voc07`` is the VOC 2007 devkit's 11-point interpolated AP (paper 001). Truth is a
flag per clip and class: 1 true, -1 false, 0 "difficult" (VOC: left out of that class's APs, as the devkit
does). A class with no true clip has no AP and is left out of the means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from avs.eval.ranking import average_precision_at_k, clip_max, lrap, voc07_average_precision
from avs.eval.report import _agg_figure, _write_csv, _write_json
from avs.tables import markdown_table

DEFAULT_K = 1000  # TRECVID DSDI: a run lists at most 1000 shots per class


def clip_scores_of(table: pa.Table, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """A ``clip_scores`` predictions table -> ``(clip ids (clips,), scores (clips, classes))``: rows of the same
    clip (a shot's frames) are reduced by their max per class (002 §2.5: "selected max confidence value as the
    output for each feature in a shot-clip"); a table with one row per clip is returned as it is (sorted)."""
    missing = [c for c in classes if c not in table.column_names]
    if missing:
        raise ValueError(f"predictions have no score column for {missing[:3]}")
    ids = [str(v) for v in table.column("clip_id").to_pylist()]
    scores = np.stack([table.column(c).to_numpy(zero_copy_only=False) for c in classes], axis=1).astype(np.float64)
    return clip_max(ids, scores)


def _key(clip_id: str) -> str:
    """``shot/shot007`` / ``image/a/b`` / ``shot007.mp4`` -> ``shot007`` / ``b``: how truth files name clips."""
    return Path(str(clip_id).rsplit("/", 1)[-1]).stem


def read_label_truth(path: str | Path, classes: Sequence[str]) -> dict[str, np.ndarray]:
    """Truth flags ``{id: (classes,) int8}`` (1 true, -1 false, 0 difficult) from a truth CSV / TSV ``id,
    labels`` (labels separated by ``|``, ``;`` or ``,``: a LADI-style ``shots.csv``; an id with no label is
    negative for every class) or a Pascal VOC 2007 folder (every split's ImageSets flags, difficult included)."""
    from avs.data.voc import SPLITS, is_voc_root, read_voc_flags

    if is_voc_root(path):
        out: dict[str, np.ndarray] = {}
        for split in SPLITS:
            try:
                out.update(read_voc_flags(path, split, tuple(classes)))
            except FileNotFoundError:
                continue
        if not out:
            raise FileNotFoundError(f"{path}: no VOC split with flags in ImageSets/Main")
        return out
    from avs.data.ladi import read_shot_truth

    index = {c: j for j, c in enumerate(classes)}
    flags = {}
    for key, labels in read_shot_truth(path, classes).items():
        f = np.full(len(classes), -1, np.int8)
        f[[index[c] for c in labels if c in index]] = 1
        flags[key] = f
    return flags


def truth_matrix(clips: Sequence[str], truth: Mapping[str, np.ndarray], classes: Sequence[str]) -> np.ndarray:
    """``(clips, classes)`` int8 flags of ``clips`` (1 / -1 / 0). Clips are matched to the truth by id or by its
    file stem; a clip the truth does not name is an error (an incomplete truth would make every AP wrong)."""
    by_key = {_key(k): v for k, v in truth.items()}
    out = np.full((len(clips), len(classes)), -1, dtype=np.int8)
    unknown = []
    for i, clip in enumerate(clips):
        flags = truth.get(str(clip), by_key.get(_key(clip)))
        if flags is None:
            unknown.append(str(clip))
            continue
        out[i] = flags
    if unknown:
        raise ValueError(f"the truth names no labels for {len(unknown)} clip(s) (first: {unknown[:3]})")
    return out


def evaluate_multilabel(
    truth: np.ndarray, scores: np.ndarray, classes: Sequence[str], k: int | None = DEFAULT_K
) -> dict[str, Any]:
    """``truth``: ``(clips, classes)`` flags (1 / -1 / 0 difficult) or bool. LRAP over the clips with a true class
    (scikit-learn; difficult counts as false there, as LRAP has no "ignore"), and per class over its non-difficult
    clips: AP over the whole ranked list (scikit-learn), AP at depth ``k`` and the VOC 2007 11-point AP; mAP of
    each over the classes with a true clip."""
    flags = np.asarray(truth)
    flags = np.where(flags, 1, -1).astype(np.int8) if flags.dtype == bool else flags.astype(np.int8)
    scores = np.asarray(scores, dtype=np.float64)
    if flags.shape != scores.shape or flags.shape[1] != len(classes):
        raise ValueError(f"truth {flags.shape} and scores {scores.shape} for {len(classes)} classes")
    positive = flags > 0
    rows = positive.any(axis=1)
    per_class = {}
    for j, c in enumerate(classes):
        keep = flags[:, j] != 0
        per_class[c] = {
            "positives": int(positive[:, j].sum()),
            "difficult": int((~keep).sum()),
            "ap": average_precision_at_k(positive[keep, j], scores[keep, j], None),
            "ap_at_k": average_precision_at_k(positive[keep, j], scores[keep, j], k),
            "ap_voc07": voc07_average_precision(flags[:, j], scores[:, j]),
        }

    def mean(key: str) -> float | None:
        values = [v[key] for v in per_class.values() if v[key] is not None]
        return float(np.mean(values)) if values else None

    return {
        "task": "multilabel",
        "n_clips": int(len(flags)),
        "lrap": lrap(positive[rows], scores[rows]) if rows.any() else None,
        "map": mean("ap"),
        "map_at_k": mean("ap_at_k"),
        "map_voc07": mean("ap_voc07"),
        "k": k,
        "classes_with_positives": int(sum(v["positives"] > 0 for v in per_class.values())),
        "per_class": per_class,
    }


def plot_ap_bars(
    per_class: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    frequency: Mapping[str, float] | None = None,
    title: str = "",
    frequency_label: str = "training images",
) -> None:
    """Paper 002 Fig. 4's view: AP per class as bars, the classes ordered by ``frequency`` (most frequent
    first) and that frequency drawn on a second axis; classes without a true clip are drawn empty (no AP)."""
    classes = list(per_class)
    freq = {c: float((frequency or {}).get(c, per_class[c].get("positives", 0))) for c in classes}
    order = sorted(classes, key=lambda c: (-freq[c], c))
    ap = [per_class[c]["ap"] for c in order]
    fig = _agg_figure(max(6.0, 0.35 * len(order) + 2.0), 4.5)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(order))
    ax.bar(x, [0.0 if v is None else v for v in ap], color=["#4c72b0" if v is not None else "none" for v in ap])
    for i, v in enumerate(ap):
        if v is None:
            ax.text(i, 0.02, "no true clip", rotation=90, ha="center", va="bottom", fontsize=7, color="grey")
    ax.set_ylim(0, 1)
    ax.set_ylabel("average precision")
    ax.set_xticks(x)
    ax.set_xticklabels(order, rotation=70, ha="right", fontsize=7)
    twin = ax.twinx()
    twin.plot(x, [freq[c] for c in order], color="#dd8452", marker="o", ms=3, lw=1)
    twin.set_ylabel(frequency_label if frequency else "true clips", color="#dd8452")
    twin.set_ylim(bottom=0)
    ax.set_title(title or "AP per class (bars) and class frequency (line)")
    fig.tight_layout()
    fig.savefig(str(path), dpi=110)


def write_multilabel_report(
    out_dir: str | Path, result: Mapping[str, Any], name: str = "", frequency: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """``out_dir/metrics.json``, ``per_class.csv`` / ``.md`` (positives, AP, AP@k, frequency) and ``ap.png``
    (``plot_ap_bars``); returns the metrics without the per-class part."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    k = result["k"]
    header = ["class", "positives", "difficult", "ap", f"ap_at_{k}", "ap_voc07_11pt", "frequency"]
    rows = [
        [c, v["positives"], v["difficult"], v["ap"], v["ap_at_k"], v["ap_voc07"], (frequency or {}).get(c)]
        for c, v in result["per_class"].items()
    ]
    _write_csv(out / "per_class.csv", header, rows)
    fmt = [[r[0], r[1], r[2], *[None if v is None else round(v, 4) for v in r[3:6]], r[6]] for r in rows]
    (out / "per_class.md").write_text(markdown_table(header, fmt))
    plot_ap_bars(
        result["per_class"], out / "ap.png", frequency, title=f"{name}: AP per class (mAP {_fmt(result['map'])})"
    )
    _write_json(out / "metrics.json", {**result, "frequency": dict(frequency) if frequency else None})
    return {key: v for key, v in result.items() if key != "per_class"}


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def write_multilabel_comparison(out_dir: str | Path, systems: Mapping[str, Mapping[str, Any]]) -> str:
    """``multilabel_systems.csv`` / ``.md``: LRAP, mAP and mAP@k of every system side by side -> the markdown."""
    out = Path(out_dir)
    header = ["system", "clips", "lrap", "map", "map_at_k", "map_voc07", "k"]
    rows = [[n, m["n_clips"], m["lrap"], m["map"], m["map_at_k"], m["map_voc07"], m["k"]] for n, m in systems.items()]
    _write_csv(out / "multilabel_systems.csv", header, rows)
    md = markdown_table(
        ["system", "clips", "LRAP", "mAP (sklearn AP)", "mAP@k", "mAP (VOC07 11-point)", "k"],
        [[n, c, _fmt(a), _fmt(b), _fmt(d), _fmt(e), k] for n, c, a, b, d, e, k in rows],
    )
    (out / "multilabel_systems.md").write_text(md)
    return md
