"""Training / inference inputs from feature shards, with Ray Data (paper 000 sec. 2-3 input families).

    spec = describe_inputs(cfg)                                    # shapes, family, classes from the shards
    ds = split_dataset(spec, "train", train=True, augment=True)    # ray.data.Dataset with x, y
    for batch in ray.train.get_dataset_shard("train").iter_torch_batches(batch_size=24): ...

Families and what a row of the dataset holds (``x`` float32, ``y`` int64 class index, or with ``target``
``multi_hot`` / ``soft`` float32 ``(classes,)`` from every entry of the label list: ``label_targets``):

  - ``logmel``: one feature set of ``fixed_size_list<float32>`` with shape ``(chans, n_mels, frames)`` (shape
    JSON in the schema metadata ``avs.shape``) -> ``x`` ``(chans, n_mels, frames)``. Random gain / frequency
    masks and the per-channel standardisation (statistics of the training split, ``channel_stats``) act on
    the batch tensor in the training worker (``standardize``), not here.
  - ``frame``: the ``frames`` set (``image`` = JPEG bytes, shape ``[H, W, 3]``) -> decoded here
    (``torchvision.io.decode_jpeg``), then paper 000's training augmentation (``frame_train_transform``) or
    the evaluation transform (resize + ImageNet normalisation) -> ``x`` ``(3, *image_size)``.
  - ``clip``: the three CLIP embedding sets (RN50x4 640-d, RN101 512-d, ViT-B/32 512-d; paper 000 Table 1)
    joined on ``(clip_id, segment)`` -> ``x`` ``(640 + 512 + 512,)``, the concatenation in the configured
    order (what ``ClipLateFusion`` takes as one tensor). ``avs extract`` writes one ``part-NNNNN.parquet``
    per feature set holding the same clips (``avs.shards.writer``), so the join runs part by part: one Ray
    Data task reads the same-named part of every set and joins them with pyarrow (no shuffle; Ray Data's
    own ``Dataset.join`` needs polars). Rows missing from any set are dropped.

Labels: the first entry of ``label_column`` (TAU: the scene) mapped to its index in ``classes``; rows whose
label is not a class get ``y = -1`` and are dropped for training / validation (kept for prediction).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from avs.shards.storage import Storage

KEY_COLUMNS = ("clip_id", "segment", "start_s", "end_s", "timestamp_s")
JOIN_KEYS = ("clip_id", "segment")
IMAGE_COLUMN = "image"


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """One feature-set folder as read from its first part's schema."""

    name: str
    folder: str  # full path / URI of SHARDS/<name>
    column: str  # the feature column: the folder name, or "image" for the frames set
    kind: str  # "vector" (fixed_size_list<float32>) or "image" (binary JPEG)
    shape: tuple[int, ...]  # one row's feature shape (avs.shape)
    columns: tuple[str, ...]  # every column of the shards
    extractor: dict[str, Any]  # avs.extractor metadata (e.g. "classes" of zero-shot sets)
    parts: tuple[str, ...]  # part-NNNNN.parquet names
    identity: dict[str, Any] = dataclasses.field(default_factory=dict)  # avs.feature_set: extractor params,
    # the audio / video settings (sample rate, ...) the set was computed with

    @property
    def dims(self) -> int:
        return int(np.prod(self.shape))


