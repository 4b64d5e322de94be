"""The HTTP application: FastAPI routes inside one Ray Serve deployment (``AvsService``).

    GET  /healthz               200 {"status": "ok", feature sets, runs, replica}
    POST /features              body: the media file's bytes (any format avs extract reads); query: filename=
                                (its name, for the suffix), features=a,b (a subset); Accept: JSON / Arrow / npz
    POST /predict/<run>         body and filename as above: the run's output for the file (scene probabilities,
                                multi-label scores, SED events), with the model and feature config hashes

Errors: 400 empty body / unknown feature set, 404 unknown run or route, 406 an Accept the service cannot give,
413 an upload over ``max_upload_mb``, 422 media that cannot be decoded (corrupt, no usable stream, decode
timeout: the decoder child is killed after ``decode_timeout_s``), 503 when the replica's decoder process cannot
start, 500 only for other faults of the server itself.

Each replica holds its decoders (child processes) and extractors; decode + features of one request run in a
worker thread, one at a time per replica (the decoder child is one process), while the event loop takes more
requests. Model calls are batched across requests with ``serve.batch`` (up to ``max_batch_size`` requests or
``batch_wait_timeout_s``), one forward pass per run for the whole batch.

``serve deploy serve.yaml`` / ``serve run serve.yaml`` use ``build_app`` (its ``args`` are ServeConfig's fields).
"""

# (no `from __future__ import annotations`: FastAPI reads the routes' parameter types at import)
import asyncio
import json
import logging
import os
import tempfile
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ray import serve

import avs
from avs.config import from_dict, to_dict
from avs.serve.config import ServeConfig, run_names

log = logging.getLogger("avs.serve")
api = FastAPI(title="avs", description="audio-visual features and predictions of one recording")


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def resolve_device(device: str) -> str:
    """auto: CUDA only when Ray gave this replica a GPU (Ray 2.60 leaves every GPU visible to an actor that
    reserved none, so ``torch.cuda.is_available()`` alone would put models on a GPU other work holds)."""
    import ray
    import torch

    reserved = bool(ray.get_gpu_ids()) if ray.is_initialized() else torch.cuda.is_available()
    if device == "auto":
        return "cuda" if reserved and torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but this replica sees no GPU (give it --num-gpus)")
    return device


def with_decoding(extract: Any, cfg: ServeConfig) -> Any:
    """``extract`` (an ExtractConfig) decoded as ``cfg`` says: its plugins and backends (neither is part of a
    feature set's identity, so the config hashes stay those of the shards)."""
    import dataclasses

    audio = dataclasses.replace(extract.audio, backend=cfg.audio_backend) if cfg.audio_backend else extract.audio
    video = dataclasses.replace(extract.video, backend=cfg.video_backend) if cfg.video_backend else extract.video
    pipeline = dataclasses.replace(extract.pipeline, plugins=tuple(cfg.plugins))
    return dataclasses.replace(extract, audio=audio, video=video, pipeline=pipeline)


def check_decoding(cfg: ServeConfig) -> None:
    """The decoder settings name registered decoders (after importing the plugins); the service decodes on CPU,
    so not "dali"."""
    from avs.decode.backends import check_backends

    check_backends(cfg.audio_backend, cfg.video_backend, cfg.plugins, gpu_video=False)


def upload_name(filename: str) -> tuple[str, str]:
    """The (prefix, suffix) of an upload's temporary file: its own name's letters, digits, '.', '_' and '-'
    (decoders and their plugins see a name like the user's), and its suffix (decoders pick formats by it)."""
    import re

    base = os.path.basename(filename or "")
    stem, suffix = os.path.splitext(base)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:40]
    suffix = re.sub(r"[^A-Za-z0-9.]+", "", suffix)[:16] or ".bin"
    return (f"{stem}-" if stem else "upload-"), suffix


def preset_config(cfg: ServeConfig) -> Any:
    """The ExtractConfig of ``cfg.preset`` (its ``features`` subset, random CLIP weights if asked), or None."""
    from avs.presets import preset
    from avs.shards.config import ExtractConfig, select_features, with_random_clip_weights

    if cfg.preset is None:
        return None
    tree = {**json.loads(json.dumps(preset(cfg.preset))), "input": "-", "out": "-", "preset": cfg.preset}
    extract = select_features(from_dict(ExtractConfig, tree), list(cfg.features) or None)
    extract = with_random_clip_weights(extract) if cfg.clip_random_weights else extract
    return with_decoding(extract, cfg)


