"""`academichub mcp` as an assistant drives it: the SDK's own client spawns the real console script
over stdio, or talks streamable HTTP to the real process, on a store built with the real CLI from
a recorded arXiv day (../shared/data). The ranked papers must be exactly those, in the order,
that `academichub rank NAME --limit K` prints on the same store; reading never writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from sqlalchemy import func, select

from academichub.store.database import open_store
from academichub.store.schema import briefings, radar_feedback, radar_shown
from cli_support import academichub_script, script_env

RSS = "arxiv/rss/2024-11-28-all-archives.xml"
TOOLS = {"list_radars", "rank_radar", "search_papers", "get_paper", "read_briefing", "save_paper"}


@pytest.fixture(scope="module")
def store(module_database_url, shared_data, tmp_path_factory):
    """A store filled through the CLI: one recorded arXiv day and the radar "qubits"."""
    env = script_env(ACADEMICHUB_DATABASE_URL=module_database_url,
                     ACADEMICHUB_DATA_DIR=str(tmp_path_factory.mktemp("mcp-data")))

    def run(*args: str) -> str:
        done = subprocess.run([academichub_script(), *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    run("ingest", str(shared_data / RSS))
    run("radar", "create", "qubits", "--keyword", "spin qubit", "--category", "quant-ph",
        "--interest", "量子计算 spin qubits")
    return env, run


def _cli_rank(run, limit: int) -> list[dict]:
    return json.loads(run("rank", "qubits", "--limit", str(limit), "--format", "json"))


def _counts(url: str) -> tuple[int, int, int]:
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(select(func.count()).select_from(t)).scalar()
                         for t in (radar_shown, briefings, radar_feedback))
    finally:
        engine.dispose()


def test_stdio_session_lists_the_tools_and_ranks_as_the_cli_does(store):
    env, run = store
    expected = _cli_rank(run, 7)
    assert len(expected) == 7
    params = StdioServerParameters(command=academichub_script(), args=["mcp"], env=env)

    async def session():
        async with Client(params, read_timeout_seconds=120) as client:
            tools = await client.list_tools()
            radars = await client.call_tool("list_radars", {})
            ranked = await client.call_tool("rank_radar", {"radar": "qubits", "limit": 7})
            first = ranked.structured_content["papers"][0]
            by_arxiv = await client.call_tool("get_paper", {"paper": f"arXiv:{first['arxiv_id']}v1"})
            missing = await client.call_tool("get_paper", {"paper": "10.9999/not-stored"})
            briefing = await client.call_tool("read_briefing", {"radar": "qubits", "lang": "en"})
            unknown = await client.call_tool("rank_radar", {"radar": "no such radar"})
            return tools, radars, ranked, by_arxiv, missing, briefing, unknown

    tools, radars, ranked, by_arxiv, missing, briefing, unknown = anyio.run(session)
    assert {t.name for t in tools.tools} == TOOLS
    assert [r["name"] for r in radars.structured_content["radars"]] == ["qubits"]
    papers = ranked.structured_content["papers"]
    assert [p["id"] for p in papers] == [p["id"] for p in expected]
    assert [p["reasons"] for p in papers] == [p["reasons"] for p in expected]
    assert [p["title"] for p in papers] == [p["title"] for p in expected]
    assert all(p["links"]["abs"] == f"https://arxiv.org/abs/{p['arxiv_id']}" for p in papers)
    assert by_arxiv.structured_content["id"] == papers[0]["id"]
    assert by_arxiv.structured_content["abstract"]
    assert missing.is_error and "not-stored" in missing.content[0].text
    assert unknown.is_error and "no radar 'no such radar'" in unknown.content[0].text
    brief = briefing.structured_content
    assert (brief["date"], brief["lang"], brief["kind"], brief["stored"]) == ("2024-11-28", "en", "extractive", False)
    assert brief["markdown"].startswith("# ") and brief["papers"][0]["n"] == 1
    url = env["ACADEMICHUB_DATABASE_URL"]
    assert _counts(url) == (0, 0, 0)  # ranking and reading marked nothing shown and stored no briefing


def test_save_paper_is_the_radars_save_feedback(store):
    env, run = store
    params = StdioServerParameters(command=academichub_script(), args=["mcp"], env=env)
    top = _cli_rank(run, 1)[0]

    async def session():
        async with Client(params, read_timeout_seconds=120) as client:
            first = await client.call_tool("save_paper", {"paper": str(top["id"]), "radar": "qubits"})
            again = await client.call_tool("save_paper", {"paper": str(top["id"]), "radar": "qubits"})
            return first, again

    first, again = anyio.run(session)
    assert first.structured_content == {"saved": True, "paper_id": top["id"], "radar_id": 1}
    assert again.structured_content == first.structured_content
    assert _counts(env["ACADEMICHUB_DATABASE_URL"])[2] == 1  # one "save" row, however often it is pressed
    assert top["id"] not in [p["id"] for p in _cli_rank(run, 20)]  # a saved paper is not ranked again


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_streamable_http_needs_the_bearer_token(store):
    env, run = store
    expected = [p["id"] for p in _cli_rank(run, 5)]
    port = _free_port()
    process = subprocess.Popen(
        [academichub_script(), "mcp", "--transport", "http", "--port", str(port), "--token-env", "MCP_TEST_TOKEN"],
        env={**env, "MCP_TEST_TOKEN": "tok-🔑-right"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "the MCP server did not start"
                time.sleep(0.2)
        hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        accept = {"Accept": "application/json, text/event-stream"}
        for headers in ({}, {"Authorization": "Bearer tok-🔑-wrong".encode()}, {"Authorization": "Basic dG9rOng="}):
            refused = httpx.post(url, json=hello, headers={**accept, **headers}, timeout=30)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"] == 'Bearer realm="academichub"'

        async def session():
            async with create_mcp_http_client(headers={"Authorization": "Bearer tok-🔑-right".encode()}) as http:
                async with Client(streamable_http_client(url, http_client=http), read_timeout_seconds=120) as client:
                    tools = await client.list_tools()
                    ranked = await client.call_tool("rank_radar", {"radar": "qubits", "limit": 5})
                    return tools, ranked

        tools, ranked = anyio.run(session)
        assert {t.name for t in tools.tools} == TOOLS
        assert [p["id"] for p in ranked.structured_content["papers"]] == expected
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_http_without_a_token_does_not_start(store):
    env, _run = store
    done = subprocess.run([academichub_script(), "mcp", "--transport", "http", "--token-env", "MCP_UNSET_TOKEN"],
                          env={k: v for k, v in env.items() if k != "MCP_UNSET_TOKEN"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert "the environment variable MCP_UNSET_TOKEN is empty or not set" in done.stderr
