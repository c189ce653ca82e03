"""Recall of the nearest-neighbour index (rank/neighbours.py) against exact search on a store's real
vectors: the index is built from the store as a process builds it (`VectorIndex.catch_up`, in a
temporary folder), then 200 stored vectors ask for their 100 nearest, and every paper's table row
(its 16 nearest) is compared with the exact ones.

    .venv/bin/python -m benchmarks.neighbours_recall [--database-url URL] [--model NAME]

Default store: the relevance benchmark's `store` protocol store (the ten libraries, embedded with
the packaged model), kept under ~/.cache/academichub/relevance/ after `python -m
benchmarks.relevance --datasets store` has run once."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from academichub.rank.neighbours import TABLE_K, VectorIndex
from academichub.store.database import open_store
from academichub.store.schema import paper_embeddings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = next(iter(sorted((Path.home() / ".cache/academichub/relevance").glob("store-*[0-9a-f].db"))), None)
    parser.add_argument("--database-url", default=f"sqlite:///{default}" if default else None)
    parser.add_argument("--model", default=None, help="default: the model with the most stored vectors")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("no store found: pass --database-url")
    engine = open_store(args.database_url)
    with engine.connect() as conn:
        model = args.model or conn.execute(select(paper_embeddings.c.model).group_by(paper_embeddings.c.model)
                                           .order_by(func.count().desc()).limit(1)).scalar()
        rows = conn.execute(select(paper_embeddings.c.paper_id, paper_embeddings.c.vector)
                            .where(paper_embeddings.c.model == model).order_by(paper_embeddings.c.paper_id)).all()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.vstack([np.frombuffer(r[1], dtype="<f2") for r in rows]).astype(np.float32)
        with tempfile.TemporaryDirectory() as folder:
            index = VectorIndex(Path(folder), model)
            start = time.perf_counter()
            index.catch_up(conn)
            built = time.perf_counter() - start
            probes = np.random.default_rng(0).choice(len(ids), min(args.queries, len(ids)), replace=False)
            found, _ = index.nearest(vectors[probes], 100)
            exact = ids[np.argsort(-(vectors[probes] @ vectors.T), axis=1)[:, :100]]
            recall = np.mean([len(set(e.tolist()) & set(f.tolist())) / 100 for e, f in zip(exact, found)])
            table = index.table()
            sims = vectors @ vectors.T
            np.fill_diagonal(sims, -np.inf)
            exact_k = ids[np.argsort(-sims, axis=1)[:, :TABLE_K]]
            table_recall = np.mean([len(set(e.tolist()) & set(np.asarray(f).tolist())) / TABLE_K
                                    for e, f in zip(exact_k, table.nbr)])
    engine.dispose()
    print(f"store {args.database_url}, model {model}: {len(ids):,} vectors, index built in {built:.1f} s")
    print(f"recall@100 vs exact search ({len(probes)} stored vectors as queries): {recall:.4f}")
    print(f"neighbour table recall@{TABLE_K} vs exact (every paper): {table_recall:.4f}")


if __name__ == "__main__":
    main()