def feature_info(shards: str, name: str) -> FeatureInfo:
    """Read the schema of ``shards/name/part-*.parquet`` (first part) into a ``FeatureInfo``."""
    storage = Storage(f"{shards.rstrip('/')}/{name}")
    if not storage.exists(""):
        raise FileNotFoundError(
            f"feature set folder {storage.uri} does not exist (expected SHARDS/<feature_set>/ written by `avs extract`)"
        )
    parts = tuple(storage.list("", prefix="part-", suffix=".parquet"))
    if not parts:
        raise FileNotFoundError(f"no part-*.parquet files in {storage.uri}")
    schema = pq.read_schema(storage.path(parts[0]), filesystem=storage.fs)
    meta = schema.metadata or {}
    shape = tuple(json.loads(meta[b"avs.shape"])) if b"avs.shape" in meta else None
    extractor = json.loads(meta[b"avs.extractor"]) if b"avs.extractor" in meta else {}
    identity = json.loads(meta[b"avs.feature_set"]) if b"avs.feature_set" in meta else {}
    if name in schema.names and pa.types.is_fixed_size_list(schema.field(name).type):
        column, kind = name, "vector"
        if shape is None:
            shape = (schema.field(name).type.list_size,)
        if int(np.prod(shape)) != schema.field(name).type.list_size:
            raise ValueError(
                f"{storage.uri}: avs.shape {list(shape)} does not match the column size "
                f"{schema.field(name).type.list_size}"
            )
    elif IMAGE_COLUMN in schema.names and pa.types.is_binary(schema.field(IMAGE_COLUMN).type):
        column, kind = IMAGE_COLUMN, "image"
        shape = shape or (0, 0, 3)
    else:
        raise ValueError(
            f"{storage.uri}: no feature column {name!r} (fixed_size_list<float32>) and no binary "
            f"{IMAGE_COLUMN!r} column; columns: {schema.names}"
        )
    return FeatureInfo(
        name=name,
        folder=storage.uri,
        column=column,
        kind=kind,
        shape=tuple(int(s) for s in shape),
        columns=tuple(schema.names),
        extractor=extractor,
        parts=parts,
        identity=identity,
    )


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Everything needed to rebuild a model's input pipeline; saved in the checkpoint metadata."""

    shards: str
    family: str  # "logmel" | "frame" | "clip"
    features: tuple[str, ...]
    columns: tuple[str, ...]  # feature column of each set
    shapes: tuple[tuple[int, ...], ...]  # row shape of each set
    classes: tuple[str, ...]
    label_column: str = "labels"
    image_size: tuple[int, int] | None = None  # frames: model input (H, W)
    mean: tuple[float, ...] | None = None  # log-mel: per-channel mean of the training split
    std: tuple[float, ...] | None = None  # log-mel: per-channel standard deviation of the training split
    frame_augment: Any = None  # frames: avs.train.augment.FrameAugmentConfig (as a dict in JSON); None: defaults
    label_table: str | None = None  # labels from this Parquet table (joined on clip_id [+ segment]), not the shards
    target: str = "index"  # y: "index" (the first label's class index), "multi_hot" or "soft" (see label_targets)

    @property
    def kind(self) -> str:
        return "image" if self.columns == (IMAGE_COLUMN,) else "vector"

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one ``x`` row."""
        if self.kind == "image":
            return (3, *self.image_size) if self.image_size else (3, *self.shapes[0][:2])
        if len(self.features) == 1:
            return self.shapes[0]
        return (sum(int(np.prod(s)) for s in self.shapes),)

    def with_shards(self, shards: str) -> DataSpec:
        return dataclasses.replace(self, shards=shards)


def folder_of(spec: DataSpec, name: str) -> str:
    return f"{spec.shards.rstrip('/')}/{name}"


# ------------------------------------------------------------------------------------------------ arrow -> numpy


def fixed_list_to_numpy(column: pa.ChunkedArray | pa.Array, shape: Sequence[int]) -> np.ndarray:
    """``fixed_size_list<float32>[prod(shape)]`` -> ``(rows, *shape)`` float32."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    if arr.offset or arr.null_count:
        arr = pa.concat_arrays([arr])  # materialise a sliced array so .values starts at row 0
    values = arr.values.to_numpy(zero_copy_only=False)
    size = int(np.prod(shape))
    return np.asarray(values[: n * size], dtype=np.float32).reshape(n, *shape)


