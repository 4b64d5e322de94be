"""``avs serve``: start the HTTP service on a local (or the RAY_ADDRESS) Ray and keep it up until Ctrl-C.

avs serve --preset dcase2021-t1b --clip-random-weights           # POST /features
avs serve --run A01=demo/runs/A01 SED=demo/sed_runs/mt --port 8000   # POST /predict/A01, /predict/SED
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any


def add_serve_args(p: argparse.ArgumentParser) -> None:
    from avs.flags import add_config_flags, add_layering_flags
    from avs.serve.config import ServeConfig

    add_config_flags(p, ServeConfig)
    add_layering_flags(p, "serve", cls=ServeConfig)


def serve_config_from_args(args: argparse.Namespace) -> Any:
    from avs.flags import config_from_args
    from avs.serve.config import ServeConfig

    return config_from_args(ServeConfig, args)


def check_config(cfg: Any) -> None:
    """What can be checked before Ray starts: the decoders, the preset, the runs' model files."""
    from avs.models.files import model_file
    from avs.serve.app import check_decoding, preset_config
    from avs.serve.config import run_names

    check_decoding(cfg)
    preset_config(cfg)
    for path in run_names(cfg.runs).values():
        model_file(path)


def start(cfg: Any) -> str:
    """Start Serve with ``cfg`` on the current Ray (started here when none is); returns the base URL."""
    from ray import serve

    from avs.ray_start import init_ray
    from avs.serve.app import build_application

    init_ray()
    if cfg.num_gpus > 0:  # Serve would wait forever for replicas no node can hold
        from avs.ray_start import wait_for_resources

        bundles = [{"CPU": cfg.num_cpus, "GPU": cfg.num_gpus}] * cfg.num_replicas
        wait_for_resources(
            bundles,
            cfg.gpu_wait_s,
            "avs serve replicas",
            "Lower --num-gpus or add GPU nodes.",
            wait_hint="Where GPU nodes take longer to start, raise --gpu-wait-s.",
        )
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # the driver's "Started Serve ..." lines
    quiet = {"log_level": "WARNING", "enable_access_log": False}  # a terminal free of per-request lines
    serve.start(http_options={"host": cfg.host, "port": cfg.port}, logging_config=quiet)
    serve.run(build_application(cfg), name="avs", route_prefix="/", logging_config=quiet)
    return f"http://{cfg.host}:{cfg.port}"


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        cfg = serve_config_from_args(args)
        check_config(cfg)
    except (ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        print(f"avs serve: {exc}", file=sys.stderr)
        return 2
    from ray import serve

    from avs.ray_start import MissingResources

    try:
        url = start(cfg)
    except MissingResources as exc:
        print(f"avs serve: {exc}", file=sys.stderr)
        return 2
    routes = (["POST /features"] if cfg.preset else []) + [f"POST /predict/{n}" for n in _names(cfg)]
    print(f"[avs serve] listening on {url}: GET /healthz, {', '.join(routes)} (Ctrl-C stops)", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("[avs serve] stopping", flush=True)
    if os.environ.get("RAY_ADDRESS"):  # a cluster's Ray: take the application down, leave the cluster
        serve.shutdown()
    else:  # the embedded local Ray: stopping it stops Serve with it (serve.shutdown here prints Ray's retry noise)
        import ray

        ray.shutdown()
    return 0


def _names(cfg: Any) -> list[str]:
    from avs.serve.config import run_names

    return list(run_names(cfg.runs))
