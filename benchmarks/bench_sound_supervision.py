"""Paper 001 on the generated sets, each step an ``avs`` command as a user runs it: for every architecture and
number of sound clusters k, k-means of the sound statistics -> the pretext (a frame CNN predicts its frame's
cluster) -> VOC transfer ("Head": FC layers on the frozen trunk) -> predict -> evaluate; the same transfer from
random weights as the reference; at ``--table-k`` also "All" (whole network) for Table 1.

    bash scripts/demo_sound_supervision.sh       # makes demo/owens_features and demo/voc_features first
    python benchmarks/bench_sound_supervision.py --feats demo/owens_features --voc-feats demo/voc_features \\
        --voc demo/voc/VOC2007 --archs alexnet resnet18 --ks 2 4 8 --table-k 4

Writes ``benchmarks/results/sound_supervision_cpu.{md,json}`` and the figures next to them (Fig. 3: mAP against
k per architecture; Table 2 heat map), with the pretext training throughput (frames / s, mean of the epochs after
the first) of each architecture. ``--mfcc-feats`` (an ``avs extract --preset owens-mfcc`` folder) adds MFCC
cluster starts at ``--table-k`` (001 Fig. 4). Settings are the demo's (96 x 96 frames, batch 8, ``--epochs``);
the paper's (224 x 224, 200 epochs of a video dataset, k = 15) need a GPU and real data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import avs, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from avs.eval.transfer import (  # noqa: E402
    read_systems,
    sweep_rows,
    write_fig3,
    write_table1,
    write_table2,
)

DEMO_VOC_CLASSES = "aeroplane,boat,car,person,pottedplant,tvmonitor"


def small(args: argparse.Namespace) -> list[str]:
    return [
        "--torch-threads", str(args.threads), "--cache-rows", "100000", "--epochs", str(args.epochs),
        "--batch-size", "8", "--seed", str(args.seed),
        "--set", f"schedule.total_epochs={args.epochs}", "--set", "task_params.image_size=[96,96]",
        "--set", "model_params.input_size=null",
    ]  # fmt: skip


def pretext(args, work: Path, feats: str, feature: str, arch: str, k: int) -> tuple[Path, float]:
    """Cluster ``feature`` with k, train the pretext; (run folder, frames / s after the first epoch)."""
    clusters = work / "clusters" / f"{feature}-k{k}"
    if not (clusters / "assignments.parquet").exists():
        avs("cluster", f"{feats}/{feature}", "--k", str(k), "--seed", str(args.seed), "--out", str(clusters))
    run = work / "runs" / f"pretext-{feature}-{arch}-k{k}"
    if not (run / "metrics.json").exists():
        shutil.rmtree(run, ignore_errors=True)
        avs("train", feats, "--preset", f"owens-pretext-{arch}", "--label-table", str(clusters / "assignments.parquet"),
            "--classes", ",".join(str(i) for i in range(k)), "--set", f"model_params.num_classes={k}",
            *small(args), "--out", str(run))  # fmt: skip
    history = json.loads((run / "metrics.json").read_text())["history"]
    rates = [h["samples_per_s"] for h in history[1:]] or [history[0]["samples_per_s"]]
    return run, statistics.fmean(rates)


def transfer(args, work: Path, name: str, arch: str, mode: str, init: Path | None) -> Path:
    """A VOC transfer run + its test predictions; the predictions folder."""
    run, preds = work / "runs" / name, work / "predictions" / name
    if not (preds / "run.json").exists():
        if not (run / "metrics.json").exists():
            shutil.rmtree(run, ignore_errors=True)
            start = ["--init-from", str(init)] if init is not None else ["--set", "init_drop=[]"]
            avs("train", args.voc_feats, "--preset", f"voc07-transfer-{mode}", "--model", f"frame-{arch}", *start,
                *small(args), "--out", str(run))  # fmt: skip
        shutil.rmtree(preds, ignore_errors=True)
        avs("predict", str(run), "--split", "test", "--out", str(preds))
    return preds


def evaluate(args, out: Path, systems: dict[str, Path]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    avs("evaluate", "--labels", args.voc, "--classes", args.classes, *(f"{n}={p}" for n, p in systems.items()),
        "--out", str(out))  # fmt: skip
    return read_systems(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feats", required=True, help="avs extract --preset owens-texture output (texture + frames)")
    ap.add_argument("--mfcc-feats", default=None, help="avs extract --preset owens-mfcc output (mfcc + frames)")
    ap.add_argument("--voc-feats", required=True, help="avs extract VOC2007/ --preset voc07 output")
    ap.add_argument("--voc", required=True, help="the VOC2007 folder (the test truth)")
    ap.add_argument("--classes", default=DEMO_VOC_CLASSES, help="VOC classes evaluated (default: the demo's six)")
    ap.add_argument("--archs", nargs="+", default=["alexnet", "resnet18"], choices=["alexnet", "resnet18"])
    ap.add_argument("--ks", nargs="+", type=int, default=[2, 4, 8])
    ap.add_argument("--table-k", type=int, default=4, help="k of Table 1 / 2 (the paper: 15)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--work", default="demo/bench_sound_supervision")
    ap.add_argument("--name", default="sound_supervision_cpu")
    args = ap.parse_args()
    if args.table_k not in args.ks:
        args.ks = sorted({*args.ks, args.table_k})
    work = Path(args.work)
    results = ROOT / "benchmarks" / "results"
    t0 = time.perf_counter()

    throughput: dict[str, float] = {}
    sweep: dict[str, Path] = {}
    table: dict[str, Path] = {}
    for arch in args.archs:
        for k in args.ks:
            run, rate = pretext(args, work, args.feats, "texture", arch, k)
            throughput.setdefault(arch, rate)
            sweep[f"{arch}-k{k}-head"] = transfer(args, work, f"texture-{arch}-k{k}-head", arch, "head", run)
            if k == args.table_k:
                table[f"TEXTURE-{arch}-HEAD"] = sweep[f"{arch}-k{k}-head"]
                table[f"TEXTURE-{arch}-ALL"] = transfer(args, work, f"texture-{arch}-k{k}-all", arch, "all", run)
        if args.mfcc_feats:
            run, _ = pretext(args, work, args.mfcc_feats, "mfcc", arch, args.table_k)
            for mode in ("head", "all"):
                table[f"MFCC-{arch}-{mode.upper()}"] = transfer(
                    args, work, f"mfcc-{arch}-k{args.table_k}-{mode}", arch, mode, run
                )
        for mode in ("head", "all"):
            table[f"RANDOM-{arch}-{mode.upper()}"] = transfer(args, work, f"random-{arch}-{mode}", arch, mode, None)

    sweep_systems = evaluate(args, work / "report_sweep", sweep)
    table_systems = evaluate(args, work / "report_table", table)
    fig_dir = results / f"{args.name}_figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig3 = write_fig3(fig_dir, sweep_rows(sweep_systems))
    table1 = write_table1(fig_dir, table_systems)
    table2 = write_table2(fig_dir, table_systems)
    seconds = time.perf_counter() - t0

    record = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("work", "name")},
        "pretext_frames_per_s": throughput,
        "sweep": sweep_rows(sweep_systems),
        "table": {n: {"map_voc07": m["map_voc07"], "map": m["map"]} for n, m in table_systems.items()},
        "seconds": round(seconds, 1),
    }
    (results / f"{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"# Paper 001 on the generated sets (CPU), {record['date']}",
        "",
        f"Machine: {record['machine']['cpu']}, {record['machine']['cores']} cores, GPU {record['machine']['gpu']}.",
        f"Command: `python benchmarks/bench_sound_supervision.py --feats {args.feats} --voc-feats {args.voc_feats} "
        f"--voc {args.voc} --archs {' '.join(args.archs)} --ks {' '.join(map(str, args.ks))} --table-k {args.table_k}"
        f" --epochs {args.epochs}` ({seconds / 60:.0f} min).",
        "",
        "## Pretext training throughput",
        "",
        "| arch | frames / s (96 x 96, batch 8, mean of epochs 2+) |",
        "|---|---|",
        *(f"| {a} | {r:.1f} |" for a, r in throughput.items()),
        "",
        "## Table 1 (start points; rows named START-ARCH)",
        "",
        table1,
        "## Table 2",
        "",
        table2,
        f"![Table 2]({args.name}_figures/table2.png)",
        "",
        "## Fig. 3 (Head transfer from texture-cluster pretexts against k)",
        "",
        fig3,
        f"![Fig. 3]({args.name}_figures/fig3.png)",
        "",
    ]
    (results / f"{args.name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
