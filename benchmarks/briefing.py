"""Briefing benchmark: time to build the analysis + extractive briefing of 40 papers with stored
embeddings, and the tokens one LLM briefing sends. The measurement is the package's
(`academichub.bench`, which `academichub bench briefing` runs anywhere it is installed); in a
checkout this script adds one LLM briefing end to end against the fake OpenAI-compatible server of
tests/fake_openai.py (so nothing leaves the machine), with the requests it took.

    python benchmarks/briefing.py            (or: from benchmarks.briefing import bench_briefing)

Embeddings: the packaged all-MiniLM-L6-v2 when the embeddings extra is installed (encoding time
is not counted: a briefing reads stored vectors), else TF-IDF/LSA vectors stored under a model
name, which exercises the same code path."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from academichub.bench import BRIEFING_DAY, briefing_bench_store, briefing_report, measure_briefing

REPO = Path(__file__).resolve().parents[1]


def bench_briefing(rounds: int = 5) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from fake_openai import FakeOpenAI, careful_model

    from academichub.brief.analysis import analyze
    from academichub.brief.briefing import make_briefing
    from academichub.brief.inputs import papers_from_store
    from academichub.brief.llm import ChatClient, LLMConfig
    from academichub.brief.schema import write_with_llm
    from academichub.settings import load_settings

    with briefing_bench_store() as store:
        results = measure_briefing(store, rounds)
        engine, ids, model = store.engine, store.paper_ids, store.model
        server = FakeOpenAI().start()
        server.script = [careful_model]
        try:
            with engine.connect() as conn:
                items = papers_from_store(conn, ids, model)
            analysis = analyze(items)
            for lang in ("en", "zh"):
                config = LLMConfig(model="fake-model", base_url=server.base_url, api_key="bench")
                run = write_with_llm(ChatClient(config), items, analysis, lang)
                results[f"llm_{lang}"].update(requests=run.requests, kind=run.doc.kind if run.doc else "extractive")
            llm_settings = load_settings(load_sample=False, embedding_model=model, data_dir=str(store.folder),
                                         llm_base_url=server.base_url, llm_model="fake-model")
            start = time.perf_counter()
            b = make_briefing(engine, radar_id=None, paper_ids=ids, period=(BRIEFING_DAY, BRIEFING_DAY), lang="en",
                              settings=llm_settings, regenerate=True)
            results["llm_end_to_end_s"] = time.perf_counter() - start
            results["llm_kind"] = b.kind
        finally:
            server.stop()
    return results


def main() -> None:
    r = bench_briefing()
    for line in briefing_report(r):
        print(line)
    print(f"LLM briefing end to end against the fake server: {r['llm_end_to_end_s']:.3f} s ({r['llm_kind']})")


if __name__ == "__main__":
    main()
