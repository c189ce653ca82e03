"""The `store` protocol: the radar measured the way a user meets it, through the real CLI.

1. one fresh SQLite store; `academichub papers import` of each library; `academichub embed`
   (the store file is kept under the cache dir and copied for each run: building it is the
   expensive part, ~1 min of embedding on 2 cores);
2. per library: 10 random entries with an abstract of more than 80 characters, copied as written
   (with the file's @string macros) into a `.bib`; `radar create L`, `radar seed L seeds.bib`,
   `rank L --all --limit 5000 --format json`;
3. relevant: the stored papers whose normalised title is one of the library's other entries;
   candidates: every stored paper but the seeds;
4. baseline in the same run, over the same stored papers: arxiv-sanity-lite's recipe, TF-IDF
   (english stop words, sublinear tf, min_df 2) over title + abstract, `LinearSVC(C=0.1,
   class_weight="balanced")` fitted on the seeds against 1,000 random non-seed papers.

The CLI runs in-process (Typer's runner, the same arguments a user types), so the candidate set
the product builds is kept between radars as it is in a long-running server. Weights for a run
(a fold of the out-of-fold evaluation) reach the CLI as a TOML file named by
ACADEMICHUB_RANK_WEIGHTS, the product's setting: the scored path is the product's."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import _title_key, rng_for

SEEDS = 10
MIN_ABSTRACT = 80
RANK_LIMIT = 5000
SVM_NEGATIVES = 1000
STORE_VERSION = 1  # bump when what goes into the cached store changes


@dataclass(slots=True)
class LibraryRun:
    name: str
    seed_keys: set[str]  # library keys of the seeds ("<file name>:<key>")
    seed_bib: str
    own_titles: set[str]  # normalised titles of every entry of the library


def cli(args: list[str], database_url: str, weights: Path | None = None) -> str:
    """One `academichub` command, in-process; its standard output (an error raises)."""
    from typer.testing import CliRunner

    from academichub.cli import app

    env = {"ACADEMICHUB_DATABASE_URL": database_url, "HF_HUB_OFFLINE": "1",
           "ACADEMICHUB_RANK_WEIGHTS": str(weights) if weights else None}
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"academichub {' '.join(args)}: exit {result.exit_code}: {result.output[-2000:]}")
    return result.stdout


def libraries(shared: Path) -> list[Path]:
    return sorted((shared / "libraries").glob("*.bib"))


# the names the table uses (two libraries are both called "thesis")
SHORT_NAMES = {"7brunner--SysRiskWelfare": "SysRiskWelfare", "corinalogan--grackles": "grackles"}


def library_name(path: Path) -> str:
    return SHORT_NAMES.get(path.stem, path.stem.split("--", 1)[0])


def build_store(shared: Path, cache_dir: Path, log=print) -> Path:
    """The store after `papers import` of every library and `embed`, built once per input."""
    digest = hashlib.sha1(f"v{STORE_VERSION}".encode())
    for path in libraries(shared):
        digest.update(path.name.encode() + path.read_bytes())
    target = cache_dir / f"store-{digest.hexdigest()[:12]}.db"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    url = f"sqlite:///{partial}"
    for path in libraries(shared):
        log(cli(["papers", "import", str(path)], url).strip().splitlines()[-1])
    log(cli(["embed"], url).strip().splitlines()[-1])
    os.replace(partial, target)
    return target


def seed_file(path: Path, seed: int) -> LibraryRun:
    """10 random entries with an abstract (> 80 characters), as the library writes them."""
    import bibtexparser
    from bibtexparser import model as bib

    from academichub.ingest.library_import import read_library

    papers = read_library(path).papers
    own = {_title_key(p.title) for p in papers if p.title.strip()}
    keys = sorted({p.raw["library_key"] for p in papers if len((p.abstract or "").strip()) > MIN_ABSTRACT})
    rng = rng_for(seed, "store", path.name)
    picked = {keys[i] for i in rng.choice(len(keys), SEEDS, replace=False)}
    text = path.read_text(encoding="utf-8", errors="replace")
    logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)  # the broken entries were reported on import
    library = bibtexparser.parse_string(text, parse_stack=[])
    macros = [b.raw for b in library.blocks if isinstance(b, bib.String)]
    entries = {}
    for block in library.blocks:
        entry = getattr(block, "ignore_error_block", block)
        if isinstance(entry, bib.Entry):
            entries.setdefault(f"{path.name}:{entry.key.strip()}", entry.raw)
    missing = picked - entries.keys()
    if missing:
        raise RuntimeError(f"{path}: entries not found as written: {sorted(missing)}")
    return LibraryRun(library_name(path), picked, "\n\n".join([*macros, *(entries[k] for k in sorted(picked))]) + "\n", own)


def stored_papers(database_url: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Every stored paper: ids, normalised titles, title + abstract texts."""
    from sqlalchemy import select

    from academichub.store.database import open_store
    from academichub.store.schema import papers

    engine = open_store(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(papers.c.id, papers.c.title, papers.c.abstract).order_by(papers.c.id)).all()
    finally:
        engine.dispose()
    return (np.array([r[0] for r in rows], dtype=np.int64), [_title_key(r[1] or "") for r in rows],
            [f"{r[1] or ''} {r[2] or ''}" for r in rows])


