"""k-means benchmark: avs (faiss) vs scikit-learn on the same data, same k, same iterations, one run each.

    python benchmarks/bench_cluster.py                      # 100k x 502 (paper 001's texture size), k=30
    python benchmarks/bench_cluster.py --rows 100000 20000 --repeats 3

Data: float32 Gaussian blobs (3k overlapping centres, so Lloyd keeps moving for all iterations). Two
comparisons per size, both with one restart and the same thread count:

- "default init": avs.cluster.kmeans.run_kmeans (faiss: random-sample init, 25 iterations, then assignment of
  every row) vs sklearn KMeans(n_clusters=k, max_iter=25, n_init=1, algorithm="lloyd", tol=0) (k-means++ init);
- "same init": both start from the same k rows, so the time is the Lloyd iterations alone and the objectives
  are directly comparable.

Writes benchmarks/results/cluster_cpu.md (and .json) with the machine described.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> dict:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                ram_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    flags = ""
    try:
        text = open("/proc/cpuinfo").read()
        flags = " ".join(f for f in ("avx2", "avx512f", "fma") if f" {f} " in text)
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "cpu_flags": flags,
        "ram_gib": ram_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def make_blobs(n: int, dims: int, centres: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dims)).astype(np.float32)
    x = c[rng.integers(0, centres, n)]
    x += rng.normal(scale=2.0, size=(n, dims)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)  # (n, dims)


def run_avs(x, k, iters, seed, init=None):
    from avs.cluster.kmeans import run_kmeans

    t = time.perf_counter()
    r = run_kmeans(x, k, iterations=iters, restarts=1, seed=seed, init_centroids=init)
    return time.perf_counter() - t, r.objective, iters, r.assignments


def run_sklearn(x, k, iters, seed, init=None):
    from sklearn.cluster import KMeans

    km = KMeans(
        n_clusters=k,
        max_iter=iters,
        n_init=1,
        algorithm="lloyd",
        tol=0,
        random_state=seed,
        **({} if init is None else {"init": init}),
    )
    t = time.perf_counter()
    km.fit(x)
    return time.perf_counter() - t, float(km.inertia_), int(km.n_iter_), km.labels_


def bench_one(x: np.ndarray, args: argparse.Namespace, mode: str, init: np.ndarray | None, threads: int) -> dict:
    from sklearn.metrics import adjusted_rand_score

    n = len(x)
    a_runs, s_runs = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        a_runs.append(run_avs(x, args.k, args.iterations, args.seed, init))
        s_runs.append(run_sklearn(x, args.k, args.iterations, args.seed, init))
    a_s = statistics.median(r[0] for r in a_runs)
    s_s = statistics.median(r[0] for r in s_runs)
    row = {
        "rows": n,
        "dims": x.shape[1],
        "k": args.k,
        "iterations": args.iterations,
        "init": mode,
        "threads": threads,
        "avs_faiss_s": round(a_s, 3),
        "sklearn_s": round(s_s, 3),
        "ratio": round(s_s / a_s, 2),
        "avs_objective": a_runs[-1][1],
        "sklearn_objective": s_runs[-1][1],
        "objective_rel_diff": round((a_runs[-1][1] - s_runs[-1][1]) / s_runs[-1][1], 5),
        "sklearn_iterations_run": s_runs[-1][2],
        "avs_s_per_iteration": round(a_s / args.iterations, 4),
        "sklearn_s_per_iteration": round(s_s / max(s_runs[-1][2], 1), 4),
        "ari_avs_vs_sklearn": round(float(adjusted_rand_score(a_runs[-1][3], s_runs[-1][3])), 4),
        "avs_runs_s": [round(r[0], 3) for r in a_runs],
        "sklearn_runs_s": [round(r[0], 3) for r in s_runs],
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    print(
        f"{n} x {x.shape[1]}, k={args.k}, {args.iterations} it, {mode}, {threads} thread(s): avs {a_s:.2f} s, "
        f"sklearn {s_s:.2f} s ({row['sklearn_iterations_run']} it), ratio {row['ratio']:.2f}x; objective avs "
        f"{row['avs_objective']:.6g} sklearn {row['sklearn_objective']:.6g}; load {row['load_avg_1min']}",
        flush=True,
    )
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000], help="rows per data set (default 100000)")
    ap.add_argument("--small", action="store_true", help="a quick run: 20000 rows")
    ap.add_argument("--dims", type=int, default=502, help="dimensions (default 502, paper 001's texture vector)")
    ap.add_argument("--k", type=int, default=30, help="clusters (default 30, paper 001)")
    ap.add_argument("--iterations", type=int, default=25, help="Lloyd iterations (default 25)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per method; the median is reported")
    ap.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="thread counts for both libraries, each a separate pass (default: all CPUs)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cluster_cpu.md"))
    args = ap.parse_args(argv)

    import faiss
    import sklearn
    from threadpoolctl import threadpool_info, threadpool_limits

    thread_counts = args.threads or [len(os.sched_getaffinity(0))]
    rows_list = [20_000] if args.small else args.rows
    info = machine()
    info.update(
        threads=thread_counts,
        load_avg_start=[round(v, 2) for v in os.getloadavg()],
        faiss=faiss.__version__,
        sklearn=sklearn.__version__,
        numpy=np.__version__,
        blas=sorted(
            {f"{p['internal_api']} {p.get('version')} ({p.get('threading_layer', '')})" for p in threadpool_info()}
        ),
    )
    print(json.dumps(info, indent=2), flush=True)

    results = []
    for threads in thread_counts:
        faiss.omp_set_num_threads(threads)
        with threadpool_limits(threads):
            warm = make_blobs(2000, args.dims, 8, 1)  # load both libraries' kernels before timing
            run_avs(warm, 4, 2, 0)
            run_sklearn(warm, 4, 2, 0)
            for n in rows_list:
                x = make_blobs(n, args.dims, 3 * args.k, args.seed)
                init = x[np.random.default_rng(args.seed + 1).choice(n, args.k, replace=False)].copy()
                for mode, init_arg in (("default init", None), ("same init", init)):
                    results.append(bench_one(x, args, mode, init_arg, threads))
    info["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    lines = [
        "# k-means: avs (faiss CPU) vs scikit-learn",
        "",
        f"`{' '.join(['python benchmarks/bench_cluster.py', *(argv if argv is not None else sys.argv[1:])])}` "
        f"on {time.strftime('%Y-%m-%d')}.",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}; {info['cpu_flags']}), {info['ram_gib']} GiB RAM, no GPU "
        f"used; threads {thread_counts} (each for both libraries); faiss {info['faiss']}, "
        f"scikit-learn {info['sklearn']}, numpy {info['numpy']}; BLAS: {', '.join(info['blas'])}.",
        "",
        "Data: float32 Gaussian blobs (3k centres, noise sd 2). One restart each. avs = "
        "`avs.cluster.kmeans.run_kmeans` (faiss.Kmeans, every row used for training, then every row assigned); "
        "sklearn = `KMeans(n_clusters=k, max_iter=25, n_init=1, algorithm='lloyd', tol=0)`. "
        "'same init': both start from the same k rows (Lloyd iterations only). sklearn's s/iteration with "
        "default init includes its k-means++ initialisation. Times are medians of "
        f"{args.repeats} run(s) (avs and sklearn interleaved), seconds, wall clock. Load average (1, 5, 15 min) "
        f"at start {info['load_avg_start']}, at end {info['load_avg_end']}: other work on the machine slows "
        "multi-threaded runs.",
        "",
        "| threads | rows x dims | k | iterations | init | avs (faiss) s | sklearn s | sklearn / avs "
        "| s/iteration avs / sklearn | objective avs | objective sklearn | ARI avs vs sklearn |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['threads']} | {r['rows']} x {r['dims']} | {r['k']} "
            f"| {r['iterations']} (sklearn ran {r['sklearn_iterations_run']}) "
            f"| {r['init']} | {r['avs_faiss_s']:.2f} | {r['sklearn_s']:.2f} | **{r['ratio']:.2f}x** | "
            f"{r['avs_s_per_iteration']:.3f} / {r['sklearn_s_per_iteration']:.3f} | {r['avs_objective']:.6g} | "
            f"{r['sklearn_objective']:.6g} | {r['ari_avs_vs_sklearn']:.3f} |"
        )
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
