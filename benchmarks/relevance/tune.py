"""Weight tuning for the product's ranker on the relevance benchmark (fixed seeds).

Computes every task's signals once with `academichub.rank.ranker.Ranker.signals` (the lexical
head widened to every candidate, so the signals do not depend on the weights), keeps them in a
pickle under the cache dir, then scores weight settings in numpy: a weight setting costs a
fraction of a second per dataset instead of a benchmark run. The signals read off a first ranking
(the head's graph score `dense_graph`, pseudo-relevance feedback `*_feedback`) are replayed here
with the ranker's own `head_signals`, from the first score of the weights being tried.

    .venv/bin/python -m benchmarks.relevance.tune            # features (first time) + the default weights
    .venv/bin/python -m benchmarks.relevance.tune --set dense_graph=0.8 --set so:dense_feedback=1.2
    .venv/bin/python -m benchmarks.relevance.tune --search   # coordinate search from the defaults

`so:NAME` sets a weight of the statement-only mix (STATEMENT_ONLY_WEIGHTS). The search moves one
weight at a time over a few steps (x0, x0.5, x1.5, x2, +-0.1, +-0.3) and keeps a move when the
objective grows: the sum of nDCG@10 and R-precision over the five dataset/protocol pairs.

The figures to report come from the benchmark itself (`python -m benchmarks.relevance`): this
replay is an approximation (the ranker computes the lexical and feedback signals on a head of
LEXICAL_HEAD candidates; the replay, on all of them)."""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path

import numpy as np

from .datasets import default_shared_data
from .embedcache import default_cache_dir, embed_docs
from .methods import ranker_doc
from .metrics import evaluate
from .runner import build_tasks


def _features(shared: Path, cache_dir: Path, seed: int, draws: int, embedder) -> list[dict]:
    from academichub.rank import ranker as ranker_module
    from academichub.rank.crosslingual import to_english
    from academichub.rank.embeddings import _ONNX_FORMAT
    from academichub.rank.ranker import RadarProfile, Ranker

    tasks, docs = build_tasks(shared, ("categories", "libraries", "statements"), seed, draws)
    label = f"{embedder.name}-{embedder.config}-r{_ONNX_FORMAT}"
    embed_docs(docs, embedder, label, cache_dir)
    ranker_module.LEXICAL_HEAD = 10**9  # every candidate: the signals then do not depend on the weights
    ranker = Ranker(seed=seed)
    out = []
    for t, task in enumerate(tasks):
        convert = ranker_doc
        cand = [convert(d, i) for i, d in enumerate(task.candidates)]
        seeds = [convert(d, len(cand) + j) for j, d in enumerate(task.seeds)]
        interest = to_english(task.statement) if task.statement else None
        profile = RadarProfile(seeds=seeds, interest=interest,
                               interest_embedding=embedder.encode([interest])[0] if interest else None)
        days = [d.date for d in task.candidates if d.date]
        cs = ranker.candidates(cand)
        signals = ranker.signals(profile, cs, today=max(days) if days else None)
        kept = {k: v.astype(np.float32) for k, v in signals.items()
                if (not k.startswith("_") or k == "_rules") and k not in HEAD_SIGNALS}
        out.append({
            "dataset": task.dataset, "protocol": task.protocol, "name": task.name,
            "signals": kept,
            "relevant": np.array([d.id in task.relevant for d in task.candidates]),
            "emb": cs.emb, "tfidf": cs.matrix,
            "pos_emb": np.vstack([d.embedding for d in seeds]).astype(np.float32) if seeds else None,
            "centre": signals.get("_centre"), "pos_centred": signals.get("_pos_centred"),
            "pos_tfidf": cs.vectors([d.text for d in seeds]) if seeds else None,
            "statement_emb": profile.interest_embedding,
            "statement_tfidf": cs.vectors([interest]) if interest else None,
        })
        print(f"\r{t + 1}/{len(tasks)} tasks", end="", flush=True)
    print()
    return out


FEATURES_VERSION = 4  # 2: centred dense signals, the head signals left to the replay; 3: venues, era; 4: propagation


