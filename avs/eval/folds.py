"""Location-disjoint k-fold splits (paper 000, Table 3: "we splitted the whole dataset into train and validation
with keeping no overlapping about the location id"; five train / validation label files for S03-S04).

The group of a TAU clip is its recording location, the metadata's ``identifier`` (``location`` in the avs
manifest, e.g. "lisbon-1000"). ``sklearn.model_selection.GroupKFold`` (no shuffling: deterministic) makes folds
of about equal size with no location in two folds; with ``labels`` given, ``StratifiedGroupKFold`` (also
unshuffled) also keeps the scene proportions close to the whole set's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

PAPER000_N_FOLDS = 5  # paper 000, Table 3 (S03 / S04: five folds)


def location_folds(
    locations: Sequence[str] | np.ndarray,
    n_splits: int = PAPER000_N_FOLDS,
    labels: Sequence[str] | np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` pairs ``(train_indices, val_indices)``; every location is in exactly one validation fold."""
    groups = np.asarray(locations, dtype=object)
    if any(g is None or (isinstance(g, float) and np.isnan(g)) or g == "" for g in groups):
        raise ValueError("every clip needs a location (TAU 'identifier') for location-disjoint folds")
    groups = groups.astype(str)
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise ValueError(f"{n_splits} folds need at least {n_splits} locations, got {n_groups}")
    X = np.zeros((len(groups), 1))
    if labels is None:
        splitter = GroupKFold(n_splits=n_splits)
        splits = splitter.split(X, groups=groups)
    else:
        splitter = StratifiedGroupKFold(n_splits=n_splits)
        splits = splitter.split(X, np.asarray(labels, dtype=str), groups=groups)
    return [(np.sort(tr), np.sort(va)) for tr, va in splits]


def fold_of_each(
    locations: Sequence[str] | np.ndarray,
    n_splits: int = PAPER000_N_FOLDS,
    labels: Sequence[str] | np.ndarray | None = None,
) -> np.ndarray:
    """``(n,)`` int: the fold (0..n_splits-1) in which each clip is a validation clip."""
    out = np.full(len(locations), -1, dtype=np.int64)
    for k, (_, val) in enumerate(location_folds(locations, n_splits, labels)):
        out[val] = k
    return out


def add_cv_folds(
    manifest: pa.Table,
    n_splits: int = PAPER000_N_FOLDS,
    location_column: str = "location",
    stratify: bool = False,
    column: str = "cv_fold",
) -> pa.Table:
    """The manifest with an int32 ``cv_fold`` column (validation fold of each clip; location-disjoint).

    ``stratify=True`` balances scenes using the first label of each clip (TAU: its scene).
    """
    if location_column not in manifest.column_names:
        raise KeyError(f"manifest has no {location_column!r} column (TAU 'identifier')")
    locations = manifest.column(location_column).to_pylist()
    labels = None
    if stratify:
        labels = [(ls[0] if ls else "") for ls in manifest.column("labels").to_pylist()]
    folds = fold_of_each(locations, n_splits, labels)
    if column in manifest.column_names:
        manifest = manifest.drop_columns([column])
    return manifest.append_column(column, pa.array(folds, pa.int32()))
