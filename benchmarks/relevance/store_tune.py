"""Out-of-fold weights for the `store` protocol: 5 folds by library (choose on 8, score the
held-out 2), the held-out libraries then ranked through the CLI with their fold's weights.

Each radar's signals are computed once with the product's `Ranker.signals` on the candidate set
the product builds from the seeded store (the lexical head widened to every candidate, so that
the signals do not depend on the weights), kept in a pickle under the cache dir, and a weight
setting is replayed in numpy: score = sum of weight x z-score. A coordinate search from zero
weights adds or moves one weight at a time and keeps a move only when it raises the training
libraries' mean R-precision + nDCG@10 by more than `MIN_GAIN`, so a signal that does not pay
stays at zero. The figures to report are those of the CLI run on the held-out libraries.

    .venv/bin/python -m benchmarks.relevance.store_tune            # folds, weights, OOF figures
    .venv/bin/python -m benchmarks.relevance.store_tune --replay   # the replay only (no CLI run)
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .datasets import default_shared_data, rng_for
from .embedcache import default_cache_dir
from .metrics import evaluate

FOLDS = 5
MIN_GAIN = 0.002  # a move must raise the objective by this much to be kept: fewer signals win ties
STEPS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
FEATURES_VERSION = 2
# the signals whose weights are searched (the rest are rules, or read off a first ranking)
SEARCHED = ("dense_centroid", "dense_nearest", "learned", "dense_propagation", "lexical_centroid",
            "lexical_nearest", "lexical_learned", "category_affinity", "venue_affinity", "author_affinity",
            "era_affinity")
# Set, not searched: the lexical SVM at a small weight in every fold. On the libraries it is neutral
# (in-sample replay R-precision 0.834 with or without it); without it the product falls to the best
# Categories baseline (nDCG@10 0.826 against 0.827), with it 0.840 (docs/design.md, Ranking weights).
FIXED: dict[str, float] = {"lexical_learned": 0.1}
OFF_IN_REPLAY = ("dense_graph", "dense_feedback", "lexical_feedback")  # read off a first ranking: not replayed


def folds(names: list[str], seed: int = 0) -> list[list[str]]:
    order = [names[i] for i in rng_for(seed, "store-folds").permutation(len(names))]
    return [sorted(order[i::FOLDS]) for i in range(FOLDS)]


def features(shared: Path, cache_dir: Path, seed: int = 0, log=print) -> dict[str, dict]:
    """Library name -> its radar's signals over every candidate, the seeds' rows, the relevant rows."""
    from .store import answers, seeded_store

    seeded, runs = seeded_store(shared, cache_dir, seed, log=log)
    target = cache_dir / f"{seeded.stem}-features-v{FEATURES_VERSION}.pickle"
    if target.exists():
        with open(target, "rb") as handle:
            return pickle.load(handle)
    from sqlalchemy import select

    from academichub.rank import ranker as ranker_module
    from academichub.rank.ranker import DEFAULT_WEIGHTS, Ranker
    from academichub.rank.service import candidate_set, profile_of
    from academichub.store.database import open_store
    from academichub.store.radars import get_radar
    from academichub.store.schema import paper_embeddings

    work = Path(tempfile.mkdtemp(prefix="academichub-tune-"))
    out = {}
    try:
        db = work / "store.db"
        shutil.copy(seeded, db)
        url = f"sqlite:///{db}"
        keys, _, _ = answers(url, runs)
        ranker_module.LEXICAL_HEAD = 10**9
        ranker = Ranker({name: DEFAULT_WEIGHTS.get(name) or 1.0 for name in SEARCHED})
        engine = open_store(url)
        with engine.connect() as conn:
            model = conn.execute(select(paper_embeddings.c.model).distinct()).scalar_one()
            cs = candidate_set(conn, model=model, ranker=ranker)
            for run in runs:
                profile = profile_of(conn, get_radar(conn, run.name), model=model)
                signals = ranker.signals(profile, cs)
                kept = {k: np.asarray(v, dtype=np.float32) for k, v in signals.items()
                        if k in SEARCHED and np.shape(v) == (len(cs),)}
                answer = keys[run.name]
                out[run.name] = {
                    "signals": kept,
                    "ids": cs.ids.copy(),
                    "seed_rows": np.array([cs.position[s] for s in answer.seeds]),
                    "relevant": np.isin(cs.ids, list(answer.relevant)),
                }
                log(f"  features: {run.name} ({', '.join(sorted(kept))})")
        engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(target, "wb") as handle:
        pickle.dump(out, handle)
    return out


def _z(values: np.ndarray) -> np.ndarray:
    std = values.std()
    return np.zeros_like(values) if std < 1e-12 else (values - values.mean()) / std


def score(task: dict, weights: dict[str, float]) -> dict[str, float]:
    total = np.zeros(len(task["ids"]))
    for name, weight in weights.items():
        if weight and name in task["signals"]:
            total += weight * task["zs"][name]
    keep = np.ones(len(total), dtype=bool)
    keep[task["seed_rows"]] = False
    rows = np.flatnonzero(keep)
    order = rows[np.argsort(-total[rows], kind="stable")]
    relevant = set(np.flatnonzero(task["relevant"]).tolist())
    return evaluate(order.tolist(), relevant, 10)


def objective(tasks: list[dict], weights: dict[str, float]) -> float:
    results = [score(t, weights) for t in tasks]
    return float(np.mean([r["r_prec"] + r["ndcg@10"] for r in results]))


def search(tasks: list[dict], start: dict[str, float] | None = None, rounds: int = 3) -> dict[str, float]:
    """Coordinate search: each signal's weight over STEPS, a move kept when it gains > MIN_GAIN."""
    weights = {**(start or {name: 0.0 for name in SEARCHED}), **FIXED}
    best = objective(tasks, weights)
    for _ in range(rounds):
        moved = False
        for name in (n for n in SEARCHED if n not in FIXED):
            for step in STEPS:
                if step == weights.get(name, 0.0):
                    continue
                trial = {**weights, name: step}
                value = objective(tasks, trial)
                if value > best + MIN_GAIN:
                    best, weights, moved = value, trial, True
        if not moved:
            break
    return {k: v for k, v in weights.items() if v}


