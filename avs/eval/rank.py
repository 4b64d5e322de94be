"""The ranking job (``avs rank``, paper 002 §2.5): per-frame multi-label scores of one or more systems -> one fused
score per clip and class -> for each class the top-k clips, as TRECVID DSDI runs list them.

    avs rank preds/c03 preds/c04 preds/c11 --k 1000 --out ranked/ensemble        # equal weights (002's ensembles)
    avs rank VAS=ranked/ensemble OTHER=preds/other --weights 2 1 --out ranked/f21  # Table 3's 2:1 fusion

Each input is ``[NAME=]PATH``: an ``avs predict`` folder / file of kind ``clip_scores`` (one row per frame of a
shot, or per image) or an earlier ``avs rank`` folder. Steps: per system, the max over each clip's rows per
class ("selected max confidence value as the output for each feature in a shot-clip", ``clip_max``); then the
weighted mean of the systems' clip scores (``fuse``: equal weights, "merged with equal weight", unless
``--weights``) over the clips every system scored; then ``top_k`` per class.

Writes into ``out``: ``predictions.parquet`` (one row per clip: ``clip_id`` + a score column per class, kind
``clip_scores``, readable by ``avs evaluate --labels``), ``top_k.csv`` (class, rank, clip_id, score: the run
file), ``top_k.md`` (the first ``--show`` clips of each class), ``rank.json`` (inputs, weights, counts) and
``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import yaml

import avs
from avs.config import to_dict
from avs.flags import opt
from avs.predictions import PREDICTIONS_FILE

RANKED_FILE = PREDICTIONS_FILE  # predictions.parquet: a rank folder reads as a predictions folder


@dataclasses.dataclass(frozen=True)
class RankConfig:
    out: str = opt(
        help="folder for predictions.parquet (fused, one row per clip), top_k.csv / .md, rank.json, config.yaml"
    )
    inputs: tuple[str, ...] = opt(
        (),
        "clip_scores predictions of `avs predict` (a multilabel run) or `avs rank` folders; NAME= names a system; "
        "at least one",
        positional=True,
        nargs="*",
        metavar="[NAME=]PATH",
    )
    weights: tuple[float, ...] | None = opt(
        None, "fusion weight per input, in input order (default: equal weights; 002 Table 3: 2 1 and 5 1)"
    )
    k: int = opt(1000, "clips listed per class (TRECVID DSDI: 1000)")
    classes: tuple[str, ...] | None = opt(
        None, "classes to rank, comma-separated (default: those of the first input)", metavar="CLASS,..."
    )
    split: str | None = opt(
        "test", "rows of this split only (002 ranks the test shots; 'all': every row)", metavar="SPLIT"
    )
    show: int = opt(10, "clips per class in top_k.md")

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError("rank: give at least one predictions input")
        if self.weights is not None and len(self.weights) != len(self.inputs):
            raise ValueError(f"rank: {len(self.weights)} weights for {len(self.inputs)} inputs")
        if self.weights is not None and (min(self.weights) < 0 or sum(self.weights) <= 0):
            raise ValueError(f"rank: weights must be >= 0 with a positive sum, got {list(self.weights)}")
        if self.k < 1 or self.show < 0:
            raise ValueError("rank: k >= 1 and show >= 0")


def load_clip_scores(path: str, classes: tuple[str, ...] | None, split: str | None):
    """One input -> (clip ids, (clips, classes) max scores, classes, training frequency or None)."""
    from avs.eval.job import _training_frequency
    from avs.eval.multilabel import clip_scores_of
    from avs.predictions import prediction_kind, read_predictions

    table, table_classes = read_predictions(path)
    kind = prediction_kind(table)
    if kind != "clip_scores":
        raise ValueError(f"{path}: avs rank needs clip_scores predictions (a multilabel run), not {kind!r}")
    rank = json.loads((table.schema.metadata or {}).get(b"avs.rank", b"{}"))
    if split and split != "all" and "split" in table.column_names and not rank:
        mask = pa.compute.equal(table.column("split"), split)
        table = table.filter(mask)
        if table.num_rows == 0:
            raise ValueError(f"{path}: no rows of split {split!r} (use --split all to rank every row)")
    use = tuple(classes or table_classes)
    clips, scores = clip_scores_of(table, use)
    frequency = rank.get("frequency") if rank else _training_frequency(table)
    return clips, scores, use, frequency


def run_rank(cfg: RankConfig, stream: TextIO | None = None) -> dict[str, Any]:
    from avs.eval.ranking import fuse, top_k
    from avs.eval.report import _write_csv, _write_json
    from avs.tables import markdown_table

    log = stream or sys.stderr
    t0 = time.perf_counter()
    names, loaded = [], []
    classes = tuple(cfg.classes) if cfg.classes else None
    for item in cfg.inputs:
        from avs.eval.job import _split_input

        given, path = _split_input(item)  # [NAME=]PATH, as avs evaluate reads its inputs
        name = given or Path(path.rstrip("/")).name.removesuffix(".parquet")
        clips, scores, classes, freq = load_clip_scores(path, classes, cfg.split)
        names.append(name)
        loaded.append((path, clips, scores, freq))
        print(f"[avs rank] {name}: {len(clips)} clips x {len(classes)} classes from {path}", file=log, flush=True)
    assert classes is not None
    common = sorted(set.intersection(*(set(c.tolist()) for _, c, _, _ in loaded)))
    if not common:
        raise ValueError("rank: the inputs share no clip id")
    dropped = {n: int(len(c) - len(common)) for n, (_, c, _, _) in zip(names, loaded, strict=True)}
    aligned = []
    for _, clips, scores, _ in loaded:
        pos = {c: i for i, c in enumerate(clips.tolist())}
        aligned.append(scores[[pos[c] for c in common]])
    fused = fuse(aligned, cfg.weights)  # (clips, classes)
    ranked = top_k(common, fused, classes, k=cfg.k)
    frequency = next((f for *_, f in loaded if f), None)

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = list(cfg.weights) if cfg.weights is not None else [1.0] * len(names)
    info = {
        "inputs": [{"name": n, "path": p} for n, (p, *_) in zip(names, loaded, strict=True)],
        "weights": weights,
        "k": cfg.k,
        "split": cfg.split,
        "clips": len(common),
        "clips_dropped": dropped,
        "classes": list(classes),
        "frequency": frequency,
    }
    table = pa.table({"clip_id": pa.array(common, pa.string()), **{c: fused[:, j] for j, c in enumerate(classes)}})
    table = table.replace_schema_metadata(
        {
            b"avs.classes": json.dumps(list(classes)).encode(),
            b"avs.kind": b"clip_scores",
            b"avs.rank": json.dumps(info).encode(),
            b"avs.version": avs.__version__.encode(),
        }
    )
    import pyarrow.parquet as pq

    pq.write_table(table, out / RANKED_FILE)
    rows = [[c, r, clip, score] for c, lst in ranked.items() for r, (clip, score) in enumerate(lst, start=1)]
    _write_csv(out / "top_k.csv", ["class", "rank", "clip_id", "score"], rows)
    md = [
        "# Top clips per class\n",
        f"Fused from {', '.join(f'{n} (x{w:g})' for n, w in zip(names, weights, strict=True))}.\n",
    ]
    for c, lst in ranked.items():
        md += [
            f"\n## {c}\n",
            markdown_table(
                ["rank", "clip", "score"], [[r, a, round(b, 4)] for r, (a, b) in enumerate(lst[: cfg.show], 1)]
            ),
        ]
    (out / "top_k.md").write_text("".join(md))
    summary = {**info, "seconds": round(time.perf_counter() - t0, 3), "version": avs.__version__}
    _write_json(out / "rank.json", summary)
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    drop = f", {sum(dropped.values())} clips not in every input left out" if any(dropped.values()) else ""
    print(f"[avs rank] {len(common)} clips x {len(classes)} classes, top {cfg.k} per class -> {out}{drop}", file=log)
    return summary


def cmd_rank(args) -> int:
    from avs.flags import config_from_args

    try:
        cfg = config_from_args(RankConfig, args)
    except (ValueError, TypeError, KeyError) as exc:
        print(f"avs rank: invalid settings: {exc}", file=sys.stderr)
        return 2
    try:
        run_rank(cfg)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"avs rank: {exc}", file=sys.stderr)
        return 2
    return 0


def add_rank_args(p) -> None:
    from avs.flags import add_config_flags, add_layering_flags

    add_config_flags(p, RankConfig)
    add_layering_flags(p, "rank", cls=RankConfig)
