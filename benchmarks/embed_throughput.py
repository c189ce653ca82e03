"""Embedding throughput on a GPU (or the CPU): the product's encoder against plain
sentence-transformers, same model, same texts, same run.

    python -m benchmarks.embed_throughput [--texts FILE] [--count 200000] [--device cuda]
    python -m benchmarks.embed_throughput --write-texts texts.jsonl.gz   # collect, then stop

Texts: title + ". " + abstract of real papers: the recorded arXiv OAI-PMH harvest (quant-ph) and
the packaged RSS day, read through the project's own parsers, or a JSON-lines file of
{"title", "abstract"} written by --write-texts (how they travel to a GPU machine that has no
shared data). They are repeated to --count texts; nothing caches an encoding, so a repeat costs
what a new text costs.

Rows printed, abstracts/s each (best of --rounds, after a warm-up):
- tokenizing alone: the Rust tokenizer over whole texts at 128 tokens, and the product's own
  tokenizing step (texts cut shortly beyond the window, ids to arrays): the ceiling of a pipeline
  that tokenizes on this host;
- plain sentence-transformers as it comes (float32 weights, 256 tokens, batches of 32): the
  baseline the issue names;
- sentence-transformers tuned by hand (float16, 128 tokens, batches of 512): what setting its
  knobs gives without a pipeline;
- academichub: `load_embedder(device=...)` with its defaults (on CUDA the torch-fp16 pipelined
  backend), the code `academichub embed` runs.
Then the agreement of the product's vectors with sentence-transformers' float32 vectors of the same
texts at the same length (cosine: mean and minimum).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def collect_texts(shared: Path | None) -> list[str]:
    """Real abstracts: the recorded OAI-PMH pages and the packaged RSS day."""
    from academichub.rank.embeddings import paper_text
    from academichub.sources.arxiv_oai import iter_oai
    from academichub.sources.arxiv_rss import parse_rss

    texts: list[str] = []
    sample = Path(__file__).resolve().parents[1] / "src/academichub/data/sample/2024-11-28-all-archives.xml"
    for paper in parse_rss(sample.read_bytes(), str(sample)).papers:
        texts.append(paper_text(paper.title, paper.abstract))
    if shared is not None:
        for path in sorted((shared / "arxiv" / "oai-quant-ph").glob("*.xml")):
            with path.open("rb") as handle:
                texts.extend(paper_text(p.title, p.abstract) for p in iter_oai(handle, str(path)))
    return texts


def read_texts(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    from academichub.rank.embeddings import paper_text

    return [paper_text(r.get("title"), r.get("abstract")) for r in rows]


def write_texts(texts: list[str], path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for t in texts:
            title, _, abstract = t.partition(". ")
            handle.write(json.dumps({"title": title, "abstract": abstract}, ensure_ascii=False) + "\n")


def timed(fn, rounds: int, sync) -> float:
    best = float("inf")
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=Path, help="JSON lines of {title, abstract} (.gz allowed)")
    parser.add_argument("--write-texts", type=Path, help="write the collected texts there and stop")
    parser.add_argument("--shared-data", type=Path, default=None)
    parser.add_argument("--count", type=int, default=200_000, help="texts per timed round (academichub)")
    parser.add_argument("--baseline-count", type=int, default=20_000, help="texts per round (sentence-transformers)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when torch sees one)")
    parser.add_argument("--backend", default="auto", help="the product's backend (default: auto)")
    parser.add_argument("--max-seq-length", type=int, help="tokens per text (default: the product's, 128)")
    parser.add_argument("--skip-baselines", action="store_true", help="the product's encoder only")
    parser.add_argument("--tokens-per-batch", type=int, help="override the pipelined backend's token budget")
    parser.add_argument("--chunk", type=int, help="override the pipelined backend's texts per tokenizer call")
    parser.add_argument("--json", type=Path, help="also write the figures there")
    args = parser.parse_args(argv)

    if args.texts:
        texts = read_texts(args.texts)
    else:
        from academichub.bench import default_shared_data

        texts = collect_texts(args.shared_data or default_shared_data())
    if args.write_texts:
        write_texts(texts, args.write_texts)
        print(f"wrote {len(texts)} texts to {args.write_texts}")
        return

    import torch

    from academichub.rank import embeddings as E

    device = args.device or E.default_device()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    unique = len(texts)

    def repeated(n: int) -> list[str]:
        return [texts[i % unique] for i in range(n)]

    figures: dict[str, object] = {"device": device, "unique_texts": unique, "host_cores": os.cpu_count()}
    if device.startswith("cuda"):
        figures["gpu"] = torch.cuda.get_device_name(0)
    print(f"{unique} distinct texts; device {device} ({figures.get('gpu', 'CPU')}); {os.cpu_count()} host cores;"
          f" torch {torch.__version__}", flush=True)

    rows: list[tuple[str, int, float]] = []

    def report(label: str, n: int, seconds: float) -> None:
        rows.append((label, n, seconds))
        print(f"{label:58s} {n:>8d} texts {seconds:8.2f} s {n / seconds:>10.0f} abstracts/s", flush=True)

    ours = E.load_embedder(device=device, backend=args.backend, max_seq_length=args.max_seq_length)
    if args.tokens_per_batch:
        ours.TOKENS_PER_BATCH = args.tokens_per_batch
    if args.chunk:
        ours.CHUNK = args.chunk
    figures["config"] = getattr(ours, "config", "?")
    big = repeated(args.count)

    tokenizer = getattr(ours, "tokenizer", None)
    if tokenizer is not None:
        report("tokenizers' encode_batch alone (whole texts, all cores)", len(big),
               timed(lambda: tokenizer.encode_batch(big), args.rounds, lambda: None))
    if hasattr(ours, "_tokenize"):
        report("academichub's tokenizing alone (cut texts, to arrays)", len(big),
               timed(lambda: ours._tokenize(big), args.rounds, lambda: None))

    from sentence_transformers import SentenceTransformer

    source = str(E.packaged_model_dir())
    st = SentenceTransformer(source, device=device).float()  # float32, as the released weights are
    small = repeated(args.baseline_count)
    if args.skip_baselines:
        small = []
    if small:
        st.encode(small[:2000], batch_size=32)
        report(f"plain sentence-transformers (fp32@{st.max_seq_length}, batch 32)", len(small),
               timed(lambda: st.encode(small, batch_size=32), args.rounds, sync))
    if small and device.startswith("cuda"):
        tuned = SentenceTransformer(source, device=device).half()
        tuned.max_seq_length = 128
        tuned.encode(small[:2000], batch_size=512)
        report("sentence-transformers tuned (fp16@128, batch 512)", len(small),
               timed(lambda: tuned.encode(small, batch_size=512), args.rounds, sync))
        del tuned

    ours.encode(big[:20_000])
    report(f"academichub load_embedder() [{figures['config']}]", len(big),
           timed(lambda: ours.encode(big), args.rounds, sync))

    check = texts[:2000]
    st.max_seq_length = getattr(ours, "max_seq_length", 128)
    reference = st.encode(check, batch_size=64, normalize_embeddings=True)
    mine = ours.encode(check)
    cos = (reference * mine).sum(axis=1)
    print(f"agreement with sentence-transformers fp32@{st.max_seq_length} over {len(check)} texts:"
          f" cosine mean {cos.mean():.5f}, min {cos.min():.5f}")
    order_check = ours.encode(check[::-1])[::-1]
    print(f"same vectors whatever the order: max |diff| {np.abs(order_check - mine).max():.2e}")

    figures["rows"] = [{"label": l, "texts": n, "seconds": round(s, 4), "per_s": round(n / s, 1)} for l, n, s in rows]
    figures["cosine_mean"] = float(cos.mean())
    figures["cosine_min"] = float(cos.min())
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    sys.exit(main())