def prepared(features_by_name: dict[str, dict]) -> dict[str, dict]:
    for task in features_by_name.values():
        task["zs"] = {k: _z(v.astype(np.float64)) for k, v in task["signals"].items()}
    return features_by_name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relevance.store_tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared-data", type=Path, default=default_shared_data())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", action="store_true", help="replay only: no CLI run of the held-out libraries")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE: replay this setting on every library")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tasks = prepared(features(args.shared_data, args.cache_dir, args.seed))
    names = sorted(tasks)
    if args.set:
        weights = {k: float(v) for k, v in (s.split("=", 1) for s in args.set)}
        for name in names:
            r = score(tasks[name], weights)
            print(f"{name:22s} R-prec {r['r_prec']:.3f} nDCG@10 {r['ndcg@10']:.3f}")
        print(f"objective {objective([tasks[n] for n in names], weights):.4f}")
        return
    out_of_fold(tasks, args.shared_data, args.cache_dir, args.seed, replay=args.replay)


def out_of_fold(tasks: dict[str, dict], shared: Path, cache_dir: Path, seed: int = 0, *, replay: bool = False,
                log=print) -> dict:
    """Weights chosen per fold on 8 libraries, the held-out 2 ranked through the CLI with them."""
    names = sorted(tasks)
    files: dict[str, Path] = {}
    chosen = []
    weights_dir = cache_dir / "store-folds"
    weights_dir.mkdir(parents=True, exist_ok=True)
    for number, held_out in enumerate(folds(names, seed), 1):
        train = [tasks[n] for n in names if n not in held_out]
        weights = search(train)
        chosen.append({"held_out": held_out, "weights": weights})
        log(f"fold {number}: held out {', '.join(held_out)}; chosen on the other 8: {weights}")
        for name in held_out:
            r = score(tasks[name], weights)
            log(f"  replay {name:22s} R-prec {r['r_prec']:.3f} nDCG@10 {r['ndcg@10']:.3f}")
        path = weights_dir / f"fold-{number}.toml"
        path.write_text(weights_toml(weights), encoding="utf-8")
        files.update({name: path for name in held_out})
    everything = search([tasks[n] for n in names])
    log(f"chosen on all 10 (what ships as the defaults): {everything}")
    result = {"folds": chosen, "all": everything}
    if replay:
        return result
    from .store import print_table, run_store

    rows = run_store(shared, cache_dir, seed=seed, weights=files, log=log)
    result["rows"] = rows
    result["summary"] = print_table(rows, "store protocol, out of fold (each library ranked through the CLI with its fold's weights)", log=log)
    return result


def weights_toml(weights: dict[str, float]) -> str:
    """Every searched signal and every signal read off a first ranking, named: what the search
    left at zero is zero in the CLI run too."""
    full = {name: weights.get(name, 0.0) for name in (*SEARCHED, *OFF_IN_REPLAY)}
    return "".join(f"{name} = {value!r}\n" for name, value in full.items())


if __name__ == "__main__":
    main()
