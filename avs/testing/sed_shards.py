"""Tiny DESED-like log-mel shards for tests of the SED tasks, as ``avs extract`` writes them, scaled down.

counts = write_desed_shards(root)          # root/logmel/part-00000000.parquet: 8 strong, 8 weak, 8 unlabeled,
                                           # 4 validation clips of (16 mels, 40 frames); a class = a raised band
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from avs.testing.train_shards import vector_column

CLASSES = ("Dog", "Speech")
N_MELS, N_FRAMES = 16, 40
HOP_IN = 255 / 16000  # input frame hop (s)


def write_desed_shards(root: Path, seed: int = 0, real_offset_db: float = 0.0) -> dict[str, int]:
    """logmel shards as `avs extract --preset dcase2020-sed` writes them, scaled down: (mels, frames) rows of whole
    clips, label_kind strong / weak / unlabeled, events of the strong clips; a class shows as a raised band.
    ``real_offset_db`` shifts the weak, unlabeled and validation ("recorded") clips: a domain gap."""
    rng = np.random.default_rng(seed)
    rows = []
    counts = {"strong": 8, "weak": 8, "unlabeled": 8, "validation": 4}
    for subset, n in counts.items():
        for k in range(n):
            x = rng.normal(size=(N_MELS, N_FRAMES)).astype(np.float32) * 3 - 50
            events, labels = [], []
            for c, label in enumerate(CLASSES):
                if rng.random() < 0.5:
                    a = int(rng.integers(0, N_FRAMES // 2))
                    b = int(rng.integers(a + 4, N_FRAMES))
                    x[c * 8 : c * 8 + 8, a:b] += 25.0
                    events.append({"onset_s": a * HOP_IN, "offset_s": b * HOP_IN, "label": label})
                    labels.append(label)
            kind = "strong" if subset in ("strong", "validation") else subset
            if subset != "strong":
                x += real_offset_db
            rows.append(
                {
                    "clip_id": f"{subset}/c{k}",
                    "split": "validation" if subset == "validation" else f"train/{subset}",
                    "label_kind": kind,
                    "labels": sorted(labels) if kind != "unlabeled" else [],
                    "events": events if kind == "strong" else [],
                    "x": x,
                }
            )
    event_t = pa.list_(pa.struct([("onset_s", pa.float64()), ("offset_s", pa.float64()), ("label", pa.string())]))
    table = pa.table(
        {
            "clip_id": [r["clip_id"] for r in rows],
            "segment": pa.array([0] * len(rows), pa.int32()),
            "start_s": pa.array([0.0] * len(rows)),
            "end_s": pa.array([N_FRAMES * HOP_IN] * len(rows)),
            "labels": pa.array([r["labels"] for r in rows], pa.list_(pa.string())),
            "events": pa.array([r["events"] for r in rows], event_t),
            "split": [r["split"] for r in rows],
            "label_kind": [r["label_kind"] for r in rows],
            "logmel": vector_column(np.stack([r["x"] for r in rows])),
        }
    )
    meta = {
        b"avs.shape": json.dumps([N_MELS, N_FRAMES]).encode(),
        b"avs.feature_set": json.dumps(
            {"name": "logmel", "params": {"hop_length": 255}, "audio": {"sample_rate_hz": 16000}}
        ).encode(),
    }
    (root / "logmel").mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(meta), root / "logmel" / "part-00000000.parquet")
    return counts


# crnn-dcase2020 scaled down to these shards: 3 blocks, freq 16 -> 1, time 40 -> 10
TINY_CRNN = {
    "n_mels": N_MELS,
    "n_frames": N_FRAMES,
    "filters": [4, 8, 8],
    "kernel_size": [3, 3, 3],
    "padding": [1, 1, 1],
    "stride": [1, 1, 1],
    "pooling": [[2, 2], [2, 2], [1, 4]],
    "rnn_hidden": 8,
    "dropout": 0.0,
}


def worker_spec() -> dict:
    """What a SED task's ``prepare`` hands its workers (``run.spec``) for these shards, without reading them."""
    return {
        "classes": list(CLASSES),
        "n_out": N_FRAMES // 4,
        "hop_s": HOP_IN * 4,
        "mean": None,
        "std": None,
        "median_frames": 3,
        "truth": {},
        "rows": {"strong": 8, "weak": 8, "unlabeled": 8},
    }


def run_fields(model: str, model_params: dict, spec: dict | None = None, **changes) -> dict:
    """``avs.train.task.RunInfo(**run_fields(...))`` for one step of a SED task on hand-made batches (no shards
    read; a mapping, so that this package stays below avs.train)."""
    base = {
        "shards": "s",
        "model": model,
        "model_params": {**model_params, "num_classes": len(CLASSES)},
        "features": ("logmel",),
        "classes": CLASSES,
        "label_column": "labels",
        "label_table": None,
        "train_split": None,
        "val_split": "validation",
        "train_clips": None,
        "val_clips": None,
        "batch_size": 6,
        "max_train_rows": None,
        "max_val_rows": None,
        "seed": 0,
        "spec": worker_spec() if spec is None else spec,
    }
    return {**base, **changes}