def label_indices(table: pa.Table, label_column: str, classes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """``(y (rows,) int64 with -1 for unknown, first labels as strings ("" when none))``."""
    if label_column not in table.column_names:
        return np.full(table.num_rows, -1, dtype=np.int64), [""] * table.num_rows
    col = table.column(label_column)
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        labels = [(v[0] if v else "") for v in col.to_pylist()]
    else:
        labels = [(v or "") for v in col.to_pylist()]
    index = {c: i for i, c in enumerate(classes)}
    y = np.asarray([index.get(str(v), -1) for v in labels], dtype=np.int64)
    return y, [str(v) for v in labels]


TARGETS = ("index", "multi_hot", "soft")


def label_targets(
    table: pa.Table, label_column: str, classes: Sequence[str], target: str
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label targets from a list<string> label column -> ``(y (rows, classes) float32, labelled (rows,)
    bool)``. Every entry of a row's list is one vote (LADI: one annotator answer, ``avs.data.read_ladi``):
    ``multi_hot`` = 1 where a class has a vote; ``soft`` = its votes / the row's largest count (paper 002
    §2.1). A row with an empty list is unlabelled; a row whose entries name none of ``classes`` (e.g. only
    "damage: none" votes when the none-classes are not trained) is labelled, a negative for every class."""
    if target not in TARGETS[1:]:
        raise ValueError(f"label_targets: target must be one of {TARGETS[1:]}, got {target!r}")
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((table.num_rows, len(classes)), np.float32)
    labelled = np.zeros(table.num_rows, dtype=bool)
    if label_column in table.column_names:
        for r, labels in enumerate(table.column(label_column).to_pylist()):
            if isinstance(labels, str):
                labels = [labels]
            labelled[r] = bool(labels)
            for name in labels or ():
                i = index.get(str(name))
                if i is not None:
                    y[r, i] += 1.0
    top = y.max(axis=1, initial=0.0)
    if target == "multi_hot":
        y = (y > 0).astype(np.float32)
    else:
        y[top > 0] /= top[top > 0, None]
    return y, labelled


def _key_columns(table: pa.Table, labels: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in KEY_COLUMNS:
        if name in table.column_names:
            out[name] = table.column(name).to_numpy(zero_copy_only=False)
    out["split"] = (
        table.column("split").to_numpy(zero_copy_only=False)
        if "split" in table.column_names
        else np.asarray([""] * table.num_rows, dtype=object)
    )
    out["label"] = np.asarray(labels, dtype=object)
    return out


_LABEL_TABLES: dict[tuple[str, str], tuple[tuple[str, ...], dict[tuple, Any]]] = {}  # per process


def label_lookup(path: str, column: str) -> tuple[tuple[str, ...], dict[tuple, Any]]:
    """A label table (a Parquet file or folder: ``clip_id`` [+ ``segment``] + ``column``, e.g. ``avs cluster``'s
    assignments.parquet) -> (join keys, {key tuple: value}); read once per process."""
    cached = _LABEL_TABLES.get((path, column))
    if cached is not None:
        return cached
    storage = Storage(path)
    table = pq.read_table(storage.root, filesystem=storage.fs)
    if "clip_id" not in table.column_names or column not in table.column_names:
        raise ValueError(f"label table {path} needs clip_id and {column!r} columns; it has {table.column_names}")
    keys = ("clip_id", "segment") if "segment" in table.column_names else ("clip_id",)
    rows = zip(*[table.column(k).to_pylist() for k in keys], strict=True)
    lookup = dict(zip(rows, table.column(column).to_pylist(), strict=True))
    if len(lookup) != table.num_rows:
        raise ValueError(f"label table {path}: {table.num_rows - len(lookup)} duplicate {'/'.join(keys)} keys")
    _LABEL_TABLES[(path, column)] = (keys, lookup)
    return keys, lookup


def attach_labels(table: pa.Table, label_table: str | None, label_column: str) -> pa.Table:
    """``table`` with ``label_column`` (list<string>) taken from ``label_table`` by key; rows the table does not
    name get no label (null). Without a label table, ``table`` as it is."""
    if not label_table:
        return table
    keys, lookup = label_lookup(label_table, label_column)
    missing = [k for k in keys if k not in table.column_names]
    if missing:
        raise ValueError(f"rows have no {missing} column(s) to join the label table {label_table} on")
    values = [lookup.get(k) for k in zip(*[table.column(k).to_pylist() for k in keys], strict=True)]
    labels = [None if v is None else [str(e) for e in v] if isinstance(v, list) else [str(v)] for v in values]
    column = pa.array(labels, pa.list_(pa.string()))
    if label_column in table.column_names:
        return table.set_column(table.column_names.index(label_column), label_column, column)
    return table.append_column(label_column, column)


def _finish(table: pa.Table, x: np.ndarray, spec: DataSpec, keep_keys: bool, drop_unlabeled: bool) -> dict[str, Any]:
    table = attach_labels(table, spec.label_table, spec.label_column)
    y, labels = label_indices(table, spec.label_column, spec.classes)
    labelled = y >= 0
    if spec.target != "index":
        y, labelled = label_targets(table, spec.label_column, spec.classes, spec.target)
    out: dict[str, Any] = {"x": x, "y": y}
    if keep_keys:
        out.update(_key_columns(table, labels))
    if drop_unlabeled:
        keep = labelled
        if not keep.all():
            out = {k: v[keep] for k, v in out.items()}
    return out


# ------------------------------------------------------------------------------------------------ batch functions


def vector_batch(table: pa.Table, spec: DataSpec, keep_keys: bool, drop_unlabeled: bool) -> dict[str, Any]:
    """One feature set of fixed-size lists -> ``x`` ``(rows, *shape)``."""
    x = fixed_list_to_numpy(table.column(spec.columns[0]), spec.shapes[0])
    return _finish(table, x, spec, keep_keys, drop_unlabeled)


def decode_jpegs(images: Sequence[bytes]) -> list[Any]:
    """JPEG bytes -> list of ``(3, H, W)`` uint8 tensors (torchvision.io.decode_jpeg, RGB)."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in images]
    if not data:
        return []
    return decode_jpeg(data, mode=ImageReadMode.RGB)


def frame_batch(
    table: pa.Table, spec: DataSpec, keep_keys: bool, drop_unlabeled: bool, train: bool, augment: bool
) -> dict[str, Any]:
    """JPEG frames -> decoded, augmented (training) or resized + normalised -> ``x`` ``(rows, 3, H, W)``."""
    x = frames_to_x(table.column(IMAGE_COLUMN).to_pylist(), spec, train=train, augment=augment)
    return _finish(table, x, spec, keep_keys, drop_unlabeled)


def frames_to_x(images: Sequence[bytes], spec: DataSpec, train: bool = False, augment: bool = False) -> np.ndarray:
    """JPEG bytes -> ``(rows, 3, H, W)`` float32 as the training task sees them: decoded, then the training
    augmentation (``train and augment``) or the evaluation resize + ImageNet normalisation."""
    import torch

    from avs.train.augment import FrameAugmentConfig, frame_eval_transform, frame_train_transform

    size = tuple(spec.image_size) if spec.image_size else tuple(spec.shapes[0][:2])
    fcfg = spec.frame_augment
    if isinstance(fcfg, dict):
        from avs.config import from_dict

        fcfg = from_dict(FrameAugmentConfig, fcfg)
    fcfg = dataclasses.replace(fcfg, size=size) if fcfg is not None else FrameAugmentConfig(size=size)
    transform = frame_train_transform(fcfg) if (train and augment) else frame_eval_transform(fcfg)
    imgs = decode_jpegs(images)
    if imgs:
        x = torch.stack([transform(img) for img in imgs]).numpy()
    else:
        x = np.zeros((0, 3, *size), dtype=np.float32)
    return x.astype(np.float32, copy=False)


def read_joined_part(spec: DataSpec, part: str, split: str | None, clips: Sequence[str] | None = None) -> pa.Table:
    """Same-named part of every feature set, joined on ``(clip_id, segment)``; column ``__x`` holds the
    concatenated vectors (fixed_size_list), in ``spec.features`` order. ``split`` filters the rows."""
    tables = []
    filters = [("split", "=", split)] if split is not None else []
    if clips is not None:
        filters.append(("clip_id", "in", list(clips)))
    filters = filters or None
    for i, (name, column) in enumerate(zip(spec.features, spec.columns, strict=True)):
        storage = Storage(folder_of(spec, name))
        if i == 0:
            schema_names = pq.read_schema(storage.path(part), filesystem=storage.fs).names
            cols = [c for c in (*KEY_COLUMNS, "split", spec.label_column) if c in schema_names] + [column]
        else:
            cols = [*JOIN_KEYS, column]
        if not storage.exists(part):
            raise FileNotFoundError(
                f"{storage.path(part)} is missing: the feature sets {list(spec.features)} were "
                "not written by one `avs extract` run (their part files differ)"
            )
        t = pq.read_table(storage.path(part), filesystem=storage.fs, columns=cols, filters=filters)
        tables.append(t.rename_columns([f"__f{i}" if c == column else c for c in t.column_names]))

    # Acero joins no list columns: join the keys with row numbers, then take the rows.
    def keyed(t: pa.Table, i: int) -> pa.Table:
        return t.select(list(JOIN_KEYS)).append_column(f"__r{i}", pa.array(np.arange(t.num_rows), pa.int64()))

    index = keyed(tables[0], 0)
    for i, t in enumerate(tables[1:], start=1):
        index = index.join(keyed(t, i), keys=list(JOIN_KEYS), join_type="inner")
    index = index.sort_by([("clip_id", "ascending"), ("segment", "ascending")])
    joined = tables[0].take(index.column("__r0"))
    for i, t in enumerate(tables[1:], start=1):
        joined = joined.append_column(f"__f{i}", t.column(f"__f{i}").take(index.column(f"__r{i}")))
    parts = [
        fixed_list_to_numpy(joined.column(f"__f{i}"), spec.shapes[i]).reshape(joined.num_rows, -1)
        for i in range(len(spec.features))
    ]
    x = np.concatenate(parts, axis=1) if parts else np.zeros((0, 0), np.float32)
    flat = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), pa.float32()), x.shape[1])
    keep = [c for c in joined.column_names if not c.startswith("__f")]
    return joined.select(keep).append_column("__x", flat)


