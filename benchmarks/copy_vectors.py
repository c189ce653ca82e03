"""Realistic vectors for a large synthetic store without hours of embedding: each synthetic copy
(`academichub bench generate`: arXiv id 9NNN.IIIII, copy NNN of recorded record IIIII) gets the
vector that a smaller, embedded store holds for copy 0 of the same record (9000.IIIII). A copy
keeps its record's title and abstract (its title adds "(synthetic copy N)"), so this is nearly the
vector `academichub embed` would store; ten copies of a record are ten near-duplicates, as in the
store's text.

    academichub bench generate --papers 15000 --output /tmp/g15k
    ACADEMICHUB_DATA_DIR=/tmp/e15k academichub ingest /tmp/g15k/*.xml   # then `academichub embed`
    python benchmarks/copy_vectors.py --source /tmp/e15k/academichub.db --target /tmp/s150k.db

SQLite stores only (one ATTACH and one INSERT … SELECT); the target's existing vectors of the
model are kept. Prints how many were copied and how many target papers found none."""

from __future__ import annotations

import argparse
import sqlite3
import time


def copy_vectors(source: str, target: str) -> tuple[int, int]:
    """(vectors copied, synthetic target papers whose record has no vector in the source)."""
    conn = sqlite3.connect(target)
    try:
        conn.execute("ATTACH DATABASE ? AS source", (source,))
        before = conn.execute("SELECT count(*) FROM paper_embeddings").fetchone()[0]
        with conn:
            conn.execute(
                """
                INSERT OR IGNORE INTO paper_embeddings (paper_id, model, dim, tokens, vector, created_at)
                SELECT p.id, e.model, e.dim, e.tokens, e.vector, e.created_at
                FROM papers p
                JOIN source.papers s ON s.arxiv_id = '9000.' || substr(p.arxiv_id, 6)
                JOIN source.paper_embeddings e ON e.paper_id = s.id
                WHERE p.arxiv_id GLOB '9[0-9][0-9][0-9].[0-9][0-9][0-9][0-9][0-9]'
                """
            )
        copied = conn.execute("SELECT count(*) FROM paper_embeddings").fetchone()[0] - before
        missing = conn.execute(
            "SELECT count(*) FROM papers p WHERE p.arxiv_id GLOB '9[0-9][0-9][0-9].[0-9][0-9][0-9][0-9][0-9]' "
            "AND NOT EXISTS (SELECT 1 FROM paper_embeddings e WHERE e.paper_id = p.id)"
        ).fetchone()[0]
        return copied, missing
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="the embedded store (SQLite file) holding copy 0 of each record")
    parser.add_argument("--target", required=True, help="the large synthetic store (SQLite file) to give vectors")
    args = parser.parse_args()
    start = time.perf_counter()
    copied, missing = copy_vectors(args.source, args.target)
    print(f"{copied} vectors copied into {args.target} ({missing} synthetic papers without one) "
          f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
