"""Run every method on every task and print nDCG@10, R-precision and MAP per method, dataset and
protocol (see README.md). Embeddings are computed once per embedder configuration and cached
(npz under the cache dir), so a rerun costs only the ranking."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from .datasets import (
    Task,
    category_tasks,
    default_shared_data,
    library_tasks,
    load_arxiv_day,
    load_libraries,
    statement_tasks,
)
from .embedcache import default_cache_dir, embed_docs
from .methods import Method, ProductRanker, seed_baselines, statement_baselines
from .metrics import evaluate

DATASETS = ("store", "categories", "libraries", "statements")


def build_tasks(shared: Path, datasets: tuple[str, ...], seed: int, draws: int, log=print):
    arxiv_day = load_arxiv_day(shared)
    libraries = load_libraries(shared) if "libraries" in datasets else {}
    tasks: list[Task] = []
    if "categories" in datasets:
        tasks += category_tasks(arxiv_day, seed=seed, draws=draws)
    if "libraries" in datasets:
        log(f"libraries: {', '.join(f'{k} {len(v)}' for k, v in libraries.items())}")
        tasks += library_tasks(libraries, arxiv_day, seed=seed)
    if "statements" in datasets:
        tasks += statement_tasks(arxiv_day)
    unique: dict[int, object] = {}
    for task in tasks:  # the objects the methods will see (some are category-blind copies)
        for d in (*task.seeds, *task.candidates):
            unique.setdefault(id(d), d)
    return tasks, list(unique.values())


def run_method(method: Method, task: Task) -> tuple[dict[str, float], float]:
    start = time.perf_counter()
    ids, scores = method.rank(task.seeds, task.statement, task.candidates)
    spent = time.perf_counter() - start
    ids = list(ids)
    expected = {d.id for d in task.candidates}
    if len(ids) != len(expected) or set(ids) != expected:
        raise AssertionError(f"{method.name} on {task.dataset}/{task.protocol}/{task.name}: the ranking is not a permutation of the candidates")
    if len(scores) != len(ids):
        raise AssertionError(f"{method.name}: {len(scores)} scores for {len(ids)} ids")
    return evaluate(ids, task.relevant, 10), spent


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relevance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared-data", type=Path, default=default_shared_data(),
                        help="the recorded data (default ../shared/data or $ACADEMICHUB_SHARED_DATA)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: " + ", ".join(DATASETS))
    parser.add_argument("--methods", default="", help="comma-separated method names (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of every random choice")
    parser.add_argument("--draws", type=int, default=5, help="seed draws per category (Categories): 5 draws of 5 seeds each")
    parser.add_argument("--model", default=None, help="embedding model (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--backend", default="auto", help="embedding backend: auto, fast, torch, onnx, onnx-int8, ...")
    parser.add_argument("--max-seq-length", type=int, default=None)
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--no-product", action="store_true", help="leave out academichub.rank.ranker")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    datasets = tuple(d.strip() for d in args.datasets.split(",") if d.strip())

    store = None
    if "store" in datasets:
        # the product as used: the CLI over a store of the ten libraries, out-of-fold weights
        from .store_tune import features, out_of_fold, prepared

        store = out_of_fold(prepared(features(args.shared_data, args.cache_dir, args.seed)), args.shared_data,
                            args.cache_dir, args.seed)
        datasets = tuple(d for d in datasets if d != "store")
        if not datasets:
            if args.json:
                args.json.write_text(json.dumps({"store": store}, indent=1, default=list))
            return {"store": store}
    tasks, docs = build_tasks(args.shared_data, datasets, args.seed, args.draws)
    print(f"{len(tasks)} tasks over {len(docs)} documents")

    from academichub.rank.embeddings import load_embedder

    embedder = load_embedder(args.model, backend=args.backend, max_seq_length=args.max_seq_length)
    from academichub.rank.embeddings import _ONNX_FORMAT

    label = f"{embedder.name}-{embedder.config}-r{_ONNX_FORMAT}"  # a new export recipe: new vectors
    embed_seconds = embed_docs(docs, embedder, label, args.cache_dir)

    methods: list[Method] = seed_baselines(args.seed) + statement_baselines(embedder.encode, args.seed)[1:]
    if not args.no_product:
        try:
            methods.append(ProductRanker(embedder.encode, args.seed))
        except (ImportError, AttributeError) as exc:
            print(f"(product ranker not included: {exc})")
    if args.methods:
        wanted = set(args.methods.split(","))
        methods = [m for m in methods if m.name in wanted]

    scores: dict[tuple, list[dict]] = defaultdict(list)
    seconds: dict[tuple, float] = defaultdict(float)
    for task in tasks:
        kind = "statement" if task.statement is not None and not task.seeds else "seeds"
        for method in methods:
            if kind not in method.handles:
                continue
            result, spent = run_method(method, task)
            key = (task.dataset, task.protocol, method.name)
            scores[key].append(result)
            seconds[key] += spent

    rows = []
    for (dataset, protocol, name), results in scores.items():
        rows.append({
            "dataset": dataset, "protocol": protocol, "method": name, "tasks": len(results),
            "ndcg@10": float(np.mean([r["ndcg@10"] for r in results])),
            "r_prec": float(np.mean([r["r_prec"] for r in results])),
            "map": float(np.mean([r["ap"] for r in results])),
            "seconds": seconds[(dataset, protocol, name)],
        })
    order = {d: i for i, d in enumerate(DATASETS)}
    rows.sort(key=lambda r: (order.get(r["dataset"], 9), r["protocol"], r["method"]))
    wall = time.perf_counter() - started
    print()
    print(f"{'dataset':11s} {'protocol':8s} {'method':22s} {'tasks':>5s} {'nDCG@10':>8s} {'R-prec':>7s} {'MAP':>6s} {'rank s':>7s}")
    last = None
    for r in rows:
        if last and (r["dataset"], r["protocol"]) != last:
            print()
        last = (r["dataset"], r["protocol"])
        print(f"{r['dataset']:11s} {r['protocol']:8s} {r['method']:22s} {r['tasks']:5d} {r['ndcg@10']:8.3f} "
              f"{r['r_prec']:7.3f} {r['map']:6.3f} {r['seconds']:7.1f}")
    ratios = _language_ratios(rows)
    if ratios:
        print("\nStatements, zh / en (nDCG@10, MAP):")
        for name, (ndcg, ap) in ratios.items():
            print(f"  {name:22s} {ndcg:6.2f} {ap:6.2f}")
    print(f"\nembedder {label}: {embed_seconds:.1f} s encoding (0 = all cached); wall time {wall:.1f} s")
    if store is not None:
        print("\nstore protocol (out of fold), printed above: academichub R-prec {:.3f} nDCG@10 {:.3f}, tfidf-svm {:.3f} {:.3f}, "
              "{} wins of 10".format(store["summary"]["academichub"]["r_prec"], store["summary"]["academichub"]["ndcg@10"],
                                     store["summary"]["tfidf-svm"]["r_prec"], store["summary"]["tfidf-svm"]["ndcg@10"],
                                     store["summary"]["wins"]))
    result = {"store": store, "rows": rows, "zh_en_ratio": ratios, "embedder": label, "embed_seconds": embed_seconds, "wall_seconds": wall,
              "seed": args.seed, "draws": args.draws}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=list))
    return result


def _language_ratios(rows: list[dict]) -> dict[str, tuple[float, float]]:
    by = {(r["protocol"], r["method"]): r for r in rows if r["dataset"] == "statements"}
    ratios = {}
    for (protocol, method), r in by.items():
        if protocol == "zh" and ("en", method) in by and method not in ("random", "newest"):
            en = by[("en", method)]
            ratios[method] = (r["ndcg@10"] / en["ndcg@10"] if en["ndcg@10"] else float("nan"),
                              r["map"] / en["map"] if en["map"] else float("nan"))
    return ratios
