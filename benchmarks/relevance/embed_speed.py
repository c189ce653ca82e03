"""Embedding throughput vs quality, one row per encoder configuration:

    python -m benchmarks.relevance.embed_speed [--rounds 3] [--sample 384] [--only onnx-int8@256,...]

Throughput: abstracts/s encoding a fixed random sample of the arXiv day (title + ". " +
abstract), best of `rounds` rounds, configurations interleaved round by round so that a busy
neighbour on a shared machine hurts them all alike. Quality: the proxy of the choice (the
Categories dataset with 5 seeds, `draws` seed draws, ranked by mean cosine to the seeds),
nDCG@10, plus the mean cosine of each vector to the full-precision one of the same text.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .datasets import category_tasks, default_shared_data, load_arxiv_day
from .metrics import evaluate
from .methods import EmbeddingMeanCosine

REFERENCE = "torch@256"
CONFIGS = [
    # label, backend, max_seq_length, extra (see build)
    ("torch@256", "torch", 256, {}),  # sentence-transformers as it comes
    ("torch@128", "torch", 128, {}),
    ("torch-int8@256", "torch-int8", 256, {}),
    ("torch-int8@128", "torch-int8", 128, {}),
    ("torch-bf16@256", "torch-bf16", 256, {}),
    ("torch-bf16@128", "torch-bf16", 128, {}),
    ("onnx-unfused@256", "onnx", 256, {"file": "model.onnx"}),
    ("onnx@256", "onnx", 256, {}),
    ("onnx@128", "onnx", 128, {}),
    ("onnx-int8-pertensor@256", "onnx-int8", 256, {"file": "model-int8-pertensor.onnx"}),
    ("onnx-int8-pertensor@128", "onnx-int8", 128, {"file": "model-int8-pertensor.onnx"}),
    ("onnx-int8@256", "onnx-int8", 256, {}),
    ("onnx-int8-unsorted@128", "onnx-int8", 128, {"sort": False}),
    ("onnx-int8-1run-2threads@128", "onnx-int8", 128, {"threads": 2, "workers": 1}),
    ("onnx-int8-spin@128", "onnx-int8", 128, {"spin": True}),
    ("onnx-int8@128", "onnx-int8", 128, {}),
]


def build(backend: str, seq: int, extra: dict, cache_dir: Path):
    """The embedder of one configuration; `extra` swaps the ONNX graph file, turns length
    sorting off, or changes the threading (threads per run, runs at once, spinning)."""
    from academichub.rank import embeddings as E

    embedder = E.load_embedder(backend=backend, device="cpu", max_seq_length=seq, cache_dir=cache_dir)
    if extra:
        target = next(p for p in cache_dir.iterdir() if p.is_dir() and (p / "meta.json").is_file())
        path = target / extra.get("file", "model-int8.onnx" if backend == "onnx-int8" else "model-opt.onnx")
        if not path.is_file() and extra.get("file") == "model-int8-pertensor.onnx":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(target / "model-opt.onnx"), str(path), weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": 1})
        session = E._onnx_session(path, threads=extra.get("threads", 1), spin=extra.get("spin", False))
        embedder = E.OnnxEmbedder(session, embedder.tokenizer, embedder.meta, embedder.name, seq,
                                  workers=extra.get("workers", E.cpu_workers()), sort_by_length=extra.get("sort", True))
    return embedder


def quality(vectors: dict[str, np.ndarray], docs, draws: int, seed: int) -> tuple[float, float]:
    """(nDCG@10, MAP) of mean cosine to 5 seeds over the Categories tasks, `draws` seed draws each."""
    for d in docs:
        d.embedding = vectors[d.id]
    method = EmbeddingMeanCosine()
    ndcg, ap = [], []
    for task in category_tasks(docs, seed=seed, draws=draws):
        ids, _ = method.rank(task.seeds, None, task.candidates)
        result = evaluate(ids, task.relevant, 10)
        ndcg.append(result["ndcg@10"])
        ap.append(result["ap"])
    return float(np.mean(ndcg)), float(np.mean(ap))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared-data", type=Path, default=default_shared_data())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", type=int, default=384)
    parser.add_argument("--draws", type=int, default=20, help="seed draws per category for the quality proxy")
    parser.add_argument("--save", type=Path, default=None, help="keep every configuration's vectors here (npz)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated labels")
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    docs = load_arxiv_day(args.shared_data)
    texts = [d.text for d in docs]
    rng = np.random.default_rng(args.seed)
    sample = [texts[i] for i in rng.choice(len(texts), min(args.sample, len(texts)), replace=False)]
    configs = [c for c in CONFIGS if not args.only or c[0] in args.only.split(",")]
    cache_dir = Path(tempfile.mkdtemp(prefix="ah-embed-speed-"))
    try:
        embedders = {label: build(backend, seq, extra, cache_dir) for label, backend, seq, extra in configs}
        for e in embedders.values():
            e.encode(sample[:32])  # warm-up
        best = {label: 0.0 for label in embedders}
        best_cpu = {label: 0.0 for label in embedders}
        cores = len(os.sched_getaffinity(0))
        for r in range(args.rounds):
            for label, e in embedders.items():
                start, cpu = time.perf_counter(), time.process_time()
                e.encode(sample, batch_size=args.batch_size)
                rate = len(sample) / (time.perf_counter() - start)
                cpu_rate = len(sample) / ((time.process_time() - cpu) / cores)
                best[label] = max(best[label], rate)
                best_cpu[label] = max(best_cpu[label], cpu_rate)
                print(f"round {r + 1} {label:28s} {rate:7.1f}/s wall {cpu_rate:7.1f}/s cpu "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
        full: dict[str, np.ndarray] = {}
        if not args.no_quality:
            for label, e in embedders.items():
                full[label] = e.encode(texts, batch_size=args.batch_size)
            if args.save:
                np.savez(args.save, ids=np.array([d.id for d in docs]), **full)
        print(f"\n{'config':28s} {'wall/s':>7s} {'cpu/s':>7s} {'nDCG@10':>8s} {'MAP':>6s} {'cos-to-ref':>10s}")
        for label in embedders:
            q = ap = cos = float("nan")
            if label in full:
                q, ap = quality(dict(zip([d.id for d in docs], full[label])), docs, args.draws, args.seed)
                if REFERENCE in full:
                    cos = float(np.mean(np.sum(full[label] * full[REFERENCE], axis=1)))
            print(f"{label:28s} {best[label]:7.1f} {best_cpu[label]:7.1f} {q:8.3f} {ap:6.3f} {cos:10.4f}", flush=True)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
