"""How many threads add papers to the nearest-neighbour index (rank/neighbours.py, `_add`): usearch's
default, every core, against one thread per `ADD_PER_THREAD` papers of the graph, in the same run.
Each build goes through `VectorIndex.update` into a temporary folder; then every paper asks for its
nearest (it should find itself) and the table's rows (16 nearest each) are compared with exact search.

    .venv/bin/python -m benchmarks.hnsw_threads [--sizes 1500 5000 20000] [--builds 5]
    .venv/bin/python -m benchmarks.hnsw_threads --sizes 1500 5000 --sweep 1 2 8 32 --builds 6

`--sweep`: the bare usearch add at these thread counts instead (more threads than cores are
interleaved, not parallel): the share of papers finding themselves first.

Synthetic vectors shaped like abstracts' embeddings (`academichub.bench.synthetic_vectors`)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from academichub.bench import synthetic_vectors
from academichub.rank import neighbours
from academichub.rank.neighbours import TABLE_K, VectorIndex


def exact_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row's TABLE_K nearest other rows by cosine, in blocks of 2,000 rows."""
    out = []
    for start in range(0, len(vectors), 2_000):
        sims = vectors[start : start + 2_000] @ vectors.T
        sims[np.arange(len(sims)), start + np.arange(len(sims))] = -np.inf
        out.append(np.argsort(-sims, axis=1)[:, :TABLE_K])
    return np.vstack(out)


def one_build(ids: np.ndarray, vectors: np.ndarray, exact: np.ndarray) -> tuple[float, float, float]:
    """(share of papers finding themselves first, the table's recall@16, update seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        VectorIndex(Path(folder), "bench").update(ids, vectors)
        seconds = time.perf_counter() - started
        reader = VectorIndex(Path(folder), "bench")
        found, _ = reader.nearest(vectors, 1)
        rows = np.asarray(reader.table().nbr)
        recall = np.mean([len(set(e) & set(r)) / TABLE_K for e, r in zip(exact.tolist(), rows.tolist())])
        return float((found[:, 0] == ids).mean()), float(recall), seconds


def sweep(size: int, vectors: np.ndarray, thread_counts: list[int], builds: int) -> None:
    ids = np.arange(size, dtype=np.int64)
    for threads in thread_counts:
        found = []
        for _ in range(builds):
            index = neighbours._new_index(vectors.shape[1])
            index.add(ids, vectors, threads=threads)
            nearest, _ = neighbours._search((index,), vectors, 1, neighbours.EXPANSION_SEARCH)
            found.append((nearest[:, 0] == ids).mean())
        print(f"{size:>6}  {threads:>3} threads  found themselves {min(found):.4f}/{np.median(found):.4f}/{max(found):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_500, 5_000, 20_000])
    parser.add_argument("--builds", type=int, default=5)
    parser.add_argument("--sweep", type=int, nargs="+", metavar="THREADS")
    args = parser.parse_args()
    if args.sweep:
        for size in args.sizes:
            sweep(size, synthetic_vectors(size, np.random.default_rng(11), 384), args.sweep, args.builds)
        return
    rule = neighbours.ADD_PER_THREAD
    print("papers  threads      found themselves min/med/max   table recall@16 min/med/max   update s min/med/max")
    for size in args.sizes:
        vectors = synthetic_vectors(size, np.random.default_rng(11), 384)
        ids = np.arange(size, dtype=np.int64)
        exact = exact_rows(vectors)
        results: dict[str, list] = {"every core": [], "the rule": []}
        for _ in range(args.builds):  # interleaved: the machine's load falls on both alike
            for name, per_thread in (("every core", 1), ("the rule", rule)):
                neighbours.ADD_PER_THREAD = per_thread
                try:
                    results[name].append(one_build(ids, vectors, exact))
                finally:
                    neighbours.ADD_PER_THREAD = rule
        for name, rows in results.items():
            a = np.array(rows)
            cells = ["/".join(f"{x:.4f}" if column < 2 else f"{x:.2f}" for x in (a[:, column].min(), np.median(a[:, column]), a[:, column].max()))
                     for column in range(3)]
            print(f"{size:>6}  {name:<11}  {cells[0]:<31}  {cells[1]:<28}  {cells[2]}")


if __name__ == "__main__":
    main()
