"""What an output folder already holds: feature-set identities, finished clips, previous errors."""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401 (pa.compute)

from avs.shards.storage import Storage
from avs.shards.writer import part_name

FEATURE_SET_FILE = "_feature_set.json"
ERRORS_FILE = "errors.parquet"
PART_RE = re.compile(r"^part-(\d{5,})\.parquet$")

ERRORS_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("path", pa.string()),
        ("branch", pa.string()),  # audio | video: which decode branch failed
        ("stage", pa.string()),  # decode | segment | features | write | pipeline
        ("error_type", pa.string()),
        ("message", pa.string()),
        ("run_id", pa.string()),
    ]
)


class ConfigMismatchError(RuntimeError):
    """The output folder holds a feature set made with other settings."""


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _diff(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
        return out
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]


def check_feature_set(storage: Storage, name: str, identity: dict[str, Any], digest: str) -> bool:
    """True when the folder already holds this feature set with these settings, False when it holds none;
    raises ``ConfigMismatchError`` when it holds other settings."""
    rel = f"{name}/{FEATURE_SET_FILE}"
    if not storage.exists(rel):
        return False
    old = storage.read_json(rel)
    if old.get("hash") != digest:
        changes = _diff(old.get("identity", {}), identity)
        raise ConfigMismatchError(
            f"{storage.path(name)} already holds feature set {name!r} made with other settings "
            f"(hash {old.get('hash')} != {digest}): "
            + "; ".join(changes[:8])
            + ". Write to a new --out folder, or delete that folder to start over."
        )
    return True


def claim_feature_set(storage: Storage, name: str, identity: dict[str, Any], digest: str) -> None:
    """Record the feature set's settings (after ``check_feature_set`` passed for every set of the run)."""
    if check_feature_set(storage, name, identity, digest):
        return
    storage.makedirs(name)
    storage.write_json(f"{name}/{FEATURE_SET_FILE}", {"hash": digest, "identity": identity})


def part_names(storage: Storage, name: str) -> list[str]:
    return [n for n in storage.list(name, prefix="part-", suffix=".parquet") if PART_RE.match(n)]


def finished_clips(storage: Storage, name: str) -> set[str]:
    """clip_ids present in the feature set's parts (shards hold whole clips only)."""
    done: set[str] = set()
    for part in part_names(storage, name):
        done.update(storage.read_table(f"{name}/{part}", columns=["clip_id"]).column("clip_id").to_pylist())
    return done


def finished_clips_all(storage: Storage, names: list[str]) -> set[str]:
    """clip_ids present in every feature set."""
    sets = [finished_clips(storage, n) for n in names]
    return set.intersection(*sets) if sets else set()


def clips_in_parts(storage: Storage, names: list[str], parts: list[int]) -> set[str]:
    """clip_ids readable in the given part numbers of every feature set."""
    out: set[str] | None = None
    for name in names:
        have: set[str] = set()
        for part in parts:
            rel = f"{name}/{part_name(part)}"
            if storage.exists(rel):
                have.update(storage.read_table(rel, columns=["clip_id"]).column("clip_id").to_pylist())
        out = have if out is None else out & have
    return out or set()


def remove_orphan_parts(storage: Storage, names: list[str]) -> list[str]:
    """Delete parts that exist for some feature sets but not all (a run killed between the renames of one
    part); their clips are then not finished and get processed again. Returns the removed paths."""
    held = {n: set(part_names(storage, n)) for n in names}
    every = set.intersection(*held.values()) if held else set()
    removed = []
    for name, have in held.items():
        for part in sorted(have - every):
            storage.fs.delete_file(storage.path(f"{name}/{part}"))
            removed.append(f"{name}/{part}")
    return removed


def next_part_index(storage: Storage, names: list[str]) -> int:
    indices = [int(PART_RE.match(p).group(1)) for n in names for p in part_names(storage, n)]
    return max(indices, default=-1) + 1


def read_errors(storage: Storage) -> pa.Table:
    if not storage.exists(ERRORS_FILE):
        return ERRORS_SCHEMA.empty_table()
    return storage.read_table(ERRORS_FILE).cast(ERRORS_SCHEMA)


def branch_errors(errors: pa.Table, branch: str) -> pa.Table:
    return errors.filter(pa.compute.equal(errors.column("branch"), branch)) if errors.num_rows else errors


def write_errors(storage: Storage, table: pa.Table) -> None:
    storage.write_table(ERRORS_FILE, table.cast(ERRORS_SCHEMA))


def shard_metadata(
    identity: dict[str, Any], digest: str, shape: tuple[int, ...], extra: dict[str, Any] | None = None
) -> dict[bytes, bytes]:
    """Parquet schema metadata of a feature set: its settings, their hash, one row's shape, avs version,
    and extractor facts (``avs.extractor``: e.g. CLIP model, random_weights, class names)."""
    import avs

    return {
        b"avs.feature_set": json.dumps(identity, sort_keys=True).encode(),
        b"avs.config_hash": digest.encode(),
        b"avs.shape": json.dumps(list(shape)).encode(),
        b"avs.version": avs.__version__.encode(),
        b"avs.extractor": json.dumps(extra or {}, sort_keys=True).encode(),
    }
