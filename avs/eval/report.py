"""Report folders: metrics of one system, and a side-by-side table of several (families + ensembles).

    write_report("out/E02", y_true, probs, classes, name="E02")
        out/E02/metrics.json          overall + per-class log-loss / accuracy, counts, classes
        out/E02/per_class.csv         class, n, log_loss, accuracy (last row: overall)
        out/E02/per_class.md          the same as a markdown table
        out/E02/confusion.csv         counts, rows = true class
        out/E02/confusion.png         confusion matrix (matplotlib, Agg canvas)
    write_comparison("out", {"A04": m_a, "V04": m_v, "E02": m_e})
        out/systems.csv, out/systems.md   one row per system: log-loss, accuracy, n
    evaluate_systems("out", truth, {"A04": scores_a, ...}, classes)   # both of the above from Scores

Sound event detection (paper 003): ``write_sed_report`` / ``write_sed_comparison`` (see that section below),
``plot_psd_roc`` (PSD-ROC curves) and ``plot_sed_clip`` (a clip's spectrogram, frame scores, truth and detections).

Nothing here changes matplotlib's global backend: figures are drawn on ``FigureCanvasAgg`` directly.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avs.eval.metrics import classification_metrics, confusion
from avs.tables import markdown_table


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: str | Path, title: str = "") -> None:
    """Row-normalised confusion matrix with counts, saved as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    m = np.asarray(matrix, dtype=np.float64)
    rates = np.divide(m, m.sum(axis=1, keepdims=True), out=np.zeros_like(m), where=m.sum(axis=1, keepdims=True) > 0)
    n = len(classes)
    size = max(4.0, 0.6 * n + 2.0)
    fig = Figure(figsize=(size, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    for i in range(n):
        for j in range(n):
            if m[i, j]:
                ax.text(
                    j,
                    i,
                    f"{int(m[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)


def write_report(
    out_dir: str | Path,
    y_true,
    probs: np.ndarray,
    classes: Sequence[str],
    name: str = "system",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write one system's report folder (see the module docstring); returns its metrics dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(classes)
    m = classification_metrics(y_true, probs, classes)
    m = {"name": name, **m, **({"extra": dict(extra)} if extra else {})}
    _write_json(out / "metrics.json", m)
    header = ["class", "n", "log_loss", "accuracy"]
    rows = [[c, m["per_class"][c]["n"], m["per_class"][c]["log_loss"], m["per_class"][c]["accuracy"]] for c in classes]
    rows.append(["overall", m["n"], m["log_loss"], m["accuracy"]])
    _write_csv(out / "per_class.csv", header, rows)
    (out / "per_class.md").write_text(f"### {name}\n\n" + markdown_table(header, rows))
    cm = confusion(y_true, probs, classes)
    _write_csv(
        out / "confusion.csv", ["true \\ predicted", *classes], [[c, *cm[i].tolist()] for i, c in enumerate(classes)]
    )
    plot_confusion(
        cm, classes, out / "confusion.png", title=f"{name}: accuracy {m['accuracy']:.3f}, log-loss {m['log_loss']:.3f}"
    )
    return m


def write_comparison(out_dir: str | Path, systems: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    """``systems.csv`` / ``systems.md``: one row per system (in the given order): log-loss, accuracy, n."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = ["system", "log_loss", "accuracy", "n"]
    rows = [[name, m["log_loss"], m["accuracy"], m["n"]] for name, m in systems.items()]
    _write_csv(out / "systems.csv", header, rows)
    (out / "systems.md").write_text(markdown_table(header, rows))
    return rows


def evaluate_systems(
    out_dir: str | Path,
    truth: Mapping[str, str],
    systems: Mapping[str, Any],
    classes: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Report every system (``Scores`` or score tables, one row per clip) against ``truth`` (clip id -> class).

    Each system gets ``out_dir/<name>/``; the side-by-side table goes in ``out_dir``. Every system must score
    every clip in ``truth`` exactly once (clips it scores beyond ``truth`` are ignored).
    """
    from avs.ensemble.scores import as_scores

    clip_ids = list(truth)
    results: dict[str, dict[str, Any]] = {}
    for name, sys_scores in systems.items():
        s = as_scores(sys_scores, classes)
        s = s.reorder(clip_ids)
        y = [truth[c] for c in clip_ids]
        results[name] = write_report(Path(out_dir) / name, y, s.probs, s.classes, name=name)
    write_comparison(out_dir, results)
    return results


# ------------------------------------------------------------------------------ sound event detection
# write_sed_report("out/CRNN", result, truth, name="CRNN", frame_scores=fs, plot_clips=4)
#     out/CRNN/metrics.json        event / segment F1 (macro, micro), PSDS (psds, psds1, psds2) and how, per class
#     out/CRNN/per_class.csv / .md n_truth, n_detected, event_f1, segment_f1, psds per class
#     out/CRNN/psd_roc.png         PSD-ROC curves (effective TPR against eFPR per hour), one per PSDS scenario
#     out/CRNN/detections.tsv      the detections the F1 scores are of (DCASE format)
#     out/CRNN/clips/<clip>.png    (frame scores only) scores, detections and truth of a few clips
# write_sed_comparison("out", {"CRNN": metrics, ...})  ->  out/sed_systems.csv / .md, one row per system
SED_SUMMARY = (
    "event_f1_macro",
    "event_f1_micro",
    "segment_f1_macro",
    "segment_f1_micro",
    "psds",
    "psds1",
    "psds2",
    "psds_method",
)
_CLASS_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def _agg_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def plot_psd_roc(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    title: str = "",
    values: Mapping[str, float | None] | None = None,
    max_efpr: float = 100.0,
) -> None:
    """PSD-ROC curves as a PNG: each ``label -> (effective TPR, effective FPR per hour)`` (sed_scores_eval's
    ``psd_roc``) drawn as a staircase up to ``max_efpr``; ``values[label]`` (the PSDS) goes in the legend."""
    fig = _agg_figure(6.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    bases = list(dict.fromkeys(label.split(" (")[0] for label in curves))  # "psds (operating points)": psds's colour
    for label, (tpr, efpr) in curves.items():
        tpr, efpr = np.asarray(tpr, dtype=np.float64), np.asarray(efpr, dtype=np.float64)
        keep = efpr <= max_efpr
        x = np.r_[0.0, efpr[keep], max_efpr]
        y = np.r_[0.0, tpr[keep], tpr[keep][-1] if keep.any() else 0.0]
        v = (values or {}).get(label)
        text = f"{label} = {v:.3f}" if v is not None else label
        color = f"C{bases.index(label.split(' (')[0]) % 10}"
        ax.step(x, y, where="post", label=text, linestyle="--" if "operating" in label else "-", color=color)
    ax.set_xlim(0, max_efpr)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("effective false positive rate (per hour)")
    ax.set_ylabel("effective true positive rate")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "PSD-ROC")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)


def plot_sed_clip(
    path: str | Path,
    scores: np.ndarray,
    classes: Sequence[str],
    hop_s: float,
    *,
    truth: Sequence[tuple[float, float, str]] = (),
    detections: Sequence[tuple[float, float, str]] = (),
    spectrogram: np.ndarray | None = None,
    spectrogram_hop_s: float | None = None,
    threshold: float | Sequence[float] | None = 0.5,
    duration_s: float | None = None,
    title: str = "",
    spectrogram_label: str = "mel bin",
) -> None:
    """One clip as a PNG: on top (when given) the ``spectrogram`` ``(bins, frames)`` (e.g. a log-mel, lowest bin
    at the bottom) on a time axis of ``spectrogram_hop_s`` per frame, with the true events as labelled bars over
    it; below, the frame ``scores`` ``(frames, classes)`` (``hop_s`` per frame, frame t drawn over [t hop,
    (t + 1) hop)), one line per class, the ``threshold`` (dotted), the true events (shaded, the class's colour)
    and the ``detections`` (thick bars at the top). Events are ``(onset_s, offset_s, label)``."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != len(classes):
        raise ValueError(f"scores must be (frames, {len(classes)}), got {s.shape}")
    color = {c: _CLASS_COLORS[i % len(_CLASS_COLORS)] for i, c in enumerate(classes)}
    end = duration_s if duration_s is not None else len(s) * hop_s
    has_spec = spectrogram is not None
    fig = _agg_figure(10.0, 6.5 if has_spec else 3.8)
    axes = fig.subplots(2 if has_spec else 1, 1, sharex=True, squeeze=False)[:, 0]
    if has_spec:
        spec = np.asarray(spectrogram, dtype=np.float64)
        if spec.ndim != 2:
            raise ValueError(f"spectrogram must be (bins, frames), got {spec.shape}")
        if spectrogram_hop_s is None:
            raise ValueError("give spectrogram_hop_s (seconds per spectrogram frame)")
        ax = axes[0]
        ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(0.0, spec.shape[1] * spectrogram_hop_s, 0, spec.shape[0]),
            interpolation="nearest",
        )
        ax.set_ylabel(spectrogram_label)
        rows = {c: k for k, c in enumerate(sorted({e[2] for e in truth}, key=list(classes).index))} if truth else {}
        band = spec.shape[0] / max(len(rows), 1) / 4
        for on, off, lab in truth:
            y = spec.shape[0] - band * (rows.get(lab, 0) + 1)
            ax.plot([on, off], [y, y], color=color.get(lab, "white"), linewidth=4, solid_capstyle="butt")
            ax.text(on, y + band * 0.15, lab, color="white", fontsize=7, va="bottom")
        ax.set_title(title)
    ax = axes[-1]
    t = np.arange(len(s) + 1) * hop_s
    for on, off, lab in truth:
        ax.axvspan(on, off, color=color.get(lab, "grey"), alpha=0.15, linewidth=0)
    for j, c in enumerate(classes):
        ax.step(t, np.r_[s[:, j], s[-1, j]] if len(s) else np.zeros(1), where="post", color=color[c], label=c)
    for on, off, lab in detections:
        ax.plot([on, off], [1.06, 1.06], color=color.get(lab, "black"), linewidth=5, solid_capstyle="butt")
    if threshold is not None:
        for j, thr in enumerate(np.broadcast_to(np.asarray(threshold, dtype=np.float64), (len(classes),))):
            ax.axhline(thr, color=color[classes[j]] if np.ndim(threshold) else "black", linestyle=":", linewidth=0.8)
    ax.set_xlim(0, end)
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, title="shaded: truth\nbars: detected")
    if not has_spec and title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)


def chosen_clips(truth: Mapping[str, Sequence[tuple[float, float, str]]], clips: Sequence[str], n: int) -> list[str]:
    """``n`` clips to draw: those with the most truth events first (ties: by name)."""
    return sorted(clips, key=lambda c: (-len(truth.get(c, ())), c))[: max(n, 0)]


def write_sed_report(
    out_dir: str | Path,
    result: Any,
    truth: Mapping[str, Sequence[tuple[float, float, str]]],
    name: str = "system",
    *,
    frame_scores: Any = None,
    durations: Mapping[str, float] | None = None,
    plot_clips: int = 0,
    filenames: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write one SED system's report folder (see above) from an ``avs.eval.sed.SedResult``; returns its
    metrics (with ``name``)."""
    from avs.eval.sed_post import write_events_tsv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = {"name": name, **result.metrics}
    _write_json(out / "metrics.json", m)
    header = ["class", "n_truth", "n_detected", "event_f1", "segment_f1", "psds"]
    rows = [[c, *(v[k] for k in header[1:])] for c, v in m["per_class"].items()]
    rows.append(["overall (macro)", "", "", m["event_f1_macro"], m["segment_f1_macro"], m["psds"]])
    rows.append(["overall (micro)", "", "", m["event_f1_micro"], m["segment_f1_micro"], ""])
    _write_csv(out / "per_class.csv", header, rows)
    psds_text = f"PSDS: {m['psds_method']}" if m["psds_method"] else f"PSDS: none ({m.get('psds_note', '')})"
    (out / "per_class.md").write_text(
        f"### {name}\n\nF1 of {m['f1_from']}; {psds_text}; per-class psds: the paper 003 scenario.\n\n"
        + markdown_table(header, [[("" if v == "" else v) for v in r] for r in rows])
    )
    fnames = dict(filenames or {})
    write_events_tsv(out / "detections.tsv", result.detected, filenames=fnames)
    if result.curves:
        values = {k: m.get(k) for k in ("psds", "psds1", "psds2")}
        ops = m.get("psds_operating_points") or {}
        values.update({f"{k} (operating points)": ops.get(k) for k in ("psds", "psds1", "psds2")})
        plot_psd_roc(result.curves, out / "psd_roc.png", title=f"{name}: PSD-ROC ({m['psds_method']})", values=values)
    if frame_scores is not None and plot_clips > 0:
        (out / "clips").mkdir(exist_ok=True)
        thr = m["settings"].get("threshold", 0.5)
        for clip in chosen_clips(
            truth, [c for c in sorted(frame_scores.scores) if durations is None or c in durations], plot_clips
        ):
            plot_sed_clip(
                out / "clips" / f"{clip}.png",
                frame_scores.scores[clip],
                frame_scores.classes,
                frame_scores.hop_s,
                truth=truth.get(clip, ()),
                detections=result.detected.get(clip, ()),
                threshold=thr,
                duration_s=None if durations is None else durations.get(clip),
                title=f"{name}: {clip}",
            )
    return m


def write_sed_comparison(out_dir: str | Path, systems: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    """``sed_systems.csv`` / ``sed_systems.md``: one row per SED system (given order), the SED_SUMMARY columns."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = ["system", "n_clips", *SED_SUMMARY]
    rows = [[name, m.get("n_clips"), *(m.get(k) for k in SED_SUMMARY)] for name, m in systems.items()]
    _write_csv(out / "sed_systems.csv", header, rows)
    (out / "sed_systems.md").write_text(markdown_table(header, rows))
    return rows
