"""Paper 002's losses side by side on the same LADI-style features, equally trained, over several seeds: validation
LRAP (Table 2's column, on the held-out 20 % of the images), and on the test shots (per-shot max of the 10-fps
frames, §2.5) LRAP, mAP and mAP@k, plus the equal-weight ensemble of all systems (§2.5), each step an ``avs``
command as a user runs it (train -> predict -> rank -> evaluate).

    # the generated set (scripts/demo_multilabel.sh makes it): FL, CB-FL, RFL, FL + outlier removal
    python benchmarks/bench_multilabel.py --feats demo/ladi_features --data demo/ladi --seeds 0 1 \\
        --systems FL=trecvid-dsdi CB-FL=trecvid-dsdi-c04 RFL=trecvid-dsdi-c05 FL+OR=trecvid-dsdi-c11

A system is ``NAME=PRESET`` followed by ``;key=value`` settings of its own; ``--set`` applies to all (the CPU
settings of the demo by default: a random-init ResNet-10t at 64 x 64, see ``DEMO_SETS``). Results go to
``benchmarks/results/<name>_cpu.json`` / ``.md``: every run, then mean and standard deviation over seeds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import avs, machine, mean_std, parse_system  # noqa: E402

# The demo's CPU budget (not the paper's: ResNeSt-50d from ImageNet weights at 360 x 360, 40 epochs of LADI):
# no pretrained weights can be downloaded here, so a small CNN from random weights at 64 x 64; lr 0.01 (0.1 of
# IBN-Net made these runs diverge within an epoch) divided by 10 after epoch 6 of 8.
DEMO_SETS = (
    "model=timm-cnn",
    "model_params.backbone=resnet10t",
    "model_params.random_init=true",
    "model_params.input_size=null",
    "task_params.image_size=[64,64]",
    "optimizer.lr=0.01",
    "schedule.milestones=[6]",
    "batch_size=14",
)
DEMO_CLASSES = "flooding / water damage,smoke / fire,trees,building,road,car"


def fmt(mean: float, std: float) -> str:
    return "n/a" if mean != mean else f"{mean:.3f} ± {std:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feats", required=True, help="avs extract output of a LADI-style folder")
    ap.add_argument("--data", required=True, help="the LADI-style folder (its shots.csv is the test truth)")
    ap.add_argument("--systems", nargs="+", required=True, help="NAME=PRESET[;key=value...]")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--classes", default=DEMO_CLASSES)
    ap.add_argument("--set", action="append", default=None, help="key=value for every system (default DEMO_SETS)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of the training worker")
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--work", default="demo/bench_multilabel", help="runs, predictions and the report")
    ap.add_argument("--name", default="multilabel", help="results file name: benchmarks/results/<name>_<device>")
    ap.add_argument("--note", default="", help="a line for the results file")
    args = ap.parse_args()
    common = list(DEMO_SETS if args.set is None else args.set)

    work = Path(args.work) / args.name
    systems = [parse_system(s) for s in args.systems]
    runs: list[dict] = []
    inputs: list[str] = []
    for seed in args.seeds:
        preds = []
        for name, preset, sets in systems:
            tag = f"{name}-s{seed}"
            run_dir, pred_dir = work / "runs" / tag, work / "predictions" / tag
            wall = None
            if not (run_dir / "metrics.json").exists():
                t0 = time.perf_counter()
                avs(
                    "train", args.feats, "--preset", preset, "--classes", args.classes, "--epochs", str(args.epochs),
                    "--seed", str(seed), "--torch-threads", str(args.threads), "--cache-rows", "100000",
                    *[f"--set={kv}" for kv in [*common, *sets]], "--out", str(run_dir),
                )  # fmt: skip
                wall = time.perf_counter() - t0
            if not (pred_dir / "predictions.parquet").exists():
                avs("predict", str(run_dir), "--split", "test", "--out", str(pred_dir))
            summary = json.loads((run_dir / "metrics.json").read_text())
            rates = [h["samples_per_s"] for h in summary.get("history", []) if "samples_per_s" in h]
            runs.append(
                {
                    "system": name,
                    "preset": preset,
                    "settings": [*common, *sets],
                    "seed": seed,
                    "best_epoch": summary.get("best_epoch"),
                    "val_lrap": (summary.get("best") or {}).get("val_lrap"),
                    "val_map": (summary.get("best") or {}).get("val_map"),
                    "train_images_per_s": statistics.fmean(rates) if rates else None,
                    "wall_s": wall,
                    "history": [
                        {k: h.get(k) for k in ("epoch", "train_loss", "val_loss", "val_lrap", "val_map")}
                        for h in summary.get("history", [])
                    ],
                }
            )
            preds.append(str(pred_dir))
            inputs.append(f"{tag}={pred_dir}")
        ens = work / "rank" / f"ENSEMBLE-s{seed}"
        avs("rank", *preds, "--k", str(args.k), "--out", str(ens))  # 002 §2.5: equal-weight ensemble
        inputs.append(f"ENSEMBLE-s{seed}={ens}")
        runs.append({"system": "ENSEMBLE", "preset": "+".join(s[0] for s in systems), "seed": seed})
    report = work / "report"
    avs("evaluate", "--labels", str(Path(args.data) / "shots.csv"), "--k", str(args.k), *inputs, "--out", str(report))
    for run in runs:
        m = json.loads((report / f"{run['system']}-s{run['seed']}" / "metrics.json").read_text())
        run.update({"test_lrap": m["lrap"], "test_map": m["map"], "test_map_at_k": m["map_at_k"]})
    keys = ("val_lrap", "test_lrap", "test_map", "test_map_at_k", "train_images_per_s")
    table = []
    for name in [s[0] for s in systems] + ["ENSEMBLE"]:
        mine = [r for r in runs if r["system"] == name]
        row = {"system": name, "preset": mine[0]["preset"], "seeds": [r["seed"] for r in mine]}
        for key in keys:
            row[key + "_mean"], row[key + "_std"] = mean_std([r.get(key) for r in mine])
        table.append(row)

    device = "cuda" if "none" not in machine()["gpu"] else "cpu"
    out = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "features": args.feats,
        "epochs": args.epochs,
        "k": args.k,
        "note": args.note,
        "systems": table,
        "runs": runs,
        "report": str(report),
    }
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"{args.name}_{device}.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        f"## {out['when']}: {args.name}, {args.epochs} epochs, seeds {args.seeds} ({device})",
        "",
        *([args.note, ""] if args.note else []),
        "| system | preset | val LRAP | test LRAP | test mAP | test mAP@k | train images/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table:
        cells = [fmt(row[k + "_mean"], row[k + "_std"]) for k in keys[:-1]]
        rate = row["train_images_per_s_mean"]
        lines.append(
            f"| {row['system']} | {row['preset']} | "
            + " | ".join(cells)
            + f" | {'-' if rate != rate else f'{rate:.1f}'} |"
        )
    lines += [
        "",
        "Means ± standard deviations over the seeds. val LRAP: the best epoch's, on the held-out images (truth: soft "
        f"label >= 0.5); test: the shots (per-shot max over their 10-fps frames), k = {args.k}. ENSEMBLE: `avs rank` "
        "of all systems with equal weights. Every run, with its per-epoch history, in the JSON file.",
        "",
    ]
    with open(results / f"{args.name}_{device}.md", "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
