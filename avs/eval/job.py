"""The evaluation job (``avs evaluate``): prediction / ensemble files -> a report folder.

    summary = run_evaluate(EvaluateConfig(out="report", inputs=("A01=preds/a01", "ens")))

Inputs, each ``PATH`` or ``NAME=PATH``:
  - a predictions folder / file of ``avs predict`` (one row per 1-s segment or frame): evaluated on its rows
    ("segments") and, after the mean over each clip's rows (paper 000 sec. 2.4), on whole clips;
  - an ensemble folder of ``avs ensemble``: every stage it lists (A04, V04, C04, E01, E02), on clips
    (``<stage>.parquet``) and on 1-s segments (``segments/<stage>.parquet``: audio segments for A04 / E01 / E02,
    frames for V04 / C04);
  - any score table with one row per clip (``clip_id``, ``label``, one float column per class): clips only.
The truth is each table's ``label`` column; rows with an empty or unknown label are left out.

Sound event detection (paper 003), with ``--truth TRUTH.tsv --durations DURATIONS.tsv`` (DCASE formats:
``filename onset offset event_label`` and ``filename duration``; the clips evaluated are those of DURATIONS):
  - a detections TSV (``*.tsv``: ``filename onset offset event_label``, as DCASE submissions are): event- and
    segment-based F1 (one operating point: no PSDS);
  - a folder of per-threshold detection TSVs (``*_th_0.01.tsv`` ...: psds_eval's operating points): F1 of the
    smallest threshold >= 0.5, PSDS over the operating points;
  - an ``avs predict`` folder / file of kind ``frame_scores`` (layout: ``avs.eval.sed.FRAME_SCORES_LAYOUT``):
    threshold (``--threshold``) + median filter (``--median-s``) -> events -> F1; PSDS threshold-free on the
    median-filtered scores and over ``--operating-points`` thresholds 0.01 .. 0.99.
  Each SED system gets ``<system>/`` with metrics.json (``avs.eval.sed.evaluate_sed``), per_class.csv / .md,
  psd_roc.png, detections.tsv and (frame scores) clips/<clip>.png; ``sed_systems.csv`` / ``.md`` and
  ``psd_roc.png`` compare them. Classification and SED inputs can be given together.

Multi-label clip ranking (paper 002, TRECVID DSDI), with ``--labels TRUTH.csv`` (``id, labels``: a LADI-style
``shots.csv``): an ``avs predict`` folder / file of kind ``clip_scores`` (per-frame rows: the max per clip, 002
§2.5) or an ``avs rank`` folder (one fused row per clip): LRAP (scikit-learn), AP per class over the whole
ranked list and at depth ``--k`` (1000, TRECVID's list length), mAP of both (``avs.eval.multilabel``); each
system gets ``<system>/`` with metrics.json, per_class.csv / .md and ap.png (AP bars against the class
frequency, 002 Fig. 4); ``multilabel_systems.md`` / ``.csv`` compare them.

Writes into ``out`` (through ``avs.eval.report``): ``<system>/`` (whole clips) and ``<system>/segments/`` with
metrics.json, per_class.csv / .md, confusion.csv / .png; ``systems.csv`` / ``systems.md``: one row per system,
log-loss and accuracy on segments and on clips side by side (and the SED table); ``per_class.md`` (clip accuracy
per class and system); ``report.md`` (all of it); ``metrics.json`` (every number, written last; SED systems
under ``systems`` too, with ``"task": "sed"``); ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import yaml

import avs
from avs.config import to_dict
from avs.ensemble.fusion import average_segments
from avs.ensemble.scores import Scores
from avs.eval.report import (
    SED_SUMMARY,
    _write_csv,
    plot_psd_roc,
    write_report,
    write_sed_comparison,
    write_sed_report,
)
from avs.eval.sed_post import DEFAULT_MEDIAN_S, DEFAULT_THRESHOLD, N_OPERATING_POINTS
from avs.flags import opt
from avs.tables import markdown_table

# prediction kinds (avs.predictions.KINDS) this job has metrics for: single-label classification (log-loss,
# accuracy, confusion) of clip_probs, sound event detection (with --truth) of frame_scores, multi-label ranking
# (with --labels) of clip_scores
EVALUATED_KINDS = ("clip_probs", "clip_scores", "frame_scores")
DETECTION_SUFFIXES = (".tsv", ".txt", ".csv")


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    out: str = opt(
        help="report folder (local): systems.md / .csv (side by side), report.md, metrics.json, config.yaml, "
        "and per system <name>/ and <name>/segments/ with metrics.json, per_class.csv / .md, confusion.csv / .png "
        "(SED systems: <name>/ with metrics.json, per_class.csv / .md, psd_roc.png, detections.tsv, clips/*.png; "
        "sed_systems.md / .csv and psd_roc.png side by side)"
    )
    inputs: tuple[str, ...] = opt(
        (),
        "predictions folders / files of `avs predict` (evaluated on their rows and on whole clips), ensemble "
        "folders of `avs ensemble` (every stage: A04, V04, C04, E01, E02), or per-clip score tables; with --truth, "
        "sound event detection systems: a detections TSV (filename onset offset event_label), a folder of "
        "per-threshold detection TSVs (*_th_0.01.tsv ...) or frame_scores predictions; NAME= names a system in "
        "the report (default: the folder / file name); at least one",
        positional=True,
        nargs="*",
        metavar="[NAME=]PATH",
    )
    classes: tuple[str, ...] | None = opt(
        None,
        "class names, comma-separated (default: those of the first input; SED: the frame scores' classes, or "
        "the labels of truth and detections)",
        metavar="CLASS,...",
    )
    truth: str | None = opt(
        None,
        "sound event detection truth, a DCASE TSV (filename onset offset event_label); needed by SED inputs "
        "(detections TSVs, folders of *_th_<t>.tsv, frame_scores predictions)",
        metavar="TSV",
    )
    durations: str | None = opt(
        None,
        "the clips to evaluate and their lengths, a DCASE TSV (filename duration); needed with --truth",
        metavar="TSV",
    )
    threshold: float = opt(DEFAULT_THRESHOLD, "SED: decision threshold of every class on frame scores (paper 003)")
    median_s: float = opt(
        DEFAULT_MEDIAN_S,
        "SED: median filter length (s) on frame scores, in frames max(floor(median_s / hop), 1) (paper 003: "
        "0.45 s = 7 frames of 63.75 ms)",
    )
    operating_points: int = opt(
        N_OPERATING_POINTS,
        "SED: besides the threshold-free PSDS of frame scores, the PSDS over this many thresholds 0.01 .. 0.99 "
        "(the DCASE 2020 evaluation: 50; 0: none)",
    )
    plot_clips: int = opt(4, "SED: draw scores, detections and truth of this many clips per frame-score system")
    labels: str | None = opt(
        None,
        "multi-label truth of clip_scores inputs (avs predict of a multilabel run, avs rank folders): a CSV / TSV "
        "'id, labels' (labels separated by | ; or ,), ids matching the clip ids or their file stems",
        metavar="CSV",
    )
    k: int = opt(1000, "multi-label: AP at depth k too (TRECVID DSDI lists 1000 shots per class)")

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError("evaluate: give at least one input (predictions, ensemble folder or score table)")
        if (self.truth is None) != (self.durations is None):
            raise ValueError("evaluate: --truth and --durations go together (SED inputs need both)")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"evaluate: threshold must be in [0, 1], got {self.threshold}")
        if self.k < 1:
            raise ValueError(f"evaluate: k must be >= 1, got {self.k}")
        if self.median_s < 0 or self.operating_points < 0 or self.plot_clips < 0:
            raise ValueError("evaluate: median_s, operating_points and plot_clips must be >= 0")


@dataclasses.dataclass
class System:
    name: str
    source: str
    clips: tuple[Scores, list[str]] | None  # (scores, truth per row)
    segments: tuple[Scores, list[str]] | None
    segment_kind: str = "segments"


@dataclasses.dataclass
class MultiLabelSystem:
    name: str
    source: str
    clips: np.ndarray  # (clips,) clip ids
    scores: np.ndarray  # (clips, classes)
    classes: tuple[str, ...]
    frequency: dict[str, float] | None  # per class: the training images of the run (002 Fig. 4), when known


@dataclasses.dataclass
class SedSystem:
    name: str
    source: str
    kind: str  # "detections" | "operating_points" | "frame_scores"
    data: Any  # {clip: events} | {threshold: {clip: events}} | avs.eval.sed.FrameScores


def sed_input_kind(path: str) -> str | None:
    """ "detections" (a TSV file), "operating_points" (a folder of *_th_<t>.tsv) or None (an avs file / folder)."""
    from avs.eval.sed_post import threshold_files

    if os.path.isfile(path) and path.lower().endswith(DETECTION_SUFFIXES):
        return "detections"
    if os.path.isdir(path) and threshold_files(path):
        return "operating_points"
    return None


def _split_input(text: str) -> tuple[str | None, str]:
    if "=" in text and not os.path.exists(text):
        name, path = text.split("=", 1)
        return name.strip(), path.strip()
    return None, text


def _labelled(s: Scores, labels: list[str], classes: tuple[str, ...]) -> tuple[Scores, list[str]] | None:
    keep = np.asarray([lab in classes for lab in labels], dtype=bool)
    if not keep.any():
        return None
    return Scores(s.clip_ids[keep], s.probs[keep], s.classes), [lab for lab, k in zip(labels, keep, strict=True) if k]


def _from_table(table: pa.Table, classes: tuple[str, ...], where: str) -> tuple[Scores, list[str]]:
    if "label" not in table.column_names:
        raise ValueError(f"{where}: no 'label' column (the truth); write predictions with `avs predict`")
    missing = [c for c in classes if c not in table.column_names]
    if missing:
        raise ValueError(f"{where}: no class columns {missing}")
    return Scores.from_arrow(table, classes=classes), [v or "" for v in table.column("label").to_pylist()]


def _clip_truth(clip_ids: np.ndarray, row_ids: np.ndarray, labels: list[str]) -> list[str]:
    first: dict[str, str] = {}
    for cid, lab in zip(row_ids, labels, strict=True):
        if lab and cid not in first:
            first[str(cid)] = lab
    return [first.get(str(c), "") for c in clip_ids]


def _training_frequency(table: pa.Table) -> dict[str, float] | None:
    """Per-class training rows of the run that made a predictions table (its metrics.json), when it is at hand."""
    info = json.loads((table.schema.metadata or {}).get(b"avs.predict", b"{}"))
    model = info.get("model")
    if not model:
        return None
    for folder in list(Path(model).parents)[:3]:
        metrics = folder / "metrics.json"
        if metrics.is_file():
            rows = (json.loads(metrics.read_text()).get("rows") or {}).get("train") or {}
            return {c: float(n) for c, n in (rows.get("per_class") or {}).items()} or None
    return None


def load_multilabel(path: str, name: str, table: pa.Table, table_classes, classes) -> MultiLabelSystem:
    from avs.eval.multilabel import clip_scores_of

    use = tuple(classes or table_classes)
    clips, scores = clip_scores_of(table, use)
    rank = json.loads((table.schema.metadata or {}).get(b"avs.rank", b"{}"))
    frequency = rank.get("frequency") if rank else _training_frequency(table)
    return MultiLabelSystem(name, path, clips, scores, use, frequency)


def evaluate_multilabel_systems(
    cfg: EvaluateConfig, systems: list[MultiLabelSystem], out: Path, log: TextIO
) -> dict[str, Any]:
    from avs.eval.multilabel import (
        evaluate_multilabel,
        read_label_truth,
        truth_matrix,
        write_multilabel_comparison,
        write_multilabel_report,
    )

    assert cfg.labels is not None
    results: dict[str, Any] = {}
    for s in systems:
        truth = truth_matrix(s.clips, read_label_truth(cfg.labels, s.classes), s.classes)
        res = evaluate_multilabel(truth, s.scores, s.classes, k=cfg.k)
        m = write_multilabel_report(out / s.name, res, name=s.name, frequency=s.frequency)
        results[s.name] = {"source": s.source, **m}
        lrap = "n/a" if m["lrap"] is None else f"{m['lrap']:.3f}"
        mean_ap = "n/a" if m["map"] is None else f"{m['map']:.3f}"
        print(f"[avs evaluate] {s.name}: {m['n_clips']} clips, LRAP {lrap}, mAP {mean_ap}", file=log, flush=True)
    write_multilabel_comparison(out, results)
    return results


def load_systems(
    cfg: EvaluateConfig,
) -> tuple[list[System], tuple[str, ...] | None, list[SedSystem], list[MultiLabelSystem]]:
    """The inputs of ``cfg``: (classification systems, their classes, SED systems, multi-label systems)."""
    from avs.eval.sed import frame_scores_from_table
    from avs.eval.sed_post import read_events_tsv, threshold_files
    from avs.predictions import prediction_kind, read_predictions
    from avs.shards.storage import Storage

    systems: list[System] = []
    sed: list[SedSystem] = []
    multilabel: list[MultiLabelSystem] = []
    classes = tuple(cfg.classes) if cfg.classes else None
    for item in cfg.inputs:
        name, path = _split_input(item)
        sys_name = name or Path(path.rstrip("/")).name.removesuffix(".parquet").removesuffix(".tsv")
        sed_kind = sed_input_kind(path)
        if sed_kind == "detections":
            sed.append(SedSystem(sys_name, path, sed_kind, read_events_tsv(path)))
            continue
        if sed_kind == "operating_points":
            ops = {t: read_events_tsv(p) for t, p in threshold_files(path).items()}
            sed.append(SedSystem(sys_name, path, sed_kind, ops))
            continue
        storage = Storage(path)
        if storage.exists("ensemble.json"):
            info = storage.read_json("ensemble.json")
            classes = classes or tuple(info["classes"])
            for stage in info.get("report_stages") or list(info["stages"]):
                clip_t = storage.read_table(f"{stage}.parquet")
                clips = _labelled(*_from_table(clip_t, classes, f"{path}/{stage}.parquet"), classes)
                segs = None
                kind = "segments"
                if storage.exists(f"segments/{stage}.parquet"):
                    seg_t = storage.read_table(f"segments/{stage}.parquet")
                    segs = _labelled(*_from_table(seg_t, classes, f"{path}/segments/{stage}.parquet"), classes)
                    kind = "frames" if stage in ("V04", "C04") else "1-s segments"
                label = f"{name}/{stage}" if name else stage
                systems.append(System(label, f"{path}/{stage}.parquet", clips, segs, kind))
            continue
        table, table_classes = read_predictions(path)
        kind = prediction_kind(table)
        if kind not in EVALUATED_KINDS:
            raise ValueError(
                f"{path}: avs evaluate has no metrics for {kind!r} predictions yet (it evaluates {EVALUATED_KINDS})"
            )
        if kind == "frame_scores":
            sed.append(SedSystem(sys_name, path, kind, frame_scores_from_table(table, table_classes)))
            continue
        if kind == "clip_scores":
            multilabel.append(load_multilabel(path, sys_name, table, table_classes, cfg.classes))
            continue
        classes = classes or tuple(table_classes)
        rows, labels = _from_table(table, classes, path)
        per_row = len(set(rows.clip_ids.tolist())) < len(rows)
        if per_row:
            clip_scores = average_segments(rows)
            clips = _labelled(clip_scores, _clip_truth(clip_scores.clip_ids, rows.clip_ids, labels), classes)
            segs = _labelled(rows, labels, classes)
            info = json.loads((table.schema.metadata or {}).get(b"avs.predict", b"{}"))
            source_input = info.get("input") or info.get("family")  # (family: files of avs < the engine)
            if source_input == "logmel":
                kind = "1-s segments"
            elif source_input in ("frame", "clip") or info.get("kind") == "zeroshot":
                kind = "frames"
            else:
                kind = "segments"
        else:
            clips, segs, kind = _labelled(rows, labels, classes), None, "segments"
        systems.append(System(sys_name, path, clips, segs, kind))
    if systems and classes is None:
        raise ValueError("no classes found in the inputs")
    names = [s.name for s in systems] + [s.name for s in sed] + [s.name for s in multilabel]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two inputs are named {dup}; name them with NAME=PATH")
    if sed and cfg.truth is None:
        raise ValueError(
            f"sound event detection inputs ({', '.join(s.source for s in sed)}) need --truth TRUTH.tsv and "
            "--durations DURATIONS.tsv"
        )
    if multilabel and cfg.labels is None:
        raise ValueError(
            f"multi-label inputs ({', '.join(s.source for s in multilabel)}) need --labels TRUTH.csv (id, labels)"
        )
    return systems, classes, sed, multilabel


def evaluate_sed_systems(cfg: EvaluateConfig, sed: list[SedSystem], out: Path, log: TextIO) -> dict[str, Any]:
    """Every SED system of ``sed`` against ``cfg.truth`` over the clips of ``cfg.durations``: report folders,
    the side-by-side table and one PSD-ROC of all systems; -> {name: metrics}."""
    from avs.eval.sed import evaluate_sed
    from avs.eval.sed_post import read_durations_tsv, read_events_tsv

    assert cfg.truth is not None and cfg.durations is not None
    truth = read_events_tsv(cfg.truth)
    durations = read_durations_tsv(cfg.durations)
    results: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for s in sed:
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {s.kind: s.data}
        if s.kind == "frame_scores":
            kwargs.update(median_s=cfg.median_s, threshold=cfg.threshold, n_operating_points=cfg.operating_points)
        try:
            res = evaluate_sed(truth, durations, classes=cfg.classes, **kwargs)
        except ValueError as exc:
            raise ValueError(f"{s.source}: {exc}") from None
        fs = s.data if s.kind == "frame_scores" else None
        m = write_sed_report(
            out / s.name,
            res,
            truth,
            name=s.name,
            frame_scores=fs,
            durations=durations,
            plot_clips=cfg.plot_clips,
            filenames=fs.filenames if fs is not None else None,
        )
        results[s.name] = {"task": "sed", "source": s.source, "input": s.kind, **m}
        if "psds" in res.curves:
            curves[s.name] = res.curves["psds"]
            values[s.name] = m["psds"]
        print(
            f"[avs evaluate] {s.name}: event F1 {m['event_f1_macro']}, PSDS {m['psds']} ({m['psds_method']}), "
            f"{time.perf_counter() - t0:.1f} s",
            file=log,
            flush=True,
        )
    write_sed_comparison(out, {n: m for n, m in results.items()})
    if curves:
        plot_psd_roc(
            curves, out / "psd_roc.png", title="PSD-ROC (paper 003: dtc 0.5, gtc 0.5, cttc 0.3)", values=values
        )
    return results


def run_evaluate(cfg: EvaluateConfig, stream: TextIO | None = None) -> dict[str, Any]:
    """Write the report folder of ``cfg`` (see the module docstring); returns the metrics."""
    log = stream or sys.stderr
    t_start = time.perf_counter()
    systems, classes, sed, multilabel = load_systems(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    sed_results = evaluate_sed_systems(cfg, sed, out, log) if sed else {}
    ml_results = evaluate_multilabel_systems(cfg, multilabel, out, log) if multilabel else {}
    results: dict[str, dict[str, Any]] = {}
    for s in systems:
        entry: dict[str, Any] = {"source": s.source, "segment_kind": s.segment_kind, "clips": None, "segments": None}
        if s.clips is not None:
            scores, y = s.clips
            entry["clips"] = write_report(out / s.name, y, scores.probs, classes, name=f"{s.name} (clips)")
        if s.segments is not None:
            scores, y = s.segments
            entry["segments"] = write_report(
                out / s.name / "segments", y, scores.probs, classes, name=f"{s.name} ({s.segment_kind})"
            )
        if entry["clips"] is None and entry["segments"] is None:
            raise ValueError(
                f"{s.source}: no rows with a known label (classes {list(classes)}); the truth is the "
                "'label' column (the test split has none)"
            )
        results[s.name] = entry

    header = [
        "system",
        "rows",
        "n_rows",
        "rows_log_loss",
        "rows_accuracy",
        "n_clips",
        "clips_log_loss",
        "clips_accuracy",
    ]
    rows = []
    for name, e in results.items():
        seg, clip = e["segments"] or {}, e["clips"] or {}
        rows.append(
            [
                name,
                e["segment_kind"] if e["segments"] else "-",
                seg.get("n"),
                seg.get("log_loss"),
                seg.get("accuracy"),
                clip.get("n"),
                clip.get("log_loss"),
                clip.get("accuracy"),
            ]
        )
    report = ["# avs evaluation report\n"]
    systems_md = ""
    if results:
        _write_csv(out / "systems.csv", header, rows)
        systems_md = markdown_table(
            ["system", "rows", "n", "log-loss", "accuracy", "clips", "log-loss (clips)", "accuracy (clips)"], rows
        )
        pc_header = ["class", *results]
        pc_rows = [
            [c, *[(e["clips"] or e["segments"])["per_class"][c]["accuracy"] for e in results.values()]]
            for c in classes or ()
        ]
        per_class_md = markdown_table(pc_header, pc_rows)
        (out / "per_class.md").write_text(per_class_md)
        report += [
            "Log-loss (multi-class, rows renormalised as the DCASE 2021 evaluation did) and accuracy of every "
            "system, on its rows (1-s audio segments or video frames) and on whole clips (mean over each clip's "
            "rows, paper 000 sec. 2.4).\n",
            systems_md,
            "\n## Accuracy per class (whole clips)\n",
            per_class_md,
            "\n## Confusion matrices\n",
            "".join(
                f"- {n}: `{n}/confusion.png`" + (f", `{n}/segments/confusion.png`" if e["segments"] else "") + "\n"
                for n, e in results.items()
            ),
        ]
    if sed_results:
        sed_md = (out / "sed_systems.md").read_text()
        systems_md += ("\n" if systems_md else "") + sed_md
        report += [
            "\n## Sound event detection\n" if results else "",
            "Event-based F1 (sed_eval: 200 ms onset collar, offset collar max(200 ms, 20 % of the event)) and "
            "segment-based F1 (1-s segments), macro (class average) and micro, as fractions; PSDS "
            "(sed_scores_eval) with paper 003's settings (dtc 0.5, gtc 0.5, cttc 0.3, alpha_ct 1, alpha_st 0, "
            "e_max 100) and the DCASE 2021 scenarios psds1 / psds2, threshold-free on scores or over the given "
            "operating points (column psds_method).\n",
            sed_md,
            "".join(
                f"- {n}: `{n}/per_class.md`"
                + (f", `{n}/psd_roc.png`" if m["psds"] is not None else "")
                + f" (F1 of {m['f1_from']})\n"
                for n, m in sed_results.items()
            ),
        ]
    if ml_results:
        ml_md = (out / "multilabel_systems.md").read_text()
        systems_md += ("\n" if systems_md else "") + ml_md
        report += [
            "\n## Multi-label clip ranking\n",
            f"LRAP (scikit-learn, over the clips with a true class), mAP over each class's whole ranked list and at "
            f"depth {cfg.k} (trec_eval's cut-off AP), over the classes with a true clip (paper 002 §2.5).\n",
            ml_md,
            "".join(f"- {n}: `{n}/per_class.md`, `{n}/ap.png`\n" for n in ml_results),
        ]
    (out / "systems.md").write_text(systems_md)
    (out / "report.md").write_text("\n".join(report))
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    summary = {
        "classes": list(classes or ()),
        "systems": {**results, **sed_results, **ml_results},
        "table": [dict(zip(header, r, strict=True)) for r in rows],
        "sed_table": [
            {"system": n, **{k: m.get(k) for k in ("n_clips", *SED_SUMMARY)}} for n, m in sed_results.items()
        ],
        "seconds": round(time.perf_counter() - t_start, 3),
        "version": avs.__version__,
    }
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, out / "metrics.json")
    n_systems = len(results) + len(sed_results) + len(ml_results)
    print(f"[avs evaluate] {n_systems} systems -> {out}", file=log, flush=True)
    return summary
