"""SED methods side by side on the same features, equally trained, over several seeds: event-F1, segment-F1, PSDS
and training throughput (clips/s), each system trained with `avs train`, predicted with `avs predict` and scored
together by one `avs evaluate` (sed_eval, sed_scores_eval), as a user would.

    # paper 003: mean teacher vs supervised only on the generated DESED-style set (scripts/demo_sed.sh makes it)
    python benchmarks/bench_sed.py --feats demo/sed_features --data demo/sed --name sed_mean_teacher \\
        --systems "MT=dcase2020-mean-teacher;schedule.total_epochs=4;task_params.rampup_epochs=4" \\
                  "SUP=dcase2020-supervised;schedule.total_epochs=4" --epochs 12 --seeds 0 1

    # paper 004: the six Table 1 rows (features: avs extract ... --preset dcase2019-tritrain)
    python benchmarks/bench_sed.py --feats demo/sed_features_2019 --data demo/sed --name sed_tritrain \\
        --systems BASE=dcase2019-tritrain-baseline "ADV-W=dcase2019-tritrain-adv-whole" ... \\
        --epochs 8 --seeds 0 1 --set task_params.phase1_epochs=4

A system is ``NAME=PRESET`` followed by ``;key=value`` settings of its own; ``--set`` applies to all. Results go to
``benchmarks/results/<name>_cpu.json`` / ``.md`` (``_cuda`` on a GPU): every run's numbers, then the mean and
standard deviation over seeds per system. The reference of the comparison is the first system.
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

METRICS = ("event_f1_macro", "segment_f1_macro", "psds")
HISTORY = ("val_event_f1", "train_pseudo", "train_domain_accuracy", "train_alpha")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feats", required=True, help="avs extract output of a DESED manifest")
    ap.add_argument("--data", required=True, help="the dataset root: metadata/validation/validation.tsv + durations")
    ap.add_argument("--systems", nargs="+", required=True, help="NAME=PRESET[;key=value...]")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--set", action="append", default=[], help="key=value for every system")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of the training worker")
    ap.add_argument("--work", default="demo/bench_sed", help="runs, predictions and the report")
    ap.add_argument("--name", required=True, help="results file name: benchmarks/results/<name>_<device>.json")
    ap.add_argument("--note", default="", help="a line for the results file")
    args = ap.parse_args()

    work = Path(args.work) / args.name
    systems = [parse_system(s) for s in args.systems]
    runs: list[dict] = []
    evaluate = []
    for seed in args.seeds:
        for name, preset, sets in systems:
            tag = f"{name}-s{seed}"
            run_dir, pred_dir = work / "runs" / tag, work / "predictions" / tag
            if not (run_dir / "metrics.json").exists():
                flags = [f"--set={kv}" for kv in [*args.set, *sets]]
                t0 = time.perf_counter()
                avs(
                    "train", args.feats, "--preset", preset, "--classes", "none", "--epochs", str(args.epochs),
                    "--seed", str(seed), "--torch-threads", str(args.threads), "--cache-rows", "100000",
                    *flags, "--out", str(run_dir),
                )  # fmt: skip
                wall = time.perf_counter() - t0
            else:
                wall = None
            if not (pred_dir / "predictions.parquet").exists():
                avs("predict", str(run_dir), "--split", "validation", "--out", str(pred_dir))
            summary = json.loads((run_dir / "metrics.json").read_text())
            history = summary.get("history", [])
            rates = [h["samples_per_s"] for h in history if "samples_per_s" in h]
            runs.append(
                {
                    "system": name,
                    "preset": preset,
                    "settings": [*args.set, *sets],
                    "seed": seed,
                    "best_epoch": summary.get("best_epoch"),
                    "train_clips_per_s": statistics.fmean(rates) if rates else None,
                    "wall_s": wall,
                    # per epoch, what explains a result: every head's validation event-F1, pseudo-labels, D
                    "history": [{k: v for k, v in h.items() if k == "epoch" or k.startswith(HISTORY)} for h in history],
                }
            )
            evaluate.append(f"{tag}={pred_dir}")
    report = work / "report"
    meta = Path(args.data) / "metadata" / "validation"
    avs(
        "evaluate", "--truth", str(meta / "validation.tsv"), "--durations", str(meta / "durations.tsv"),
        *evaluate, "--out", str(report),
    )  # fmt: skip
    for run in runs:
        m = json.loads((report / f"{run['system']}-s{run['seed']}" / "metrics.json").read_text())
        run.update({k: m.get(k) for k in (*METRICS, "event_f1_micro", "segment_f1_micro", "psds1", "psds_method")})
    table = []
    for name, preset, sets in systems:
        mine = [r for r in runs if r["system"] == name]
        row = {"system": name, "preset": preset, "settings": [*args.set, *sets], "seeds": [r["seed"] for r in mine]}
        for key in (*METRICS, "train_clips_per_s"):
            row[key + "_mean"], row[key + "_std"] = mean_std([r[key] for r in mine])
        table.append(row)

    device = "cuda" if "none" not in machine()["gpu"] else "cpu"
    out = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "features": args.feats,
        "epochs": args.epochs,
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
        *( [args.note, ""] if args.note else [] ),
        "| system | preset | event-F1 macro | segment-F1 macro | PSDS | train clips/s |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for row in table:
        cells = [
            "n/a" if row[k + "_mean"] != row[k + "_mean"] else f"{row[k + '_mean']:.3f} ± {row[k + '_std']:.3f}"
            for k in METRICS
        ]
        rate = f"{row['train_clips_per_s_mean']:.2f}"
        lines.append(f"| {row['system']} | {row['preset']} | " + " | ".join(cells) + f" | {rate} |")
    lines += [
        "",
        "Means ± standard deviations over the seeds (n/a: sed_eval gives no value, e.g. a system that detects "
        "nothing); every run, with micro F1 and psds1, in the JSON file.",
        "",
    ]
    with open(results / f"{args.name}_{device}.md", "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
