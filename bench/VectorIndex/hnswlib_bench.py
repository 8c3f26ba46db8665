"""hnswlib side of the vector index benchmark (bench/VectorIndex).

Run by the C# benchmark with Debian's /usr/bin/python3 (apt-get install -y python3-hnswlib python3-numpy), on the
data file the C# side wrote, with the same M, efConstruction and ef values. Prints one JSON object on stdout;
progress goes to stderr.

Data file (little endian): int32 magic 0x58444956 ("VIDX"), count, queries, dimensions, k; then count*dimensions
float32 base vectors, queries*dimensions float32 query vectors, queries*k int32 exact top-k node ids.
"""

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time

import hnswlib
import numpy as np

MAGIC = 0x58444956


def rss_bytes():
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def library_name():
    name = f"hnswlib {importlib.metadata.version('hnswlib')}"
    try:
        debian = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-hnswlib"], capture_output=True, text=True, check=True).stdout
        return f"{name} (Debian python3-hnswlib {debian})"
    except (OSError, subprocess.CalledProcessError):
        return name


def log(message):
    print(f"[hnswlib] {message}", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", default="32,64,128,256")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    efs = [int(x) for x in args.ef.split(",")]

    with open(args.data, "rb") as f:
        magic, count, queries, dim, k = np.fromfile(f, dtype="<i4", count=5)
        if magic != MAGIC:
            raise SystemExit(f"{args.data} is not a benchmark data file")
        base = np.fromfile(f, dtype="<f4", count=count * dim).reshape(count, dim)
        query = np.fromfile(f, dtype="<f4", count=queries * dim).reshape(queries, dim)
        truth = np.fromfile(f, dtype="<i4", count=queries * k).reshape(queries, k)
    base = np.ascontiguousarray(base)
    query = np.ascontiguousarray(query)
    labels = np.arange(count)

    # Memory: the process's resident set grows by everything hnswlib allocates and touches for the index
    # (vectors, links, labels, per-element locks, the label map, the visited list).
    rss_before = rss_bytes()
    start = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=int(dim))  # 1 - dot product: cosine on unit vectors
    index.init_index(max_elements=int(count), ef_construction=args.ef_construction, M=args.m, random_seed=args.seed)
    index.set_num_threads(1)
    index.add_items(base, labels, num_threads=1)
    build_seconds = time.perf_counter() - start
    rss_delta = rss_bytes() - rss_before
    log(f"built {count} vectors in {build_seconds:.1f} s")

    # The serialized index (what hnswlib's save_index writes): vectors, labels and link lists without the
    # in-memory extras. hnswlib 0.6.2 has no index_file_size(), so save it and take the file's size.
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "index.bin")
        index.save_index(path)
        index_file_size = os.path.getsize(path)

    results = []
    for ef in efs:
        index.set_ef(ef)
        best = float("inf")
        found = None
        for _ in range(args.runs):
            start = time.perf_counter()
            found, _distances = index.knn_query(query, k=int(k), num_threads=1)
            best = min(best, time.perf_counter() - start)
        hits = sum(len(set(found[i].tolist()) & set(truth[i].tolist())) for i in range(queries))
        recall = hits / float(queries * k)
        results.append({"ef": ef, "recall": recall, "qps": queries / best, "seconds": best})
        log(f"ef={ef}: recall@{k} {recall:.4f}, {queries / best:.0f} QPS")

    print(json.dumps({
        "library": library_name(),
        "numpy": np.__version__,
        "count": int(count),
        "build_seconds": build_seconds,
        "rss_delta_bytes": rss_delta,
        "index_file_size": index_file_size,
        "results": results,
    }))


if __name__ == "__main__":
    main()