def load_features(shared: Path, cache_dir: Path, seed: int = 0, draws: int = 5, rebuild: bool = False) -> list[dict]:
    from academichub.rank.embeddings import _ONNX_FORMAT, load_embedder

    embedder = load_embedder(None)  # the vectors differ by backend and window (this machine's default)
    label = f"{embedder.config}-r{_ONNX_FORMAT}".replace("@", "_")
    path = cache_dir / f"tune-features-v{FEATURES_VERSION}-{label}-s{seed}-d{draws}.pkl"
    if path.is_file() and not rebuild:
        with open(path, "rb") as handle:
            return pickle.load(handle)
    features = _features(shared, cache_dir, seed, draws, embedder)
    with open(path, "wb") as handle:
        pickle.dump(features, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return features


HEAD_SIGNALS = ("dense_graph", "dense_feedback", "lexical_feedback")


def weights_for(task: dict, weights: dict[str, float], statement_only: dict[str, float]) -> dict[str, float]:
    """The ranker's choice (`Ranker.weights_for`): a statement-only radar gets its own mix."""
    if task["pos_emb"] is None:
        return {**weights, **statement_only}
    return weights


def score(task: dict, weights: dict[str, float]) -> np.ndarray:
    from academichub.rank.ranker import _zscore, head_signals

    sig = task["signals"]
    total = np.zeros(len(sig["_rules"]))
    z = task.setdefault("_z", {})
    for name, values in sig.items():
        if not name.startswith("_") and weights.get(name, 0.0):
            if name not in z:
                z[name] = _zscore(values.astype(float))
            total += weights[name] * z[name]
    total += sig["_rules"]
    head = head_signals(weights, total, task["emb"], task["tfidf"], None, task["centre"], task["pos_centred"])
    for name, values in head.items():
        total += weights.get(name, 0.0) * _zscore(values.astype(float))
    return total


def measure(features: list[dict], weights: dict[str, float], statement_only: dict[str, float]
            ) -> dict[tuple[str, str], tuple[float, float, float]]:
    by: dict[tuple[str, str], list[dict]] = {}
    for task in features:
        s = score(task, weights_for(task, weights, statement_only))
        order = np.argsort(-s, kind="stable")
        ranking = list(order)
        relevant = set(np.flatnonzero(task["relevant"]).tolist())
        by.setdefault((task["dataset"], task["protocol"]), []).append(evaluate(ranking, relevant, 10))
    return {key: (float(np.mean([r["ndcg@10"] for r in rs])), float(np.mean([r["r_prec"] for r in rs])),
                  float(np.mean([r["ap"] for r in rs]))) for key, rs in by.items()}


def show(result, label=""):
    parts = [f"{d[:4]}/{p}: {n:.3f} {r:.3f} {a:.3f}" for (d, p), (n, r, a) in sorted(result.items())]
    print(label, " | ".join(parts), flush=True)


def objective(result) -> float:
    return sum(n + r for n, r, _ in result.values())


def search(features: list[dict], weights: dict[str, float], statement_only: dict[str, float], sweeps: int = 2):
    """Coordinate search: one weight at a time (continuous signals and the statement-only mix)."""
    names = sorted({k for t in features for k in t["signals"] if not k.startswith("_")} | set(HEAD_SIGNALS))
    keys = [("w", k) for k in names] + [("so", k) for k in names if k.startswith(("dense", "lexical"))]
    result = measure(features, weights, statement_only)
    best = objective(result)
    show(result, f"start {best:.4f}")
    for _ in range(sweeps):
        improved = False
        for table_name, key in keys:
            table = weights if table_name == "w" else statement_only
            current = table.get(key, weights.get(key, 0.0))
            steps = {0.0, current * 0.5, current * 1.5, current * 2, current + 0.1, current - 0.1, current + 0.3, current - 0.3}
            for value in sorted(round(v, 3) for v in steps if v >= 0 and abs(v - current) > 1e-9):
                trial_w, trial_so = dict(weights), dict(statement_only)
                (trial_w if table_name == "w" else trial_so)[key] = value
                trial = measure(features, trial_w, trial_so)
                if objective(trial) > best + 1e-4:
                    weights, statement_only, result, best = trial_w, trial_so, trial, objective(trial)
                    improved = True
                    show(result, f"{table_name}:{key}={value} {best:.4f}")
        if not improved:
            break
    print("weights:", {k: v for k, v in weights.items() if k in names})
    print("statement-only:", statement_only)
    return weights, statement_only


def main(argv: list[str] | None = None) -> None:
    from academichub.rank.ranker import DEFAULT_WEIGHTS, STATEMENT_ONLY_WEIGHTS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.relevance.tune")
    parser.add_argument("--shared-data", type=Path, default=default_shared_data())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="recompute the signals")
    parser.add_argument("--set", action="append", default=[], help="name=value (so:name=value: the statement-only mix)")
    parser.add_argument("--search", action="store_true", help="coordinate search from the given weights")
    parser.add_argument("--sweeps", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    features = load_features(args.shared_data, args.cache_dir, args.seed, args.draws, args.rebuild)
    print(f"{len(features)} tasks ({time.perf_counter() - start:.0f} s)")
    weights = dict(DEFAULT_WEIGHTS)
    statement_only = dict(STATEMENT_ONLY_WEIGHTS)
    for item in args.set:
        name, value = item.split("=")
        if name.startswith("so:"):
            statement_only[name[3:]] = float(value)
        else:
            weights[name] = float(value)
            statement_only.pop(name, None)  # an explicit weight wins over the statement-only mix, as in Ranker
    show(measure(features, weights, statement_only), "weights:")
    if args.search:
        search(features, weights, statement_only, args.sweeps)


if __name__ == "__main__":
    main()
