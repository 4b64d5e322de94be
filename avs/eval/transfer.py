"""Paper 001's transfer reports from ``avs evaluate --labels VOC2007/`` folders: Table 1 (mAP per start point,
"Head" / "All"), Table 2 (per-class AP of every system) and Fig. 3 (mAP against the number of sound clusters,
AlexNet vs ResNet-18).

    avs transfer-report demo/voc_report --out demo/voc_report/paper001
    -> table1.md / .csv, table2.md / .csv, table2.png (per-class AP heat map)

    avs transfer-report SWEEP_REPORT --sweep --out DIR          (systems named ARCH-k<K>-<MODE>, e.g. alexnet-k15-head)
    -> fig3.md / .csv, fig3.png (mAP against k, one line per architecture and mode)

System names carry the row and column: ``<START>-<MODE>`` with MODE ``head`` or ``all`` (case-insensitive), as
``avs evaluate "TEXTURE-HEAD=preds/..."`` names them; START is anything (TEXTURE, MFCC, RANDOM, IMAGENET, ...).
Both APs of the evaluation are reported and labelled: the VOC 2007 devkit's 11-point interpolated AP (001's
Tables 1-2 and every paper they compare with) and scikit-learn's ``average_precision_score``. Pure functions of
the evaluate folder's ``metrics.json`` files; nothing is recomputed here.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODES = ("head", "all")
AP_KEYS = {"voc07": ("map_voc07", "ap_voc07", "VOC07 11-point AP"), "sklearn": ("map", "ap", "scikit-learn AP")}
_SWEEP_NAME = re.compile(r"^(?P<arch>.+)-k(?P<k>\d+)-(?P<mode>head|all)$", re.IGNORECASE)


def read_systems(report: str | Path) -> dict[str, dict[str, Any]]:
    """``avs evaluate`` folder -> {system: its metrics.json (task multilabel)}, in the report's order."""
    root = Path(report)
    top = root / "metrics.json"
    if not top.is_file():
        raise FileNotFoundError(f"{root} is not an `avs evaluate` report folder (no metrics.json)")
    names = json.loads(top.read_text())["systems"]
    out = {}
    for name in names:
        m = json.loads((root / name / "metrics.json").read_text())
        if m.get("task") != "multilabel":
            raise ValueError(
                f"{root / name}: not a multi-label evaluation (task {m.get('task')!r}); run avs "
                "evaluate with --labels VOC2007/"
            )
        out[name] = m
    return out


def split_name(name: str) -> tuple[str, str]:
    """``TEXTURE-HEAD`` -> (``TEXTURE``, ``head``); a ValueError names the expected form."""
    start, sep, mode = name.rpartition("-")
    if not sep or not start or mode.lower() not in MODES:
        raise ValueError(f"system {name!r}: name the systems <START>-head or <START>-all (e.g. TEXTURE-HEAD=...)")
    return start, mode.lower()