@serve.deployment(name="avs")
@serve.ingress(api)
class AvsService:
    """One replica: extractors of the preset, the served runs (each with the extractor of its own features)."""

    def __init__(self, config: dict[str, Any]) -> None:
        from avs.serve.clip import ClipExtractor
        from avs.serve.runs import load_run

        self.cfg = from_dict(ServeConfig, config)
        check_decoding(self.cfg)
        self.device = resolve_device(self.cfg.device)
        timeout = self.cfg.decode_timeout_s
        self.extractors: dict[str, ClipExtractor] = {}  # by config hash of the whole ExtractConfig's sets
        extract = preset_config(self.cfg)
        self.features = ClipExtractor(extract, self.device, timeout) if extract is not None else None
        self.runs = {}
        for name, path in run_names(self.cfg.runs).items():
            run = load_run(name, path, self.device)
            key = json.dumps(run.hashes, sort_keys=True)
            if self.features is not None and all(self.features.hashes.get(k) == v for k, v in run.hashes.items()):
                self.extractors[key] = self.features  # the preset already computes this run's features
            elif key not in self.extractors:
                self.extractors[key] = ClipExtractor(with_decoding(run.extract, self.cfg), self.device, timeout)
            self.runs[name] = (run, self.extractors[key])
        self.lock = threading.Lock()  # one decode + feature computation at a time per replica
        self._predict_batch.set_max_batch_size(self.cfg.max_batch_size)
        self._predict_batch.set_batch_wait_timeout_s(self.cfg.batch_wait_timeout_s)
        self._tmp = tempfile.TemporaryDirectory(prefix="avs-serve-")  # removed with the replica
        self.tmp = self._tmp.name

    # ------------------------------------------------------------------------------------------- helpers
    async def _body(self, request: Request) -> bytes:
        """The upload, refused (413) as soon as it passes the limit (Content-Length first, then while reading)."""
        limit = int(self.cfg.max_upload_mb * 1e6)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise HTTPError(413, f"upload of {int(length)} bytes is over the limit of {limit} (--max-upload-mb)")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"upload is over the limit of {limit} bytes (--max-upload-mb)")
            chunks.append(chunk)
        if size == 0:
            raise HTTPError(400, "empty body: POST the media file's bytes (curl --data-binary @clip.wav ...)")
        return b"".join(chunks)

    def _extract_file(self, extractor: Any, data: bytes, filename: str, wanted: list[str] | None) -> Any:
        """Write the upload to a private temporary file, extract, remove it (decoders read paths)."""
        from avs.serve.clip import BadMedia

        prefix, suffix = upload_name(filename)
        fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            with self.lock:
                return extractor.extract(path, wanted)
        except BadMedia as exc:  # the decoders name the temporary file: name the upload instead
            raise BadMedia(str(exc).replace(path, filename or "the upload")) from None
        finally:
            os.unlink(path)

    async def _extract(self, request: Request, extractor: Any, wanted: list[str] | None) -> tuple[Any, str]:
        from avs.serve.clip import BadMedia, UnknownFeatureSet

        data = await self._body(request)
        filename = request.query_params.get("filename", "")
        from avs.decode.errors import InfrastructureError

        try:
            result = await asyncio.to_thread(self._extract_file, extractor, data, filename, wanted)
        except BadMedia as exc:
            raise HTTPError(422, str(exc)) from None
        except InfrastructureError as exc:  # the replica's decoder process cannot start: the server's fault
            log.error("avs serve: %s", exc)
            raise HTTPError(503, f"the service cannot decode now ({exc.reason}); try again later") from None
        except UnknownFeatureSet as exc:
            raise HTTPError(400, str(exc)) from None
        return result, filename

    # ------------------------------------------------------------------------------------------- routes
    @api.get("/healthz")
    def healthz(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "avs_version": avs.__version__,
            "preset": self.cfg.preset,
            "feature_sets": self.features.hashes if self.features is not None else {},
            "runs": {name: run.about for name, (run, _) in self.runs.items()},
            "device": self.device,
            "replica_pid": os.getpid(),
        }

    @api.post("/features")
    async def features_route(self, request: Request) -> Response:
        from avs.serve.encode import NotAcceptable, choose_format, encode_features, features_answer

        t0 = time.perf_counter()
        try:
            fmt = choose_format(request.headers.get("accept"))
            if self.features is None:
                raise HTTPError(404, "this service has no --preset: POST /predict/<run> instead")
            wanted = [w for w in request.query_params.get("features", "").split(",") if w] or None
            result, filename = await self._extract(request, self.features, wanted)
            ex = self.features
            head = {
                "file": filename,
                "preset": self.cfg.preset,
                "avs_version": avs.__version__,
                "feature_sets": {n: {"hash": ex.hashes[n]} for n in result.tables},
                "skipped": result.skipped,
                "seconds": {k: round(v, 4) for k, v in result.seconds.items()},
            }
            shapes = {n: ex.sinks[n].shape for n in result.tables}
            columns = {n: ex.sinks[n].column or n for n in result.tables}
            answer, values = features_answer(result.tables, shapes, columns, head)
            answer["seconds"]["total"] = round(time.perf_counter() - t0, 4)
            body = await asyncio.to_thread(encode_features, answer, values, fmt, self.cfg.json_max_values)
        except NotAcceptable as exc:
            return _error(406, str(exc))
        except HTTPError as exc:
            return _error(exc.status, str(exc))
        except Exception:
            log.exception("avs serve: /features failed")
            return _error(500, "internal error while computing features (see the replica's log)")
        return Response(body, media_type=fmt)

    @api.post("/predict/{run_name}")
    async def predict_route(self, run_name: str, request: Request) -> Response:
        from avs.serve.encode import NotAcceptable, choose_format, encode_prediction

        t0 = time.perf_counter()
        try:
            fmt = choose_format(request.headers.get("accept"))
            if run_name not in self.runs:
                raise HTTPError(404, f"unknown run {run_name!r}; this service has {sorted(self.runs)}")
            run, extractor = self.runs[run_name]
            result, filename = await self._extract(request, extractor, list(run.hashes))
            missing = [n for n in run.hashes if n not in result.tables]
            if missing:
                reasons = "; ".join(f"{n}: {result.skipped.get(n, '?')}" for n in missing)
                raise HTTPError(422, f"this file cannot give the features run {run_name!r} needs ({reasons})")
            tables = {n: result.tables[n] for n in run.hashes}
            try:  # the model input of this request alone: its failure never reaches the requests batched with it
                inputs = await asyncio.to_thread(run.task.inputs_from_tables, tables)
            except ValueError as exc:
                raise HTTPError(422, f"this file's features do not make the run's input: {exc}") from None
            answer = await self._predict_batch(run_name, inputs)
            answer = {
                "file": filename,
                "run": run_name,
                "model": run.about,
                "feature_sets": {n: {"hash": h} for n, h in run.hashes.items()},
                "classes": list(run.classes),
                **answer,
                "seconds": {**{k: round(v, 4) for k, v in result.seconds.items()},
                            "total": round(time.perf_counter() - t0, 4)},
            }  # fmt: skip
            body = await asyncio.to_thread(encode_prediction, answer, run.classes, fmt)
        except NotAcceptable as exc:
            return _error(406, str(exc))
        except HTTPError as exc:
            return _error(exc.status, str(exc))
        except Exception:
            log.exception("avs serve: /predict/%s failed", run_name)
            return _error(500, "internal error while predicting (see the replica's log)")
        return Response(body, media_type=fmt)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _predict_batch(self, run_names_: list[str], inputs: list[dict]) -> list[dict[str, Any]]:
        """Requests gathered by Serve (each a run's model input, ``Task.inputs_from_tables``) -> one model pass per
        run over all their rows (in chunks); answers in request order."""
        from avs.serve.runs import predict_clips

        answers: list[Any] = [None] * len(run_names_)
        by_run: dict[str, list[int]] = {}
        for i, name in enumerate(run_names_):
            by_run.setdefault(name, []).append(i)
        for name, idx in by_run.items():
            run = self.runs[name][0]
            got = await asyncio.to_thread(predict_clips, run, [inputs[i] for i in idx])
            for i, a in zip(idx, got, strict=True):
                answers[i] = {**a, "batched_with": len(idx)}
        return answers


def deployment_options(cfg: ServeConfig) -> dict[str, Any]:
    return {
        "num_replicas": cfg.num_replicas,
        "max_ongoing_requests": cfg.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus},
    }


def build_application(cfg: ServeConfig) -> Any:
    """The Serve application of ``cfg`` (``serve.run(build_application(cfg))``)."""
    return AvsService.options(**deployment_options(cfg)).bind(to_dict(cfg))


def build_app(args: dict[str, Any]) -> Any:
    """Application builder for ``serve deploy`` / ``serve run`` config files: ``args`` are ServeConfig's fields."""
    return build_application(from_dict(ServeConfig, dict(args)))
