"""The extraction job: manifest -> Ray Data (decode -> features) -> Parquet shards + errors + run.json.

    summary = run_extract(cfg)      # cfg: ExtractConfig; returns the dict written to OUT/run.json

Feature sets are grouped by what feeds them: the **audio** branch (decode audio, segments, log-mel / MFCC /
textures) and the **video** branch (decode sampled frames once; frames, CLIP, zero-shot CLIP). Each branch
is one Ray Data pipeline whose feature workers write whole clips as parts; the driver only counts.

Guarantees (DESIGN.md "contracts"), per branch: every input clip ends up either in the feature shards or
in ``errors.parquet``; a re-run skips finished clips and writes no duplicates; a feature set made with
other settings in the same folder is refused (``ConfigMismatchError``).
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import re
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
from avs.shards.config import ExtractConfig, FeatureSetConfig, feature_set_hash, feature_set_identity
from avs.shards.lease import OutputLease
from avs.shards.storage import Storage
from avs.shards.writer import FeatureSink, part_name

MANIFEST_FILE = "manifest.parquet"

BRANCHES = ("audio", "video")


def init_ray(num_cpus: int | None = None) -> None:
    """Join the cluster of ``ray job submit`` (RAY_ADDRESS) or start an embedded local Ray whose workers' output
    stays off the terminal (the driver prints the progress lines)."""
    from avs.ray_start import init_ray as start

    start(num_cpus, log_to_driver=False)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import avs

    out = {"avs": avs.__version__, "python": platform.python_version(), "machine": platform.platform()}
    for pkg in ("torch", "torchaudio", "ray", "pyarrow", "open_clip_torch", "av", "decord"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def plan_resources(cfg: ExtractConfig, branch: str, n_blocks: int | None = None) -> dict[str, Any]:
    """How many decode / feature actors, with which resources, on the connected Ray cluster.

    ``n_blocks``: the decode blocks of this run (``ceil(clips / pipeline.batch_clips)``); no pool gets more
    actors than blocks (an idle actor still costs its start-up and memory, and Ray Data warns about it).

    CPU, audio: one single-threaded actor per CPU that decodes and computes the features of its blocks
    (``AudioStage``; measured on 2 cores: 1.3x the steady rate of separate decode and feature actors,
    whose audio crosses the object store between them).
    CPU, video: a quarter decode; CLIP actors (one per two CPUs) use every core's threads, since reading a
    dozen frames is light next to the image encoders. GPU: one feature actor per GPU, other CPUs decode.
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
        threads = 2
    elif branch == "audio":  # one AudioStage (decode + features) per CPU; decoders = feature workers
        feature_workers = p.feature_workers or p.decoders or cpus
        decoders = feature_workers
        threads = 1
    else:  # video on CPU: decoding a few frames is light next to CLIP, so CLIP actors share every core
        decoders = p.decoders or max(1, cpus // 4)
        feature_workers = p.feature_workers or max(1, (cpus - decoders) // 2)
    if n_blocks is not None:
        feature_workers, decoders = min(feature_workers, max(1, n_blocks)), min(decoders, max(1, n_blocks))
    if not use_gpu and branch == "video":
        threads = max(1, cpus // feature_workers)  # every core's threads over the (capped) CLIP actors
    video_decoder = None
    if branch == "video":
        from avs.decode.dali import _dali_installed

        video_decoder = choose_video_decoder(cfg.video.backend, use_gpu, _dali_installed())
    n_models = sum(1 for f in cfg.features if f.extractor in ("clip", "clip-zeroshot"))
    writers = -(-feature_workers // FEATURE_WORKERS_PER_WRITER)  # ceil
    memory = plan_memory(branch, n_models, decoders, feature_workers, writers, resources.get("memory"), p)
    return {
        "cpus": cpus,
        "gpus": gpus,
        "use_gpu": use_gpu,
        "feature_workers": feature_workers,
        "decoders": decoders,
        "feature_threads": threads,
        "writers": writers,
        "memory_bytes": memory,
        **({"video_decoder": video_decoder} if video_decoder else {}),
    }


# One part writer (a thread of Parquet writing, ~500 MB/s: ~170 log-mel clips/s) keeps up with several
# feature workers; fewer writers are fewer processes to start before the first result.
FEATURE_WORKERS_PER_WRITER = 4
MIB = 2**20
# Memory each actor declares (MiB), so Ray places actors where they fit. Measured on the quickstart (USS,
# Ray Data's own metric) plus Ray Data's 25% headroom: audio decode ~0.4 GiB (the worker and its decoder
# child), audio features ~0.7 GiB (torch, filterbanks, one block), video decode ~0.6 GiB, CLIP features
# ~0.8 GiB + ~0.35 GiB per image encoder (3.0 GiB with paper 000's six CLIP sets), a part writer < 0.3 GiB.
ACTOR_MEMORY_MIB = {
    ("audio", "decode"): 640,
    ("audio", "feature"): 1024,
    ("video", "decode"): 1024,
    ("video", "feature"): 1280,
    ("video", "per_model"): 500,
    "writer": 384,
}


def plan_memory(
    branch: str, n_models: int, decoders: int, feature_workers: int, writers: int, available: float | None, p: Any
) -> dict[str, int]:
    """Bytes of memory each decode / feature / writer actor declares: ``pipeline.decode_memory_mb`` /
    ``feature_memory_mb`` when set, else the estimates above, scaled down together when the actors would
    not fit in the cluster's memory (so a small machine still runs, with Ray warning if they grow)."""
    decode = (p.decode_memory_mb or ACTOR_MEMORY_MIB[(branch, "decode")]) * MIB
    feature = p.feature_memory_mb or (
        ACTOR_MEMORY_MIB[(branch, "feature")] + (n_models * ACTOR_MEMORY_MIB[("video", "per_model")])
        if branch == "video"
        else ACTOR_MEMORY_MIB[(branch, "feature")]
    )
    feature *= MIB
    writer = ACTOR_MEMORY_MIB["writer"] * MIB
    total = decoders * decode + feature_workers * feature + writers * writer
    scale = min(1.0, 0.9 * float(available) / total) if available else 1.0
    return {"decode": int(decode * scale), "feature": int(feature * scale), "writer": int(writer * scale)}


def choose_video_decoder(backend: str, use_gpu: bool, dali_installed: bool) -> str:
    """The video decoder a run uses: "dali" (GPU, NVDEC) when asked for, or with "auto" when the features
    run on GPUs and DALI is installed; else the CPU backend ("auto": decord, PyAV fallback)."""
    if backend == "dali":
        if not use_gpu:
            raise ValueError("video.backend 'dali' decodes on the GPU: it needs a GPU (pipeline.device cuda)")
        if not dali_installed:
            raise ValueError("video.backend 'dali' needs NVIDIA DALI: pip install 'avs[gpu]'")
        return "dali"
    if backend == "auto" and use_gpu and dali_installed:
        return "dali"
    return backend


@dataclasses.dataclass
class BranchResult:
    counts: dict[str, int]
    parts: list[str]
    shapes: dict[str, list[int]]
    resources: dict[str, Any]
    worker_seconds: dict[str, float]
    first_result_s: float | None
    errors: list[dict[str, Any]]
    gpu_fallbacks: dict[str, int] = dataclasses.field(default_factory=dict)  # reason -> clips decoded on CPU


def run_extract(cfg: ExtractConfig, manifest: pa.Table | None = None) -> dict[str, Any]:
    from avs.data import load_manifest

    t_start = time.perf_counter()
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    storage = Storage(cfg.out)
    if manifest is None:
        manifest = load_manifest(cfg.input, cfg.dataset)
    _preflight(cfg)
    # One run per output folder: refused (LeaseHeldError) before anything is written when another holds it.
    with OutputLease(storage, run_id, stale_s=cfg.pipeline.lease_stale_s):
        return _run_extract(cfg, manifest, storage, run_id, t_start)


def _run_extract(
    cfg: ExtractConfig, manifest: pa.Table, storage: Storage, run_id: str, t_start: float
) -> dict[str, Any]:
    from avs.features.base import extractor_modality

    storage.remove_stale_tmp()
    identities = {f.name: feature_set_identity(cfg, f) for f in cfg.features}
    hashes = {f.name: feature_set_hash(cfg, f) for f in cfg.features}
    for f in cfg.features:  # refuse other settings before writing or computing anything
        state.check_feature_set(storage, f.name, identities[f.name], hashes[f.name])
    for f in cfg.features:
        state.claim_feature_set(storage, f.name, identities[f.name], hashes[f.name])
        storage.remove_stale_tmp(f.name)
    save_manifest(storage, manifest)

    results: dict[str, BranchResult] = {}
    for branch in BRANCHES:
        features = tuple(f for f in cfg.features if extractor_modality(f.extractor) == branch)
        if features:
            results[branch] = _run_branch(branch, features, cfg, storage, manifest, identities, hashes, run_id, t_start)

    seconds = time.perf_counter() - t_start
    shapes = {n: shape for r in results.values() for n, shape in r.shapes.items()}  # only when computed
    counts = {k: sum(r.counts[k] for r in results.values()) for k in next(iter(results.values())).counts}
    failed_clips = _failed_clips(storage, manifest)
    audio = results.get("audio")
    audio_seconds = audio.counts["clips_written"] * _clip_seconds(manifest, cfg) if audio else 0.0
    summary = {
        "run_id": run_id,
        "config": to_dict(cfg),
        "feature_sets": {f.name: {"hash": hashes[f.name], "shape": shapes.get(f.name)} for f in cfg.features},
        "versions": versions(),
        "counts": counts,  # summed over branches; per branch below
        # Over every clip of the manifest (written before, written now, failed), so an unchanged dataset
        # gives the same fraction, and exit status, on every run.
        "failures": {
            "clips": manifest.num_rows,
            "failed": failed_clips,
            "fraction": round(failed_clips / manifest.num_rows, 6) if manifest.num_rows else 0.0,
        },
        "branches": {
            b: {
                "counts": r.counts,
                "resources": r.resources,
                "first_result_s": r.first_result_s,
                "worker_seconds": r.worker_seconds,
                "parts_written": r.parts,
                "gpu_fallback_reasons": r.gpu_fallbacks,
            }
            for b, r in results.items()
        },
        "seconds": round(seconds, 3),
        "throughput": {
            "clips_per_s": round(counts["processed"] / seconds, 3) if seconds else None,
            "audio_hours_per_s": round(audio_seconds / 3600 / seconds, 5) if seconds else None,
        },
    }
    storage.write_json("run.json", summary)
    for b, r in results.items():
        c = r.counts
        print(
            f"[avs extract] {b}: {c['clips_written']} clips written ({c['rows_written']} rows), "
            f"{c['clips_failed']} failed, {c['clips_in_output']}/{c['inputs']} clips in {storage.uri}",
            flush=True,
        )
    print(f"[avs extract] done in {seconds:.1f} s", flush=True)
    return summary


def _run_branch(
    branch: str,
    features: tuple[FeatureSetConfig, ...],
    cfg: ExtractConfig,
    storage: Storage,
    manifest: pa.Table,
    identities: dict[str, Any],
    hashes: dict[str, str],
    run_id: str,
    t_start: float,
) -> BranchResult:
    names = [f.name for f in features]
    state.remove_orphan_parts(storage, names)  # parts a killed run wrote for some feature sets only
    finished = state.finished_clips_all(storage, names)
    previous_errors = state.read_errors(storage)
    failed_before = set(state.branch_errors(previous_errors, branch).column("clip_id").to_pylist())

    ids = manifest.column("clip_id").to_pylist()
    skip_failed = not cfg.pipeline.retry_errors
    todo_rows = [i for i, cid in enumerate(ids) if cid not in finished and not (skip_failed and cid in failed_before)]
    todo = manifest.take(pa.array(todo_rows, pa.int64())).append_column("row", pa.array(todo_rows, pa.int64()))
    print(
        f"[avs extract] {branch}: {len(ids)} clips in the manifest, {len(finished & set(ids))} already written, "
        f"{todo.num_rows} to process -> {storage.uri} ({', '.join(names)})",
        flush=True,
    )

    plan: dict[str, Any] = {}
    shapes: dict[str, list[int]] = {}
    written: dict[str, int] = {}  # clip_id -> rows written
    new_errors: list[dict[str, Any]] = []
    fallbacks: dict[str, int] = {}  # why clips were decoded on CPU after the GPU decoder failed -> clips
    parts: set[int] = set()
    stage_s = {"decode_s": 0.0, "feature_s": 0.0, "write_s": 0.0}  # worker seconds, summed over clips
    first_result_s = None
    path_col = "path" if branch == "audio" else "video_path"
    path_of = dict(zip(todo.column("clip_id").to_pylist(), todo.column(path_col).to_pylist(), strict=True))
    if todo.num_rows:
        import ray

        init_ray(cfg.pipeline.num_cpus)
        plan = plan_resources(cfg, branch, n_blocks=-(-todo.num_rows // cfg.pipeline.batch_clips))
        if plan["use_gpu"]:  # fail within pipeline.gpu_wait_s, not hang, where the GPU actors cannot be placed
            from avs.ray_start import wait_for_resources

            wait_for_resources(
                [{"GPU": 1.0, "CPU": 1.0}] * plan["feature_workers"],
                cfg.pipeline.gpu_wait_s,
                f"avs extract {branch}: {plan['feature_workers']} GPU feature worker(s)",
                "Start GPU workers (cluster.yaml) or run on CPU (pipeline.device cpu or auto).",
                wait_hint="Where GPU nodes take longer to start, set pipeline.gpu_wait_s longer.",
            )
        sinks = feature_sinks(cfg, features, identities, hashes)
        shapes = {s.name: list(s.shape) for s in sinks}
        writers = _writers(cfg, sinks, plan, state.next_part_index(storage, names))
        progress = Progress(todo.num_rows, "clips", f"avs extract {branch}", cfg.pipeline.progress_interval_s)
        dataset = _dataset(branch, cfg, features, todo, manifest, plan, sinks, writers)
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
                if first_result_s is None:
                    first_result_s = round(time.perf_counter() - t_start, 3)
                for key in ("decode_s", "feature_s"):
                    stage_s[key] += float(np.sum(batch[key]))
                failed_here = 0
                for i, cid in enumerate(batch["clip_id"]):
                    cid = str(cid)
                    if batch["error_type"][i]:
                        new_errors.append(
                            _error(
                                cid,
                                path_of[cid],
                                branch,
                                str(batch["error_stage"][i]),
                                str(batch["error_type"][i]),
                                str(batch["error_message"][i]),
                            )
                        )
                        failed_here += 1
                    else:
                        written[cid] = int(batch["n_rows"][i])
                _count_fallbacks(batch, fallbacks)
                progress.update(len(batch["clip_id"]), errors=len(new_errors))
                if failed_here:
                    _save_errors(storage, previous_errors, new_errors, branch, run_id)
        except Exception as exc:  # a worker's InfrastructureError (gpu_decode_fallback off): say it plainly
            stop = infrastructure_stop(exc, branch)
            if stop is None:
                raise
            raise stop from exc
        finally:
            reports = _close_writers(writers)
        progress.close()
        for report in reports:
            parts.update(report["parts"])
            stage_s["write_s"] += report["write_s"]
            for cid, reason in report["failed"].items():
                if written.pop(cid, None) is not None:
                    new_errors.append(_error(cid, path_of[cid], branch, "write", "write_failed", reason))
        for w in writers:
            ray.kill(w)

    # Check the books: every clip processed is written (and readable) or failed, exactly once.
    on_disk = state.clips_in_parts(storage, names, sorted(parts))
    for cid in [c for c in written if c not in on_disk]:  # reported written, but not in its part
        del written[cid]
        new_errors.append(
            _error(
                cid,
                path_of[cid],
                branch,
                "write",
                "lost_write",
                "the clip was reported written but is not in its part; run again",
            )
        )
    seen = set(written) | {e["clip_id"] for e in new_errors}
    for cid in sorted(set(path_of) - seen):  # never reported back by Ray Data
        new_errors.append(
            _error(cid, path_of[cid], branch, "pipeline", "missing", "no status came back for this clip; run again")
        )
    if len(written) + len(new_errors) != todo.num_rows:
        raise RuntimeError(
            f"{branch}: bookkeeping error: {todo.num_rows} processed != {len(written)} written + "
            f"{len(new_errors)} failed"
        )
    errors = _save_errors(storage, previous_errors, new_errors, branch, run_id, retried=set(path_of))
    all_written = state.finished_clips_all(storage, names)
    counts = {
        "inputs": len(ids),
        "skipped": len(ids) - todo.num_rows,  # finished earlier (or failed earlier, with retry_errors off)
        "processed": todo.num_rows,
        "clips_written": len(written),
        "rows_written": sum(written.values()),
        "clips_failed": len(new_errors),
        "clips_in_output": len(all_written & set(ids)),
        "error_rows": state.branch_errors(errors, branch).num_rows,
        "gpu_fallbacks": sum(fallbacks.values()),  # clips decoded on CPU because the GPU decoder failed
    }
    if fallbacks:
        print(
            f"[avs extract] {branch}: {counts['gpu_fallbacks']} clip(s) decoded on CPU because the GPU decoder "
            f"failed: " + "; ".join(f"{why} ({n})" for why, n in fallbacks.items()),
            flush=True,
        )
    return BranchResult(
        counts,
        [part_name(p) for p in sorted(parts)],
        shapes,
        plan,
        {k: round(v, 3) for k, v in stage_s.items()},
        first_result_s,
        new_errors,
        fallbacks,
    )


def infrastructure_stop(exc: BaseException, branch: str) -> Exception | None:
    """The ``InfrastructureError`` a worker stopped the run with (Ray Data hands the driver a RayTaskError holding
    its traceback), as one error with the worker's message; None for other errors."""
    from avs.decode.errors import InfrastructureError

    if isinstance(exc, InfrastructureError):
        return InfrastructureError(exc.reason, f"avs extract {branch} stopped: {exc.message}", exc.path)
    found = re.findall(r"InfrastructureError: (\w+): (.+)", str(exc))
    if not found:
        return None
    reason, message = found[-1]
    return InfrastructureError(reason, f"avs extract {branch} stopped: {message.strip()}")


def _count_fallbacks(status: dict[str, np.ndarray], fallbacks: dict[str, int]) -> None:
    """Add a batch of status rows' ``decode_fallback`` reasons (one per clip decoded on CPU instead of the GPU)."""
    from avs.shards.stages import FALLBACK_COLUMN

    for why in status.get(FALLBACK_COLUMN, ()):
        if why:
            fallbacks[str(why)] = fallbacks.get(str(why), 0) + 1


def failure_fraction(summary: dict[str, Any]) -> float:
    """Clips of the manifest with an error row (in any branch) over all clips of the manifest."""
    return float(summary["failures"]["fraction"])


def _failed_clips(storage: Storage, manifest: pa.Table) -> int:
    errors = state.read_errors(storage)
    ids = set(manifest.column("clip_id").to_pylist())
    return len(set(errors.column("clip_id").to_pylist()) & ids)


def save_manifest(storage: Storage, manifest: pa.Table) -> None:
    """OUT/manifest.parquet: every clip any run into OUT was given (one row per clip_id, the newest run's
    row winning), so each shard row leads back to its source file by ``clip_id``."""
    if storage.exists(MANIFEST_FILE):
        old = storage.read_table(MANIFEST_FILE)
        new_ids = pa.array(manifest.column("clip_id").to_pylist(), pa.string())
        keep = old.filter(pc.invert(pc.is_in(old.column("clip_id"), value_set=new_ids)))
        if keep.num_rows:
            try:
                manifest = pa.concat_tables([keep, manifest], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # columns of other types: keep the new manifest only
                pass
    storage.write_table(MANIFEST_FILE, manifest)


def _error(clip_id: str, path: Any, branch: str, stage: str, kind: str, message: str) -> dict[str, Any]:
    return {
        "clip_id": clip_id,
        "path": "" if path is None else str(path),
        "branch": branch,
        "stage": stage,
        "error_type": kind,
        "message": message,
    }


def _preflight(cfg: ExtractConfig) -> None:
    """Checks that need no Ray: decoder names registered, weights files present (CLIP), options valid."""
    from avs.decode.backends import check_backends
    from avs.features.base import create_extractor, extractor_modality

    modalities = {extractor_modality(f.extractor) for f in cfg.features}
    check_backends(
        cfg.audio.backend if "audio" in modalities else None,
        cfg.video.backend if modalities - {"audio"} else None,
        cfg.pipeline.plugins,
    )

    for f in cfg.features:
        ext = create_extractor(f.extractor, f.params, sample_rate_hz=cfg.audio.sample_rate_hz)
        if hasattr(ext, "check"):
            ext.check()


def feature_sinks(
    cfg: ExtractConfig, features: tuple[FeatureSetConfig, ...], identities: dict[str, Any], hashes: dict[str, str]
) -> tuple[FeatureSink, ...]:
    """Each feature set's row shape, dtype and schema metadata (config, hash): what the part writers write, and
    what ``avs.serve`` builds one file's tables with."""
    from avs.features.base import create_extractor

    sinks = []
    for f in features:
        ext = create_extractor(f.extractor, f.params, sample_rate_hz=cfg.audio.sample_rate_hz)
        shape = tuple(ext.output_shape(cfg.audio.n_channels(), cfg.audio.segment_samples()))
        dtype = getattr(ext, "dtype", "float32")
        extra = ext.metadata() if hasattr(ext, "metadata") else {}
        meta = state.shard_metadata(identities[f.name], hashes[f.name], shape, extra)
        sinks.append(FeatureSink(f.name, shape, meta, dtype, "image" if dtype == "binary" else None))
    return tuple(sinks)


def _clip_seconds(manifest: pa.Table, cfg: ExtractConfig) -> float:
    mean = pc.mean(manifest.column("duration_s")).as_py()
    return float(mean) if mean is not None else float(cfg.audio.clip_seconds or 0.0)


def _dataset(
    branch: str,
    cfg: ExtractConfig,
    features: tuple[FeatureSetConfig, ...],
    todo: pa.Table,
    manifest: pa.Table,
    plan: dict[str, Any],
    sinks: tuple[FeatureSink, ...],
    writers: list[Any],
) -> Any:
    import ray.data

    from avs.shards.stages import AudioStage, DecodeStage, FeatureStage
    from avs.shards.video_stages import DaliVideoStage, VideoDecodeStage, VideoFeatureStage

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # avs prints its own progress lines
    ctx.verbose_stats_logs = False
    # Never split a block: a decode block holds whole clips, and the feature worker writes whole clips.
    ctx.target_max_block_size = None
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # "Progress bars disabled" is a warning about the setting just above: avs prints its own lines.
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    p = cfg.pipeline
    # One block per decode batch, made in the driver (no read / repartition tasks competing with the
    # actors for CPUs); its number picks the part writer its clips go to.
    inputs = todo.select(["clip_id", "path" if branch == "audio" else "video_path", "row"])
    blocks = []
    for k, start in enumerate(range(0, inputs.num_rows, p.batch_clips)):
        block = inputs.slice(start, p.batch_clips)
        blocks.append(block.append_column("block", pa.array([k] * block.num_rows, pa.int64())))
    common = {
        "sinks": sinks,
        "writers": writers,
        # by reference: one copy in the object store, small constructor arguments
        "carried": [ray.put(manifest.select(list(CARRIED_COLUMNS)))],
        "device": "cuda" if plan["use_gpu"] else "cpu",
        "threads": plan["feature_threads"],
    }
    memory = plan["memory_bytes"]
    if branch == "audio" and not plan["use_gpu"]:  # decode + features in one actor per CPU
        return ray.data.from_arrow(blocks).map_batches(
            AudioStage,
            fn_constructor_kwargs={
                "audio": cfg.audio,
                "timeout_s": p.decode_timeout_s,
                "plugins": p.plugins,
                "features": features,
                **common,
            },
            batch_size=None,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan["feature_workers"], max_tasks_in_flight_per_actor=2),
            num_cpus=1,
            memory=memory["decode"] + memory["feature"],
        )
    if branch == "audio":
        decode, decode_kw = DecodeStage, {"audio": cfg.audio, "timeout_s": p.decode_timeout_s, "plugins": p.plugins}
        feature, feature_kw = FeatureStage, {"audio": cfg.audio, "features": features, **common}
    elif plan.get("video_decoder") == "dali":  # decode on the GPU that computes the features: one stage
        ds = ray.data.from_arrow(blocks).map_batches(
            DaliVideoStage,
            fn_constructor_kwargs={
                "video": cfg.video,
                "audio": cfg.audio,
                "timeout_s": p.decode_timeout_s,
                "plugins": p.plugins,
                "gpu_fallback": p.gpu_decode_fallback,
                "features": features,
                **common,
            },
            batch_size=None,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan["feature_workers"], max_tasks_in_flight_per_actor=2),
            num_gpus=1,
            num_cpus=1,
            memory=memory["feature"],
        )
        return ds
    else:
        decode = VideoDecodeStage
        decode_kw = {"video": cfg.video, "audio": cfg.audio, "timeout_s": p.decode_timeout_s, "plugins": p.plugins}
        feature, feature_kw = VideoFeatureStage, {"features": features, **common}
    ds = ray.data.from_arrow(blocks)
    ds = ds.map_batches(
        decode,
        fn_constructor_kwargs=decode_kw,
        batch_size=None,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan["decoders"]),
        num_cpus=1,
        memory=memory["decode"],
    )
    ds = ds.map_batches(
        feature,
        fn_constructor_kwargs=feature_kw,
        batch_size=None,
        batch_format="numpy",
        # two blocks queued per actor: enough to keep it busy, few enough that results stream back steadily
        compute=ray.data.ActorPoolStrategy(size=plan["feature_workers"], max_tasks_in_flight_per_actor=2),
        num_gpus=1 if plan["use_gpu"] else 0,
        num_cpus=1,
        memory=memory["feature"],
    )
    return ds


def _writers(cfg: ExtractConfig, sinks: tuple[FeatureSink, ...], plan: dict[str, Any], first_part: int) -> list[Any]:
    """``plan["writers"]`` part writers (a thread of Parquet writing each; no CPU reserved, since writing
    waits on the disk much of the time and takes ~10-20% of a clip's work)."""
    import ray

    from avs.shards.part_writer import PartWriter

    p = cfg.pipeline
    n = plan["writers"]
    actor = ray.remote(PartWriter).options(num_cpus=0, max_restarts=0, memory=plan["memory_bytes"]["writer"])
    return [
        actor.remote(cfg.out, sinks, p.compression, first_part + i, n, p.rows_per_shard, int(p.part_megabytes * 2**20))
        for i in range(n)
    ]


def _close_writers(writers: list[Any]) -> list[dict[str, Any]]:
    """Commit every writer's open part; a writer that died reports nothing (its clips count as lost)."""
    import ray

    reports = []
    for ref in [w.close.remote() for w in writers]:
        try:
            reports.append(ray.get(ref))
        except ray.exceptions.RayError as exc:
            print(f"[avs extract] a part writer failed: {exc}", flush=True)
    return reports


def _save_errors(
    storage: Storage,
    previous: pa.Table,
    new: list[dict[str, Any]],
    branch: str,
    run_id: str,
    retried: set[str] | None = None,
) -> pa.Table:
    """errors.parquet = earlier errors (other branches, and clips not retried now) + this run's errors of
    ``branch`` (one row per clip and branch)."""
    drop = set(retried or ()) | {e["clip_id"] for e in new}
    keep_mask = [
        not (b == branch and c in drop)
        for b, c in zip(previous.column("branch").to_pylist(), previous.column("clip_id").to_pylist(), strict=True)
    ]
    keep = previous.filter(pa.array(keep_mask, pa.bool_())) if previous.num_rows else previous
    fresh = pa.Table.from_pylist([{**e, "run_id": run_id} for e in new], schema=state.ERRORS_SCHEMA)
    table = pa.concat_tables([keep.cast(state.ERRORS_SCHEMA), fresh])
    state.write_errors(storage, table)
    return table