def table1_rows(systems: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per start point: mAP of Head / All, both APs (None where that mode was not run)."""
    rows: dict[str, dict[str, Any]] = {}
    for name, m in systems.items():
        start, mode = split_name(name)
        row = rows.setdefault(start, {"start": start})
        for ap, (map_key, _, _) in AP_KEYS.items():
            row[f"{mode}_{ap}"] = m.get(map_key)
        row[f"{mode}_images"] = m.get("n_clips")
    for row in rows.values():
        for mode in MODES:
            for ap in AP_KEYS:
                row.setdefault(f"{mode}_{ap}", None)
            row.setdefault(f"{mode}_images", None)
    return list(rows.values())


def table2_matrix(
    systems: Mapping[str, Mapping[str, Any]], ap: str = "voc07"
) -> tuple[list[str], list[str], np.ndarray]:
    """(systems, classes, AP ``(systems, classes)``; NaN where a class has no positive) and the mAP column."""
    key = AP_KEYS[ap][1]
    names = list(systems)
    classes: list[str] = []
    for m in systems.values():
        classes += [c for c in m["per_class"] if c not in classes]
    ap_m = np.full((len(names), len(classes)), np.nan)
    for i, name in enumerate(names):
        for j, c in enumerate(classes):
            v = systems[name]["per_class"].get(c, {}).get(key)
            ap_m[i, j] = np.nan if v is None else float(v)
    return names, classes, ap_m


def _pct(v: float | None) -> str:
    return "-" if v is None or v != v else f"{100 * v:.1f}"


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows([["" if v is None else v for v in r] for r in rows])


def write_table1(out: Path, systems: Mapping[str, Mapping[str, Any]]) -> str:
    rows = table1_rows(systems)
    cols = [f"{mode}_{ap}" for ap in AP_KEYS for mode in MODES]
    _write_csv(out / "table1.csv", ["start", *cols], [[r["start"], *(r[c] for c in cols)] for r in rows])
    lines = [
        "Paper 001 Table 1: mAP (%) on the VOC test images per start point; Head = FC layers trained on frozen conv "
        "features, All = whole network fine-tuned.",
        "",
        "| start | Head (VOC07 11-pt) | All (VOC07 11-pt) | Head (sklearn AP) | All (sklearn AP) | images |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        images = r["head_images"] or r["all_images"]
        lines.append(
            f"| {r['start']} | {_pct(r['head_voc07'])} | {_pct(r['all_voc07'])} | {_pct(r['head_sklearn'])} | "
            f"{_pct(r['all_sklearn'])} | {images or '-'} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "table1.md").write_text(text)
    return text


def write_table2(out: Path, systems: Mapping[str, Mapping[str, Any]]) -> str:
    names, classes, ap = table2_matrix(systems, "voc07")
    _, _, ap_sk = table2_matrix(systems, "sklearn")
    maps = [systems[n].get("map_voc07") for n in names]
    _write_csv(
        out / "table2.csv",
        ["system", "ap", *classes, "mAP"],
        [[n, "voc07", *ap[i].tolist(), maps[i]] for i, n in enumerate(names)]
        + [[n, "sklearn", *ap_sk[i].tolist(), systems[n].get("map")] for i, n in enumerate(names)],
    )
    lines = [
        "Paper 001 Table 2: per-class AP (%, VOC 2007 devkit 11-point, difficult images skipped); the mean of a "
        "row is its mAP. scikit-learn's AP of the same scores: table2.csv (rows ap = sklearn).",
        "",
        "| system | " + " | ".join(classes) + " | mAP |",
        "|---|" + "---|" * (len(classes) + 1),
    ]
    for i, n in enumerate(names):
        lines.append(f"| {n} | " + " | ".join(_pct(v) for v in ap[i]) + f" | {_pct(maps[i])} |")
    text = "\n".join(lines) + "\n"
    (out / "table2.md").write_text(text)
    plot_table2(names, classes, ap, out / "table2.png")
    return text


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def plot_table2(names: Sequence[str], classes: Sequence[str], ap: np.ndarray, path: Path) -> None:
    """Heat map of per-class AP ``(systems, classes)`` in %, the value written in each cell."""
    fig = _figure(max(6.0, 0.6 * len(classes) + 2.5), max(2.5, 0.45 * len(names) + 1.8))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.ma.masked_invalid(100 * ap), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(ap.shape[0]):
        for j in range(ap.shape[1]):
            if ap[i, j] == ap[i, j]:
                ax.text(
                    j,
                    i,
                    f"{100 * ap[i, j]:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if ap[i, j] < 0.6 else "black",
                )
    fig.colorbar(im, ax=ax, label="AP (%, VOC07 11-point)")
    ax.set_title("Per-class AP (paper 001 Table 2)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def sweep_rows(systems: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Systems named ``<ARCH>-k<K>-<MODE>`` -> rows (arch, k, mode, mAP VOC07, mAP sklearn), sorted."""
    rows = []
    for name, m in systems.items():
        hit = _SWEEP_NAME.match(name)
        if hit is None:
            raise ValueError(f"system {name!r}: a k sweep names its systems <ARCH>-k<K>-<head|all> (alexnet-k15-head)")
        rows.append(
            {
                "arch": hit["arch"],
                "k": int(hit["k"]),
                "mode": hit["mode"].lower(),
                "map_voc07": m.get("map_voc07"),
                "map_sklearn": m.get("map"),
            }
        )
    return sorted(rows, key=lambda r: (r["arch"], r["mode"], r["k"]))


def write_fig3(out: Path, rows: Sequence[Mapping[str, Any]]) -> str:
    cols = ["arch", "k", "mode", "map_voc07", "map_sklearn"]
    _write_csv(out / "fig3.csv", cols, [[r[c] for c in cols] for r in rows])
    lines = [
        "Paper 001 Fig. 3: transfer mAP (%) against the number of sound clusters k of the pretext task.",
        "",
        "| arch | mode | k | mAP (VOC07 11-pt) | mAP (sklearn AP) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['arch']} | {r['mode']} | {r['k']} | {_pct(r['map_voc07'])} | {_pct(r['map_sklearn'])} |" for r in rows
    ]
    text = "\n".join(lines) + "\n"
    (out / "fig3.md").write_text(text)
    plot_fig3(rows, out / "fig3.png")
    return text


def plot_fig3(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """mAP (VOC07, %) against k: one line per (architecture, mode)."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    lines: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in rows:
        if r["map_voc07"] is not None:
            lines.setdefault((r["arch"], r["mode"]), []).append((r["k"], 100 * float(r["map_voc07"])))
    for (arch, mode), pts in sorted(lines.items()):
        ks, ys = zip(*sorted(pts), strict=True)
        ax.plot(ks, ys, marker="o", linestyle="-" if mode == "head" else "--", label=f"{arch} ({mode})")
    ax.set_xlabel("number of sound clusters k")
    ax.set_ylabel("VOC mAP (%, 11-point)")
    ax.set_title("Transfer mAP against k (paper 001 Fig. 3)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_transfer_report(report: str | Path, out: str | Path, sweep: bool = False) -> str:
    """Tables 1-2 (or, with ``sweep``, Fig. 3) of an ``avs evaluate`` folder into ``out``; returns the markdown."""
    systems = read_systems(report)
    if not systems:
        raise ValueError(f"{report}: no systems")
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    if sweep:
        return write_fig3(dest, sweep_rows(systems))
    return write_table1(dest, systems) + "\n" + write_table2(dest, systems)


# ------------------------------------------------------------------------------------------------- CLI
def add_transfer_report_args(p) -> None:
    p.add_argument("report", help="an `avs evaluate --labels VOC2007/` folder (systems named <START>-head|all)")
    p.add_argument("--out", default=None, help="output folder (default: REPORT/paper001)")
    p.add_argument(
        "--sweep",
        action="store_true",
        help="Fig. 3 instead of Tables 1-2: systems named <ARCH>-k<K>-<head|all> (mAP against k per architecture)",
    )


def cmd_transfer_report(args) -> int:
    import sys

    out = args.out or str(Path(args.report) / "paper001")
    try:
        text = write_transfer_report(args.report, out, sweep=args.sweep)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"avs transfer-report: {exc}", file=sys.stderr)
        return 2
    print(text, end="")
    print(f"\nwrote {out}/")
    return 0
