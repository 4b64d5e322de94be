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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from avs.config import to_dict
from avs.data.manifest import CARRIED_COLUMNS
from avs.progress import Progress
from avs.shards import state
from avs.shards.config import ExtractConfig, feature_set_hash, feature_set_identity
from avs.shards.stages import DecodeStage, FeatureStage
from avs.shards.storage import Storage
from avs.shards.writer import FeatureSink, part_name


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
    names = [f.name for f in cfg.features]

    # 1. The manifest, and what the output folder already holds.
    if manifest is None:
        manifest = load_manifest(cfg.input, cfg.dataset)
    identities = {f.name: feature_set_identity(cfg.audio, f) for f in cfg.features}
    hashes = {f.name: feature_set_hash(cfg.audio, f) for f in cfg.features}
    for f in cfg.features:
        state.claim_feature_set(storage, f.name, identities[f.name], hashes[f.name])
        storage.remove_stale_tmp(f.name)
    state.remove_orphan_parts(storage, names)  # parts a killed run wrote for some feature sets only
    finished = state.finished_clips_all(storage, names)
    previous_errors = state.read_errors(storage)
    failed_before = set(previous_errors.column("clip_id").to_pylist())

    ids = manifest.column("clip_id").to_pylist()
    skip_failed = not cfg.pipeline.retry_errors
    todo_rows = [i for i, cid in enumerate(ids) if cid not in finished and not (skip_failed and cid in failed_before)]
    todo = manifest.take(pa.array(todo_rows, pa.int64())).append_column("row", pa.array(todo_rows, pa.int64()))
    n_inputs = manifest.num_rows
    print(
        f"[avs extract] {n_inputs} clips in the manifest: {len(finished & set(ids))} already written, "
        f"{todo.num_rows} to process -> {storage.uri}",
        flush=True,
    )

    # 2. The Ray Data pipeline: workers write the parts, the driver counts clip status rows.
    sinks: tuple[FeatureSink, ...] = ()
    plan: dict[str, Any] = {}
    written: dict[str, int] = {}  # clip_id -> rows written
    new_errors: list[dict[str, Any]] = []
    parts: set[int] = set()
    stage_s = {"decode_s": 0.0, "feature_s": 0.0, "write_s": 0.0}  # worker seconds, summed over clips
    first_result_s = None
    if todo.num_rows:
        init_ray(cfg.pipeline.num_cpus)
        plan = plan_resources(cfg)
        shapes = _feature_shapes(cfg)
        sinks = tuple(
            FeatureSink(n, shapes[n], state.shard_metadata(identities[n], hashes[n], shapes[n])) for n in names
        )
        first_part = state.next_part_index(storage, names)
        path_of = dict(zip(todo.column("clip_id").to_pylist(), todo.column("path").to_pylist(), strict=True))
        progress = Progress(todo.num_rows, "clips", "avs extract", cfg.pipeline.progress_interval_s)
        dataset = _dataset(cfg, todo, manifest, plan, sinks, first_part)
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=4):
            failed_here = 0
            if first_result_s is None:
                first_result_s = round(time.perf_counter() - t_start, 3)
            for key in stage_s:
                stage_s[key] += float(np.sum(batch[key]))
            for i, cid in enumerate(batch["clip_id"]):
                cid = str(cid)
                if batch["error_type"][i]:
                    new_errors.append(
                        {
                            "clip_id": cid,
                            "path": path_of[cid],
                            "stage": str(batch["error_stage"][i]),
                            "error_type": str(batch["error_type"][i]),
                            "message": str(batch["error_message"][i]),
                        }
                    )
                    failed_here += 1
                else:
                    written[cid] = int(batch["n_rows"][i])
                    parts.add(int(batch["part"][i]))
            progress.update(len(batch["clip_id"]), errors=len(new_errors))
            if failed_here:
                _save_errors(storage, previous_errors, new_errors, run_id)
        progress.close()

    # 3. Check the books: every clip processed is written (and readable) or failed, exactly once.
    processed = todo.num_rows
    on_disk = state.clips_in_parts(storage, names, sorted(parts))
    lost = [cid for cid in written if cid not in on_disk]
    for cid in lost:  # a part overwritten or missing after the worker said it wrote it
        del written[cid]
        new_errors.append(
            {
                "clip_id": cid,
                "path": path_of[cid],
                "stage": "write",
                "error_type": "lost_write",
                "message": "the clip was reported written but is not in its part; run again",
            }
        )
    seen = set(written) | {e["clip_id"] for e in new_errors}
    for cid in set(todo.column("clip_id").to_pylist()) - seen:  # never reported back by Ray Data
        new_errors.append(
            {
                "clip_id": cid,
                "path": path_of[cid],
                "stage": "pipeline",
                "error_type": "missing",
                "message": "no status came back for this clip; run again",
            }
        )
    if len(written) + len(new_errors) != processed:
        raise RuntimeError(
            f"bookkeeping error: {processed} processed != {len(written)} written + {len(new_errors)} failed"
        )
    errors = _save_errors(storage, previous_errors, new_errors, run_id, retried=set(todo.column("clip_id").to_pylist()))
    all_written = state.finished_clips_all(storage, names)
    seconds = time.perf_counter() - t_start
    audio_seconds = len(written) * _clip_seconds(todo, cfg)
    summary = {
        "run_id": run_id,
        "config": to_dict(cfg),
        "feature_sets": {n: {"hash": hashes[n], **({"shape": list(shapes[n])} if sinks else {})} for n in names},
        "versions": versions(),
        "resources": plan,
        "counts": {
            "inputs": n_inputs,
            "skipped": n_inputs - processed,  # finished earlier (or failed earlier, with retry_errors off)
            "processed": processed,
            "clips_written": len(written),
            "rows_written": sum(written.values()),
            "clips_failed": len(new_errors),
            "clips_in_output": len(all_written & set(ids)),
            "error_rows": errors.num_rows,
        },
        "seconds": round(seconds, 3),
        "first_result_s": first_result_s,  # start-up: process start to the first clip done
        "worker_seconds": {k: round(v, 3) for k, v in stage_s.items()},
        "throughput": {
            "clips_per_s": round(processed / seconds, 3) if seconds else None,
            "audio_hours_per_s": round(audio_seconds / 3600 / seconds, 5) if seconds else None,
        },
        "parts_written": [part_name(p) for p in sorted(parts)],
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


def _dataset(
    cfg: ExtractConfig,
    todo: pa.Table,
    manifest: pa.Table,
    plan: dict[str, Any],
    sinks: tuple[FeatureSink, ...],
    first_part: int,
) -> Any:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # avs prints its own progress lines
    ctx.verbose_stats_logs = False
    # Never split a block: a decode block holds whole clips, and the feature worker writes whole clips.
    ctx.target_max_block_size = None
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    p = cfg.pipeline
    # One block per decode batch, made in the driver (no read / repartition tasks competing with the
    # actors for CPUs); its number is the part the feature worker writes its clips to.
    inputs = todo.select(["clip_id", "path", "row"])
    blocks = []
    for k, start in enumerate(range(0, inputs.num_rows, p.batch_clips)):
        block = inputs.slice(start, p.batch_clips)
        blocks.append(block.append_column("part", pa.array([first_part + k] * block.num_rows, pa.int64())))
    ds = ray.data.from_arrow(blocks)
    ds = ds.map_batches(
        DecodeStage,
        fn_constructor_kwargs={"audio": cfg.audio, "timeout_s": p.decode_timeout_s, "plugins": p.plugins},
        batch_size=None,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan["decoders"]),
        num_cpus=1,
    )
    ds = ds.map_batches(
        FeatureStage,
        fn_constructor_kwargs={
            "audio": cfg.audio,
            "features": cfg.features,
            "sinks": sinks,
            "out_uri": cfg.out,
            "carried": manifest.select(list(CARRIED_COLUMNS)),
            "compression": p.compression,
            "device": "cuda" if plan["use_gpu"] else "cpu",
            "threads": plan["feature_threads"],
        },
        batch_size=None,
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
