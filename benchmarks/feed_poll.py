"""What a feed reader's poll and an assistant's question cost, on the recorded arXiv day (1,504
papers) with one radar ("qubits": a keyword, a category, a Chinese-and-English interest):

- `GET /feeds/<token>/<radar>.atom` (7 days, 10 papers a day, the day's extractive briefing)
  against the same GET with a matching If-None-Match (304, the baseline: what most polls cost);
- the MCP tool `rank_radar` (limit 10, in-process client) against `hub.rank` itself (baseline).

    python -m benchmarks.feed_poll [--rounds N]

Prints min / median / max and the ratio of medians. Needs ../shared/data (ACADEMICHUB_SHARED_DATA)."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
import warnings
from pathlib import Path


def _figures(values: list[float]) -> str:
    return f"min {min(values) * 1000:.0f} / median {statistics.median(values) * 1000:.0f} / max {max(values) * 1000:.0f} ms"


def main(rounds: int = 5) -> None:
    import anyio
    from mcp import Client

    from academichub.app.hub import Hub
    from academichub.bench import default_shared_data
    from academichub.mcp_server import build_server
    from academichub.settings import Settings
    from academichub.store.radars import add_rule, create_radar, default_user
    from academichub.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    folder = Path(tempfile.mkdtemp(prefix="feed-poll-"))
    os.environ["ACADEMICHUB_DATA_DIR"] = str(folder)
    settings = Settings(database_url=f"sqlite:///{folder / 'store.db'}", load_sample=False, scheduler=False,
                        embed_on_ingest=False)
    hub = Hub(settings)
    with hub.ingest([str(default_shared_data() / "arxiv/rss/2024-11-28-all-archives.xml")]) as ingest:
        for _ in ingest.results():
            pass
    with hub.writing() as conn:
        radar_id = create_radar(conn, user_id=default_user(conn), name="qubits", interest="量子计算 spin qubits")
        add_rule(conn, radar_id, "keyword", "spin qubit")
        add_rule(conn, radar_id, "category", "quant-ph")

    with TestClient(create_app(hub=hub)) as client:
        url = re.search(r'value="(http[^"]+\.atom)"', client.get("/settings/feeds").text).group(1)

        def timed(**headers):
            start = time.perf_counter()
            response = client.get(url, headers=headers)
            return time.perf_counter() - start, response

        first, response = timed()
        full = [timed()[0] for _ in range(rounds)]
        etag = response.headers["etag"]
        polls = [timed(**{"If-None-Match": etag}) for _ in range(rounds)]
        assert all(r.status_code == 304 for _, r in polls)
        conditional = [t for t, _ in polls]
    print(f"feed GET: first {first * 1000:.0f} ms (cold candidate set); full {_figures(full)}; "
          f"304 {_figures(conditional)}; full/304 = {statistics.median(full) / statistics.median(conditional):.1f}x "
          f"({len(response.content):,} bytes)")

    hub.rank("qubits", limit=10, worth_saying=False)
    direct = []
    for _ in range(rounds):
        start = time.perf_counter()
        hub.rank("qubits", limit=10, worth_saying=False)
        direct.append(time.perf_counter() - start)

    async def tool_calls() -> list[float]:
        out = []
        async with Client(build_server(hub)) as mcp_client:
            for _ in range(rounds):
                start = time.perf_counter()
                await mcp_client.call_tool("rank_radar", {"radar": "qubits", "limit": 10})
                out.append(time.perf_counter() - start)
        return out

    tool = anyio.run(tool_calls)
    print(f"rank: hub.rank {_figures(direct)}; MCP rank_radar {_figures(tool)}; "
          f"tool/hub = {statistics.median(tool) / statistics.median(direct):.1f}x")
    hub.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    main(parser.parse_args().rounds)