def joined_batch(
    batch: dict[str, Any],
    spec: DataSpec,
    split: str | None,
    keep_keys: bool,
    drop_unlabeled: bool,
    clips: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A batch of part names -> the joined rows of those parts (``x`` ``(rows, sum of dims)``)."""
    tables = [read_joined_part(spec, str(p), split, clips) for p in batch["part"]]
    table = pa.concat_tables(tables) if tables else pa.table({})
    dims = spec.input_shape[0]
    x = fixed_list_to_numpy(table.column("__x"), (dims,)) if table.num_rows else np.zeros((0, dims), np.float32)
    return _finish(table, x, spec, keep_keys, drop_unlabeled)


def tables_batch(spec: DataSpec, tables: Mapping[str, pa.Table]) -> dict[str, Any]:
    """In-memory rows of one clip in the shards' layout (feature set -> table, as ``avs.serve`` computes them) ->
    ``x`` and key columns exactly as ``split_dataset(..., keep_keys=True)`` prepares them for prediction (labels
    and label tables are not read: rows are unlabelled)."""
    spec = dataclasses.replace(spec, label_column="labels", label_table=None, target="index")
    first = tables[spec.features[0]]
    if len(spec.features) == 1:
        if spec.kind == "image":
            return frame_batch(first, spec, keep_keys=True, drop_unlabeled=False, train=False, augment=False)
        return vector_batch(first, spec, keep_keys=True, drop_unlabeled=False)
    # the rows every set has (an inner join on segment, as read_joined_part does for batch prediction), in order
    shared = sorted(set.intersection(*(set(tables[n].column("segment").to_pylist()) for n in spec.features)))
    if not shared:
        raise ValueError(f"the feature sets {list(spec.features)} share no segment of this clip")
    parts = []
    for name, column, shape in zip(spec.features, spec.columns, spec.shapes, strict=True):
        table = tables[name]
        where = {seg: i for i, seg in enumerate(table.column("segment").to_pylist())}
        table = table.take(pa.array([where[seg] for seg in shared], pa.int64()))
        parts.append(fixed_list_to_numpy(table.column(column), shape).reshape(table.num_rows, -1))
        if name == spec.features[0]:
            first = table
    return _finish(first, np.concatenate(parts, axis=1), spec, keep_keys=True, drop_unlabeled=False)


# ------------------------------------------------------------------------------------------------ datasets


def _read(spec: DataSpec, split: str | None, columns: list[str], clips: Sequence[str] | None = None):
    import ray.data
    from ray.data.expressions import col, lit

    storage = Storage(folder_of(spec, spec.features[0]))
    read = list(columns) if clips is None or "clip_id" in columns else [*columns, "clip_id"]
    ds = ray.data.read_parquet(storage.path(""), filesystem=storage.fs).select_columns(read)
    if split is not None:
        ds = ds.filter(expr=col("split") == lit(split))
    if clips is not None:  # location-disjoint folds: this fold's clips only
        ds = ds.filter(expr=col("clip_id").is_in(list(clips)))
    return ds


def distinct_labels(
    info: FeatureInfo, label_column: str, split: str | None, label_table: str | None = None
) -> list[str]:
    """Sorted first labels found in a split of a feature set (classes "from the data"); reads two columns (or
    the label table's column, for the split's rows)."""
    storage = Storage(info.folder)
    if label_table:
        cols = [c for c in (*JOIN_KEYS, "split") if c in info.columns]
        filters = [("split", "=", split)] if split is not None and "split" in info.columns else None
        rows = attach_labels(
            pq.read_table(storage.path(""), filesystem=storage.fs, columns=cols, filters=filters),
            label_table,
            label_column,
        )
        _, labels = label_indices(rows, label_column, ())
        found = {v for v in labels if v}
        numeric = all(v.lstrip("-").isdigit() for v in found)
        return sorted(found, key=int) if numeric and found else sorted(found)
    if label_column not in info.columns:
        raise ValueError(f"{info.folder} has no label column {label_column!r}; columns: {list(info.columns)}")
    cols = [label_column] + (["split"] if "split" in info.columns else [])
    filters = [("split", "=", split)] if split is not None and "split" in info.columns else None
    table = pq.read_table(storage.path(""), filesystem=storage.fs, columns=cols, filters=filters)
    _, labels = label_indices(table, label_column, ())
    return sorted({v for v in labels if v})


def split_dataset(
    spec: DataSpec,
    split: str | None,
    *,
    train: bool = False,
    augment: bool = False,
    limit: int | None = None,
    keep_keys: bool = False,
    drop_unlabeled: bool = True,
    batch_rows: int = 64,
    clips: Sequence[str] | None = None,
):
    """Ray Dataset of one split (``None``: every row) with ``x`` (float32) and ``y`` (int64); with
    ``keep_keys`` also clip_id, segment, start_s, end_s, timestamp_s (where stored), split, label.
    ``clips``: only these clip ids (a fold)."""
    import ray.data

    first = feature_info(spec.shards, spec.features[0])
    if len(spec.features) > 1:
        for name in spec.features[1:]:
            other = feature_info(spec.shards, name)
            if set(other.parts) != set(first.parts):
                raise ValueError(
                    f"feature sets {first.name} and {name} have different part files: they were not "
                    "written by one `avs extract` run and cannot be joined part by part"
                )
        ds = ray.data.from_items([{"part": p} for p in first.parts], override_num_blocks=len(first.parts))
        ds = ds.map_batches(
            joined_batch,
            batch_size=1,
            batch_format="numpy",
            fn_kwargs={
                "spec": spec,
                "split": split,
                "keep_keys": keep_keys,
                "drop_unlabeled": drop_unlabeled,
                "clips": list(clips) if clips is not None else None,
            },
        )
        return ds.limit(limit) if limit else ds
    if "split" not in first.columns and split is not None:
        raise ValueError(f"{first.folder} has no 'split' column; cannot select split {split!r}")
    columns = [c for c in (*KEY_COLUMNS, "split", spec.label_column) if c in first.columns] + [first.column]
    ds = _read(spec, split, columns, clips)
    if limit:
        ds = ds.limit(limit)
    kwargs = {"spec": spec, "keep_keys": keep_keys, "drop_unlabeled": drop_unlabeled}
    if spec.kind == "image":
        return ds.map_batches(
            frame_batch,
            batch_size=min(batch_rows, 32),
            batch_format="pyarrow",
            fn_kwargs={**kwargs, "train": train, "augment": augment},
        )
    return ds.map_batches(vector_batch, batch_size=batch_rows, batch_format="pyarrow", fn_kwargs=kwargs)


def _count_batch(
    table: pa.Table, label_column: str, classes: Sequence[str], label_table: str | None = None, target: str = "index"
) -> dict[str, np.ndarray]:
    """Rows per class (multi-label: rows with a vote for it) and rows with no class."""
    table = attach_labels(table, label_table, label_column)
    if target != "index":
        y, labelled = label_targets(table, label_column, classes, target)
        counts = (y > 0).sum(axis=0).astype(np.int64)
        return {
            "counts": counts[None, :],
            "unknown": np.asarray([int((~labelled).sum())], np.int64),
            "n": np.asarray([table.num_rows], np.int64),
        }
    y, _ = label_indices(table, label_column, classes)
    counts = np.bincount(y[y >= 0], minlength=len(classes)).astype(np.int64)
    return {"counts": counts[None, :], "unknown": np.asarray([int((y < 0).sum())], np.int64)}


def label_counts(
    spec: DataSpec, split: str | None, limit: int | None = None, clips: Sequence[str] | None = None
) -> dict[str, Any]:
    """``{"rows", "unknown", "per_class": {class: n}}`` of a split (reads only the label column)."""

    first = feature_info(spec.shards, spec.features[0])
    if spec.target != "index" and len(spec.features) > 1:
        raise ValueError("multi-label targets (target multi_hot / soft) are read from one feature set")
    if len(spec.features) > 1:
        ds = split_dataset(spec, split, limit=limit, drop_unlabeled=False, keep_keys=True, clips=clips)
        ds = ds.select_columns(["y"])
        ys = [np.asarray(b["y"]) for b in ds.iter_batches(batch_size=4096, batch_format="numpy")]
        y = np.concatenate(ys) if ys else np.zeros(0, np.int64)
        counts = np.bincount(y[y >= 0], minlength=len(spec.classes))
        unknown = int((y < 0).sum())
    else:
        wanted = ("split", spec.label_column) if not spec.label_table else ("split", *JOIN_KEYS)
        columns = [c for c in wanted if c in first.columns] or ["clip_id"]
        ds = _read(spec, split, columns, clips)
        if limit:
            ds = ds.limit(limit)
        rows = ds.map_batches(
            _count_batch,
            batch_format="pyarrow",
            batch_size=4096,
            fn_kwargs={
                "label_column": spec.label_column,
                "classes": spec.classes,
                "label_table": spec.label_table,
                "target": spec.target,
            },
        ).take_all()
        counts = np.sum([r["counts"] for r in rows], axis=0) if rows else np.zeros(len(spec.classes), np.int64)
        unknown = int(sum(int(r["unknown"]) for r in rows))
    per_class = {c: int(n) for c, n in zip(spec.classes, counts, strict=True)}
    if spec.target != "index":  # a row counts in every class it holds: rows = total, labelled = rows with one
        total = int(sum(int(r["n"]) for r in rows))
        return {"rows": total, "labelled": total - unknown, "unknown": unknown, "per_class": per_class}
    return {
        "rows": int(sum(per_class.values())) + unknown,
        "labelled": int(sum(per_class.values())),
        "unknown": unknown,
        "per_class": per_class,
    }


def _moment_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    x = np.asarray(batch["x"], dtype=np.float64)  # (rows, chans, ...)
    if x.ndim < 2:
        raise ValueError(f"channel statistics need x of shape (rows, chans, ...), got {x.shape}")
    axes = (0, *range(2, x.ndim))
    per = int(np.prod([x.shape[a] for a in axes]))
    return {"n": np.asarray([per], np.float64), "s": x.sum(axis=axes)[None], "ss": (x * x).sum(axis=axes)[None]}


def channel_stats(ds) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of ``x`` ``(rows, chans, ...)`` over one pass of ``ds``."""
    rows = ds.select_columns(["x"]).map_batches(_moment_batch, batch_format="numpy", batch_size=256).take_all()
    rows = [r for r in rows if float(r["n"]) > 0]
    if not rows:
        raise ValueError("no training rows to compute the standardisation statistics from")
    n = sum(float(r["n"]) for r in rows)
    s = np.sum([r["s"] for r in rows], axis=0)
    ss = np.sum([r["ss"] for r in rows], axis=0)
    mean = s / n
    var = np.maximum(ss / n - mean * mean, 0.0)
    std = np.sqrt(var)
    std = np.where(std > 1e-8, std, 1.0)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def standardize(x, mean: Sequence[float] | None, std: Sequence[float] | None):
    """``(x - mean_c) / std_c`` per channel (dim 1) of a torch tensor ``(batch, chans, ...)``."""
    if mean is None or std is None:
        return x
    import torch

    shape = (1, len(mean)) + (1,) * (x.ndim - 2)
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s
