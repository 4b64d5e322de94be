"""The extraction job: manifest -> Ray Data (decode -> features) -> Parquet shards + errors + run.json.

    summary = run_extract(cfg)      # cfg: ExtractConfig; returns the dict written to OUT/run.json

Guarantees (DESIGN.md "contracts"): every input clip ends up either in the feature shards or in
``errors.parquet``; a re-run skips finished clips and writes no duplicates; a feature set made with
other settings in the same folder is refused (``ConfigMismatchError``).
"""

from __future__ import annotations

import logging
import platform
import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from avs.config import to_dict
from avs.progress import Progress
from avs.shards import state
from avs.shards.config import ExtractConfig, feature_set_hash, feature_set_identity
from avs.shards.stages import DecodeStage, FeatureStage
from avs.shards.storage import Storage
from avs.shards.writer import FeatureSink, ShardWriter


def init_ray(num_cpus: int | None = None) -> None:
    """Connect to the cluster of ``ray job submit`` (RAY_ADDRESS) or start an embedded local Ray."""
    import os

    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)


def versions() -> dict[str, str]:
    import pyarrow
    import ray
    import torch

    import avs

    return {
        "avs": avs.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "pyarrow": pyarrow.__version__,
        "machine": platform.platform(),
    }


def plan_resources(cfg: ExtractConfig) -> dict[str, Any]:
    """How many decode / feature actors, with which resources, on the connected Ray cluster.

    CPU: about a quarter of the CPUs decode, the rest run single-threaded feature actors (torch with
    several threads per actor next to busy decoders oversubscribes the cores; one thread per actor
    scales best). GPU: one feature actor per GPU, every CPU decodes.
    """
    import ray

    resources = ray.cluster_resources()
    cpus = max(1, int(resources.get("CPU", 1)))
    gpus = int(resources.get("GPU", 0))
    p = cfg.pipeline
    use_gpu = p.device == "cuda" or (p.device == "auto" and gpus > 0)
    if use_gpu:
        feature_workers = p.feature_workers or max(1, gpus)
        decoders = p.decoders or max(1, cpus - feature_workers)
        threads = 1
    else:
        decoders = p.decoders or max(1, cpus // 4)
        feature_workers = p.feature_workers or max(1, cpus - decoders)
        threads = 1
    return {
        "cpus": cpus,
        "gpus": gpus,
        "use_gpu": use_gpu,
        "feature_workers": feature_workers,
        "decoders": decoders,
        "feature_threads": threads,
    }


def run_extract(cfg: ExtractConfig, manifest: pa.Table | None = None) -> dict[str, Any]:
    from avs.data import load_manifest

    t_start = time.perf_counter()
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    storage = Storage(cfg.out)
    storage.makedirs()
    storage.remove_stale_tmp()

    # 1. The manifest, and what the output folder already holds.
    if manifest is None:
        manifest = load_manifest(cfg.input, cfg.dataset)
    identities = {f.name: feature_set_identity(cfg.audio, f) for f in cfg.features}
    hashes = {f.name: feature_set_hash(cfg.audio, f) for f in cfg.features}
    for f in cfg.features:
        state.claim_feature_set(storage, f.name, identities[f.name], hashes[f.name])
        storage.remove_stale_tmp(f.name)
    held = {f.name: state.finished_clips(storage, f.name) for f in cfg.features}
    finished = set.intersection(*held.values()) if held else set()
    previous_errors = state.read_errors(storage)
    failed_before = set(previous_errors.column("clip_id").to_pylist())

    ids = manifest.column("clip_id").to_pylist()
    skip_failed = not cfg.pipeline.retry_errors
    todo_mask = [cid not in finished and not (skip_failed and cid in failed_before) for cid in ids]
    todo = manifest.filter(pa.array(todo_mask))
    n_inputs = manifest.num_rows
    print(
        f"[avs extract] {n_inputs} clips in the manifest: {len(finished & set(ids))} already written, "
        f"{todo.num_rows} to process -> {storage.uri}",
        flush=True,
    )

    # 2. The Ray Data pipeline.
    sinks: list[FeatureSink] = []
    writer = None
    plan: dict[str, Any] = {}
    if todo.num_rows:
        init_ray(cfg.pipeline.num_cpus)
        plan = plan_resources(cfg)
        shapes = _feature_shapes(cfg)
        sinks = [
            FeatureSink(
                f.name, shapes[f.name], state.shard_metadata(identities[f.name], hashes[f.name], shapes[f.name])
            )
            for f in cfg.features
        ]
        writer = ShardWriter(
            storage,
            sinks,
            manifest,
            cfg.pipeline.rows_per_shard,
            state.next_part_index(storage, [f.name for f in cfg.features]),
            skip={n: held[n] - finished for n in held},
            compression=cfg.pipeline.compression,
        )
        progress = Progress(todo.num_rows, "clips", "avs extract", cfg.pipeline.progress_interval_s)
        for batch in _dataset(cfg, todo, plan).iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
            done, failed = writer.add(batch)
            progress.update(done + failed, errors=len(writer.errors))
            if failed:
                _save_errors(storage, previous_errors, writer.errors, run_id)
        writer.flush()
        for cid in writer.incomplete:  # cannot happen unless rows were lost inside Ray Data
            writer.errors.append(writer.error_record(cid, "pipeline", "incomplete", "not all segments arrived"))
        progress.close()

    # 3. Errors table, bookkeeping, run.json.
    new_errors = writer.errors if writer else []
    errors = _save_errors(storage, previous_errors, new_errors, run_id, retried=set(todo.column("clip_id").to_pylist()))
    written_now = writer.clips_written if writer else 0
    processed = todo.num_rows
    if written_now + len(new_errors) != processed:
        raise RuntimeError(f"lost clips: {processed} processed != {written_now} written + {len(new_errors)} failed")
    all_written = set.intersection(*[state.finished_clips(storage, f.name) for f in cfg.features])
    seconds = time.perf_counter() - t_start
    audio_seconds = written_now * _clip_seconds(todo, cfg)
    summary = {
        "run_id": run_id,
        "config": to_dict(cfg),
        "feature_sets": {
            f.name: {"hash": hashes[f.name], "shape": list(s.shape)} for f, s in zip(cfg.features, sinks, strict=False)
        }
        if sinks
        else {f.name: {"hash": hashes[f.name]} for f in cfg.features},
        "versions": versions(),
        "resources": plan,
        "counts": {
            "inputs": n_inputs,
            "skipped": n_inputs - processed,  # finished earlier (or failed earlier, with retry_errors off)
            "processed": processed,
            "clips_written": written_now,
            "rows_written": writer.rows_written if writer else 0,
            "clips_failed": len(new_errors),
            "clips_in_output": len(all_written & set(ids)),
            "error_rows": errors.num_rows,
        },
        "seconds": round(seconds, 3),
        "throughput": {
            "clips_per_s": round(processed / seconds, 3) if seconds else None,
            "audio_hours_per_s": round(audio_seconds / 3600 / seconds, 5) if seconds else None,
        },
        "parts_written": writer.parts_written if writer else [],
    }
    storage.write_json("run.json", summary)
    c = summary["counts"]
    print(
        f"[avs extract] done in {seconds:.1f} s: {c['clips_written']} clips written ({c['rows_written']} rows), "
        f"{c['clips_failed']} failed, {c['clips_in_output']}/{n_inputs} clips in {storage.uri}",
        flush=True,
    )
    return summary


def failure_fraction(summary: dict[str, Any]) -> float:
    c = summary["counts"]
    return c["clips_failed"] / c["processed"] if c["processed"] else 0.0


def _feature_shapes(cfg: ExtractConfig) -> dict[str, tuple[int, ...]]:
    from avs.features.base import create_extractor

    shapes = {}
    for f in cfg.features:
        ext = create_extractor(f.extractor, f.params, sample_rate_hz=cfg.audio.sample_rate_hz)
        shapes[f.name] = tuple(ext.output_shape(cfg.audio.n_channels(), cfg.audio.segment_samples()))
    return shapes


def _clip_seconds(todo: pa.Table, cfg: ExtractConfig) -> float:
    dur = todo.column("duration_s")
    mean = pc.mean(dur).as_py()
    return float(mean) if mean is not None else float(cfg.audio.clip_seconds or 0.0)


def _dataset(cfg: ExtractConfig, todo: pa.Table, plan: dict[str, Any]) -> Any:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # avs prints its own progress lines
    ctx.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    p = cfg.pipeline
    inputs = todo.select(["clip_id", "path"])
    # One block per decode batch, made in the driver: no read / repartition tasks competing with the
    # actors for CPUs (on a 2-CPU laptop the actors hold them all).
    blocks = [inputs.slice(i, p.batch_clips) for i in range(0, inputs.num_rows, p.batch_clips)]
    ds = ray.data.from_arrow(blocks)
    ds = ds.map_batches(
        DecodeStage,
        fn_constructor_kwargs={"audio": cfg.audio, "timeout_s": p.decode_timeout_s, "plugins": p.plugins},
        batch_size=p.batch_clips,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan["decoders"]),
        num_cpus=1,
    )
    ds = ds.map_batches(
        FeatureStage,
        fn_constructor_kwargs={
            "audio": cfg.audio,
            "features": cfg.features,
            "device": "cuda" if plan["use_gpu"] else "cpu",
            "threads": plan["feature_threads"],
        },
        batch_size=p.batch_segments,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan["feature_workers"]),
        num_gpus=1 if plan["use_gpu"] else 0,
        num_cpus=1,
    )
    return ds


def _save_errors(
    storage: Storage, previous: pa.Table, new: list[dict[str, Any]], run_id: str, retried: set[str] | None = None
) -> pa.Table:
    """errors.parquet = earlier errors of clips not retried now + this run's errors (one row per clip)."""
    keep = previous
    if retried is not None or new:
        drop = set(retried or ()) | {e["clip_id"] for e in new}
        keep = (
            previous.filter(pa.array([c not in drop for c in previous.column("clip_id").to_pylist()], pa.bool_()))
            if previous.num_rows
            else previous
        )
    fresh = pa.Table.from_pylist([{**e, "run_id": run_id} for e in new], schema=state.ERRORS_SCHEMA)
    table = pa.concat_tables([keep.cast(state.ERRORS_SCHEMA), fresh])
    state.write_errors(storage, table)
    return table