def radar_seeds(database_url: str, name: str) -> list[int]:
    """The stored ids of a radar's seeds (the answer key needs them; `radar show` gives a count)."""
    from academichub.store.database import open_store
    from academichub.store.radars import get_radar

    engine = open_store(database_url)
    try:
        with engine.connect() as conn:
            return list(get_radar(conn, name).seeds)
    finally:
        engine.dispose()


class SanitySvm:
    """The issue's baseline: arxiv-sanity-lite's TF-IDF + linear SVM over every stored paper."""

    name = "tfidf-svm"

    def __init__(self, texts: list[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.matrix = TfidfVectorizer(stop_words="english", sublinear_tf=True, min_df=2).fit_transform(texts)

    def scores(self, seed_rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from sklearn.svm import LinearSVC

        others = np.setdiff1d(np.arange(self.matrix.shape[0]), seed_rows)
        negatives = rng.choice(others, min(SVM_NEGATIVES, len(others)), replace=False)
        rows = np.r_[seed_rows, negatives]
        y = np.r_[np.ones(len(seed_rows)), np.zeros(len(negatives))]
        model = LinearSVC(C=0.1, class_weight="balanced").fit(self.matrix[rows], y)
        return model.decision_function(self.matrix)


def seeded_store(shared: Path, cache_dir: Path, seed: int = 0, log=print) -> tuple[Path, list[LibraryRun]]:
    """The built store with one radar per library, seeded through `radar create` and `radar seed`
    (kept under the cache dir like the store: ranking does not write to it)."""
    base = build_store(shared, cache_dir, log=log)
    runs = [seed_file(p, seed) for p in libraries(shared)]
    target = base.with_name(f"{base.stem}-seeded-{seed}.db")
    if target.exists():
        return target, runs
    work = Path(tempfile.mkdtemp(prefix="academichub-store-"))
    try:
        db = work / "store.db"
        shutil.copy(base, db)
        url = f"sqlite:///{db}"
        for run in runs:  # every radar is seeded before any ranking: the candidates are one set
            bib_path = work / f"{run.name}-seeds.bib"
            bib_path.write_text(run.seed_bib, encoding="utf-8")
            cli(["radar", "create", run.name], url)
            log(cli(["radar", "seed", run.name, str(bib_path)], url).strip().splitlines()[-1])
        _checkpoint(db)
        shutil.copy(db, target.with_suffix(".partial"))
        os.replace(target.with_suffix(".partial"), target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target, runs


def _checkpoint(db: Path) -> None:
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@dataclass(slots=True)
class Answer:
    """What a library's radar is scored against."""

    seeds: list[int]
    relevant: set[int]


def answers(url: str, runs: list[LibraryRun]) -> tuple[dict[str, Answer], np.ndarray, list[str]]:
    ids, titles, texts = stored_papers(url)
    out = {}
    for run in runs:
        seeds = radar_seeds(url, run.name)
        seed_titles = {titles[i] for i in np.searchsorted(ids, seeds)}
        relevant = {int(i) for i, t in zip(ids, titles) if t in run.own_titles and t not in seed_titles} - set(seeds)
        out[run.name] = Answer(seeds, relevant)
    return out, ids, texts


def run_store(shared: Path, cache_dir: Path, *, seed: int = 0, only: set[str] | None = None,
              weights: dict[str, Path] | None = None, log=print) -> list[dict]:
    """Per library: the product's ranking through the CLI and the baseline, both scored.
    `weights`: library name -> the weights file its radar is ranked with (out of fold)."""
    from .metrics import evaluate

    seeded, runs = seeded_store(shared, cache_dir, seed, log=log)
    runs = [r for r in runs if only is None or r.name in only]
    work = Path(tempfile.mkdtemp(prefix="academichub-store-"))
    rows = []
    try:
        db = work / "store.db"
        shutil.copy(seeded, db)
        url = f"sqlite:///{db}"
        keys, ids, texts = answers(url, runs)
        svm = SanitySvm(texts)
        for run in runs:
            seeds, relevant = keys[run.name].seeds, keys[run.name].relevant
            ranked = json.loads(cli(["rank", run.name, "--all", "--limit", str(RANK_LIMIT), "--format", "json"], url,
                                    (weights or {}).get(run.name)))
            product = evaluate([int(r["id"]) for r in ranked], relevant, 10)
            seed_rows = np.searchsorted(ids, seeds)
            scores = svm.scores(seed_rows, rng_for(seed, "store-svm", run.name))
            keep = np.ones(len(ids), dtype=bool)
            keep[seed_rows] = False
            order = np.flatnonzero(keep)[np.argsort(-scores[keep], kind="stable")]
            baseline = evaluate([int(i) for i in ids[order]], relevant, 10)
            rows.append({"library": run.name, "seeds": len(seeds), "relevant": len(relevant),
                         "candidates": int(keep.sum()), "academichub": product, "tfidf-svm": baseline})
            log(f"  {run.name:22s} seeds {len(seeds):2d} relevant {len(relevant):5d}  academichub R-prec "
                f"{product['r_prec']:.3f} nDCG@10 {product['ndcg@10']:.3f}  tfidf-svm {baseline['r_prec']:.3f} "
                f"{baseline['ndcg@10']:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def print_table(rows: list[dict], title: str, log=print) -> dict:
    """A table per library and the means; returns the summary (means, wins)."""
    log(f"\n{title}")
    log(f"{'library':22s} {'seeds':>5s} {'relevant':>8s}  {'academichub R-prec':>18s} {'nDCG@10':>8s}  "
        f"{'tfidf-svm R-prec':>16s} {'nDCG@10':>8s}")
    for r in rows:
        a, b = r["academichub"], r["tfidf-svm"]
        log(f"{r['library']:22s} {r['seeds']:5d} {r['relevant']:8d}  {a['r_prec']:18.3f} {a['ndcg@10']:8.3f}  "
            f"{b['r_prec']:16.3f} {b['ndcg@10']:8.3f}")
    summary = {
        method: {metric: float(np.mean([r[method][metric] for r in rows])) for metric in ("r_prec", "ndcg@10", "ap")}
        for method in ("academichub", "tfidf-svm")
    }
    wins = sum(r["academichub"]["r_prec"] > r["tfidf-svm"]["r_prec"] for r in rows)
    summary["wins"] = wins
    log(f"{'mean':22s} {'':5s} {'':8s}  {summary['academichub']['r_prec']:18.3f} {summary['academichub']['ndcg@10']:8.3f}  "
        f"{summary['tfidf-svm']['r_prec']:16.3f} {summary['tfidf-svm']['ndcg@10']:8.3f}")
    log(f"academichub wins on R-precision in {wins} of {len(rows)} libraries")
    return summary
