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

Writes into ``out`` (through ``avs.eval.report``): ``<system>/`` (whole clips) and ``<system>/segments/`` with
metrics.json, per_class.csv / .md, confusion.csv / .png; ``systems.csv`` / ``systems.md``: one row per system,
log-loss and accuracy on segments and on clips side by side; ``per_class.md`` (clip accuracy per class and
system); ``report.md`` (all of it); ``metrics.json`` (every number, written last); ``config.yaml``.
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
from avs.eval.report import _write_csv, write_report
from avs.flags import opt
from avs.tables import markdown_table

# prediction kinds (avs.predictions.KINDS) this job has metrics for: single-label classification (log-loss,
# accuracy, confusion) of clip_probs; multi-label and SED metrics come with their tasks
EVALUATED_KINDS = ("clip_probs",)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    out: str = opt(
        help="report folder (local): systems.md / .csv (side by side), report.md, metrics.json, config.yaml, "
        "and per system <name>/ and <name>/segments/ with metrics.json, per_class.csv / .md, confusion.csv / .png"
    )
    inputs: tuple[str, ...] = opt(
        (),
        "predictions folders / files of `avs predict` (evaluated on their rows and on whole clips), ensemble "
        "folders of `avs ensemble` (every stage: A04, V04, C04, E01, E02), or per-clip score tables; NAME= names "
        "a system in the report (default: the folder / file name); at least one",
        positional=True,
        nargs="*",
        metavar="[NAME=]PATH",
    )
    classes: tuple[str, ...] | None = opt(
        None, "class names, comma-separated (default: those of the first input)", metavar="CLASS,..."
    )

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError("evaluate: give at least one input (predictions, ensemble folder or score table)")


@dataclasses.dataclass
class System:
    name: str
    source: str
    clips: tuple[Scores, list[str]] | None  # (scores, truth per row)
    segments: tuple[Scores, list[str]] | None
    segment_kind: str = "segments"


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


def load_systems(cfg: EvaluateConfig) -> tuple[list[System], tuple[str, ...]]:
    from avs.predictions import prediction_kind, read_predictions
    from avs.shards.storage import Storage

    systems: list[System] = []
    classes = tuple(cfg.classes) if cfg.classes else None
    for item in cfg.inputs:
        name, path = _split_input(item)
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
        classes = classes or tuple(table_classes)
        rows, labels = _from_table(table, classes, path)
        sys_name = name or Path(path.rstrip("/")).name.removesuffix(".parquet")
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
    if classes is None:
        raise ValueError("no classes found in the inputs")
    names = [s.name for s in systems]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two inputs are named {dup}; name them with NAME=PATH")
    return systems, classes


def run_evaluate(cfg: EvaluateConfig, stream: TextIO | None = None) -> dict[str, Any]:
    """Write the report folder of ``cfg`` (see the module docstring); returns the metrics."""
    log = stream or sys.stderr
    t_start = time.perf_counter()
    systems, classes = load_systems(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
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
    _write_csv(out / "systems.csv", header, rows)
    systems_md = markdown_table(
        ["system", "rows", "n", "log-loss", "accuracy", "clips", "log-loss (clips)", "accuracy (clips)"], rows
    )
    (out / "systems.md").write_text(systems_md)
    pc_header = ["class", *results]
    pc_rows = [
        [c, *[(e["clips"] or e["segments"])["per_class"][c]["accuracy"] for e in results.values()]] for c in classes
    ]
    per_class_md = markdown_table(pc_header, pc_rows)
    (out / "per_class.md").write_text(per_class_md)
    report = [
        "# avs evaluation report\n",
        "Log-loss (multi-class, rows renormalised as the DCASE 2021 evaluation did) and accuracy of every system, "
        "on its rows (1-s audio segments or video frames) and on whole clips (mean over each clip's rows, "
        "paper 000 sec. 2.4).\n",
        systems_md,
        "\n## Accuracy per class (whole clips)\n",
        per_class_md,
        "\n## Confusion matrices\n",
        "".join(
            f"- {n}: `{n}/confusion.png`" + (f", `{n}/segments/confusion.png`" if e["segments"] else "") + "\n"
            for n, e in results.items()
        ),
    ]
    (out / "report.md").write_text("\n".join(report))
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    summary = {
        "classes": list(classes),
        "systems": results,
        "table": [dict(zip(header, r, strict=True)) for r in rows],
        "seconds": round(time.perf_counter() - t_start, 3),
        "version": avs.__version__,
    }
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, out / "metrics.json")
    print(f"[avs evaluate] {len(results)} systems -> {out}", file=log, flush=True)
    return summary
