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
