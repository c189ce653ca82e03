"""`academichub mcp [--transport stdio|http] [--host H] [--port N] [--token-env NAME]`: the store
over the Model Context Protocol (mcp_server.py), for a user's own assistant.

stdio (the default) is for an assistant that starts the command itself: stdout carries only the
protocol. http serves streamable HTTP at http://HOST:PORT/mcp and refuses any request without
`Authorization: Bearer <token>`, the token read from the environment variable named by
--token-env (never a flag: a flag shows in `ps`). Registered by cli.py."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from . import cli as _cli
from .errors import AcademicHubError


@_cli.setting_flags("default_language", "briefing_papers", "embedding_model", "rank_weights")
def mcp_command(
    transport: Annotated[str, typer.Option(help="stdio (an assistant starts this command) or http (streamable HTTP).")] = "stdio",
    host: Annotated[str, typer.Option(help="Address to listen on (http).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (http).")] = 8765,
    token_env: Annotated[str, typer.Option(help="Environment variable holding the bearer token clients must send (http).")] = "",
) -> None:
    """Serve the store over MCP: list_radars, rank_radar, search_papers, get_paper, read_briefing, save_paper."""
    from .mcp_server import serve_http, serve_stdio

    try:
        if transport not in ("stdio", "http"):
            raise AcademicHubError("--transport must be stdio or http")
        token = ""
        if transport == "http":
            if not token_env:
                raise AcademicHubError("--transport http needs --token-env NAME (the variable that holds the token)")
            token = os.environ.get(token_env, "").strip()
            if not token:
                raise AcademicHubError(f"the environment variable {token_env} is empty or not set")
        hub = _cli._user_hub()
    except AcademicHubError as exc:
        _cli._fail(exc)
    try:
        if transport == "stdio":
            serve_stdio(hub)
        else:
            _cli.console.print(f"MCP over streamable HTTP at http://{host}:{port}/mcp (bearer token from ${token_env})")
            serve_http(hub, host=host, port=port, token=token)
    except AcademicHubError as exc:
        _cli._fail(exc)
    finally:
        hub.close()
