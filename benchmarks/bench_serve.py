"""Load test of ``avs serve`` on this machine: requests / s and p50 / p95 / p99 latency of ``POST /features``
(dcase2021-t1b log-mel + deltas of a 10-s 48 kHz clip, answered as .npz) and ``POST /predict/<run>`` (a scene
classifier on the same log-mel) at 1, 4 and 16 concurrent clients; the reference is the same work in-process
without HTTP or Serve (``ClipExtractor.extract`` + the model call, one at a time), so the ratio shows what the
service adds. Every load is bounded: at most ``--requests`` requests and ``--seconds`` seconds per level, to
127.0.0.1 only.

    bash scripts/quickstart.sh                       # demo/tau and demo/features (log-mel) first
    python benchmarks/bench_serve.py                 # trains a tiny run on demo/features when --run is not given

Writes ``benchmarks/results/serve_cpu.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import avs, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, data: bytes, accept: str) -> float:
    """One request; its latency in seconds (raises on a non-200 answer)."""
    t = time.perf_counter()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=120) as r:
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}")
    return time.perf_counter() - t


def load(url: str, data: bytes, accept: str, clients: int, requests: int, seconds: float) -> dict:
    """``clients`` threads sending back to back until ``requests`` are done or ``seconds`` have passed."""
    deadline = time.perf_counter() + seconds
    lat: list[float] = []
    errors = 0

    def client(n: int) -> None:
        nonlocal errors
        for _ in range(n):
            if time.perf_counter() > deadline:
                return
            try:
                lat.append(post(url, data, accept))
            except Exception:
                errors += 1

    per = [requests // clients + (i < requests % clients) for i in range(clients)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, per))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [lat[0]] * 99 if lat else [float("nan")] * 99
    return {
        "clients": clients, "requests": len(lat), "errors": errors, "seconds": round(wall, 2),
        "rps": round(len(lat) / wall, 2), "p50_ms": round(1e3 * q[49], 1), "p95_ms": round(1e3 * q[94], 1),
        "p99_ms": round(1e3 * q[98], 1),
    }  # fmt: skip


def reference(cfg, run_path: str, wav: Path, n: int) -> dict:
    """The same work in-process, sequentially: features of the file, then the run's prediction."""
    from avs.serve.app import preset_config
    from avs.serve.clip import ClipExtractor
    from avs.serve.runs import load_run, predict_clips

    extractor = ClipExtractor(preset_config(cfg), "cpu", cfg.decode_timeout_s)
    run = load_run("scene", run_path, "cpu")
    extractor.extract(str(wav))  # warm-up
    t = time.perf_counter()
    for _ in range(n):
        extractor.extract(str(wav))
    features_s = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for _ in range(n):
        predict_clips(run, [run.task.inputs_from_tables(extractor.extract(str(wav)).tables)])
    predict_s = (time.perf_counter() - t) / n
    from avs.serve.encode import encode_features, features_answer

    tables = extractor.extract(str(wav)).tables
    shapes = {k: extractor.sinks[k].shape for k in tables}
    t = time.perf_counter()
    for _ in range(n):
        answer, values = features_answer(tables, shapes, {k: k for k in tables}, {"feature_sets": {}, "seconds": {}})
        body = encode_features(answer, values, "application/x-npz", 10**9)
    encode_s = (time.perf_counter() - t) / n
    return {
        "features_rps": round(1 / features_s, 2), "predict_rps": round(1 / predict_s, 2),
        "features_ms": round(1e3 * features_s, 1), "npz_encode_ms": round(1e3 * encode_s, 1),
        "npz_mb": round(len(body) / 1e6, 2), "upload_mb": round(wav.stat().st_size / 1e6, 2),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tau", default="demo/tau", help="demo TAU clips (10-s 48 kHz WAVs)")
    ap.add_argument("--feats", default="demo/features", help="their log-mel shards (quickstart)")
    ap.add_argument("--run", default=None, help="a trained scene run on those shards (default: train a tiny one)")
    ap.add_argument("--levels", nargs="+", type=int, default=[1, 4, 16])
    ap.add_argument("--requests", type=int, default=48, help="most requests per route and level")
    ap.add_argument("--seconds", type=float, default=60.0, help="most seconds per route and level")
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--name", default="serve_cpu")
    args = ap.parse_args()

    from ray import serve

    from avs.serve.cli import start
    from avs.serve.config import ServeConfig

    run = args.run
    if run is None:
        run = "demo/bench_serve/run"
        if not (Path(run) / "best" / "model.safetensors").exists():
            avs("train", args.feats, "--model", "timm-cnn", "--features", "logmel", "--epochs", "1",
                "--batch-size", "16", "--set", "model_params.backbone=resnet10t",
                "--set", "model_params.random_init=true", "--out", run)  # fmt: skip
    wav = sorted(Path(args.tau, "audio").glob("*.wav"))[0]
    data = wav.read_bytes()
    cfg = ServeConfig(preset="dcase2021-t1b", features=("logmel",), runs=(f"scene={run}",), port=_port(),
                      num_replicas=args.replicas)  # fmt: skip
    ref = reference(cfg, run, wav, 5)
    url = start(cfg)
    rows = []
    for route, path, accept in (("features", "/features", "application/x-npz"),
                                ("predict", "/predict/scene", "application/json")):  # fmt: skip
        post(url + path, data, accept)  # warm-up
        for clients in args.levels:
            r = {"route": route, **load(url + path, data, accept, clients, args.requests, args.seconds)}
            r["ratio_vs_in_process"] = round(r["rps"] / ref[f"{route}_rps"], 2)
            rows.append(r)
            print(json.dumps(r), flush=True)
    serve.shutdown()
    record = {"date": dt.date.today().isoformat(), "machine": machine(), "clip": f"{wav.name} (10 s, 48 kHz)",
              "replicas": args.replicas, "reference_in_process": ref, "rows": rows}  # fmt: skip
    results = ROOT / "benchmarks" / "results"
    (results / f"{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"# avs serve under load ({record['date']})", "",
        f"Machine: {record['machine']['cpu']}, {record['machine']['cores']} cores, "
        f"GPU {record['machine']['gpu'] or 'none'}; "
        f"{args.replicas} replica(s) of 1 CPU on a local Ray; client threads on the same machine (127.0.0.1).",
        f"Command: `python benchmarks/bench_serve.py --levels {' '.join(map(str, args.levels))} --requests "
        f"{args.requests} --seconds {args.seconds:g}`. Request: {record['clip']}; /features answers .npz "
        "(log-mel + deltas, 10 x 3 x 256 x 94 float32), /predict JSON (a timm resnet10t scene run, random init, "
        "1 epoch).",
        f"Reference (same work in-process, one at a time, no HTTP): /features {ref['features_rps']} per s, "
        f"/predict {ref['predict_rps']} per s.",
        f"Where one /features request's time goes: extraction {ref['features_ms']} ms and the .npz answer "
        f"{ref['npz_encode_ms']} ms in-process; the rest of the 1-client p50 is moving the {ref['upload_mb']} MB "
        f"upload in and the {ref['npz_mb']} MB answer out through HTTP and Serve's proxy (replica -> proxy -> "
        "client), with the clients, the proxy and the replica sharing the machine's cores.", "",
        "| route | clients | requests | errors | req/s | p50 ms | p95 ms | p99 ms | req/s vs in-process |",
        "|---|---|---|---|---|---|---|---|---|",
        *(f"| {r['route']} | {r['clients']} | {r['requests']} | {r['errors']} | {r['rps']} | {r['p50_ms']} | "
          f"{r['p95_ms']} | {r['p99_ms']} | {r['ratio_vs_in_process']} |" for r in rows), "",
    ]  # fmt: skip
    (results / f"{args.name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
