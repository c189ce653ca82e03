"""The `academichub` command. Each command takes the settings it uses as flags (`setting_flags`;
docs/settings.md lists them); errors print one line and exit non-zero; long work shows a progress
bar and ends with a one-line summary. Everything is printed through academichub.terminal, which
shows text from outside (titles, paths, URLs, error bodies) as it is, never as Rich markup."""

from __future__ import annotations

import sys
from datetime import date
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import Progress

from .errors import AcademicHubError
from .settings import Settings, load_settings
from .terminal import add_text_row, bold_line, error_line, plain_console, progress_bar, text_table, warning_line

app = typer.Typer(
    name="academichub",
    help="AcademicHub: new papers from preprint servers and journals, one clean record per work.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
papers_app = typer.Typer(help="List, show and search stored papers.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (figures printed with their baselines from the same run).", no_args_is_help=True)
sources_app = typer.Typer(help="Configured upstreams: journals, preprint servers, feeds.", no_args_is_help=True)

console = plain_console(stderr=True)  # messages, warnings, errors, progress
out = plain_console()  # the command's result

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML settings file (ACADEMICHUB_CONFIG).")]


class _State:
    config: Path | None = None
    overrides: dict = {}


_state = _State()


def _flag_type(name: str) -> type:
    """The Python type a setting's flag parses to (its value is then checked by Settings itself)."""
    import types
    import typing

    from pydantic import SecretStr

    annotation = Settings.model_fields[name].annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if annotation is SecretStr:
        raise TypeError(f"{name} is a secret: environment or TOML file only (a flag shows up in `ps`)")
    if typing.get_origin(annotation) is typing.Literal:
        return str
    return annotation


def setting_flags(*names: str, scope: str = "command"):
    """Give a command the flags `--NAME-WITH-DASHES` of these settings (help text and type from
    Settings, so the flag, the environment variable and docs/settings.md cannot drift apart). A flag
    given wins over the environment and the TOML file; scope="global" is for the app callback,
    whose flags go before the command and start a fresh set of overrides."""
    import functools
    import inspect

    def decorate(command):
        flags = []
        for name in names:
            field = Settings.model_fields[name]
            dashed = name.replace("_", "-")
            kind = _flag_type(name)
            declaration = f"--{dashed}/--no-{dashed}" if kind is bool else f"--{dashed}"
            option = typer.Option(declaration, help=f"{field.description} (ACADEMICHUB_{name.upper()})",
                                  show_default=False)
            flags.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                           annotation=Annotated[Optional[kind], option]))
        signature = inspect.signature(command, eval_str=True)

        @functools.wraps(command)
        def with_flags(*args, **kwargs):
            given = {name: value for name in names if (value := kwargs.pop(name, None)) is not None}
            if scope == "global":
                _state.overrides = given
            else:
                _state.overrides = {**_state.overrides, **given}
            return command(*args, **kwargs)

        with_flags.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *flags])
        return with_flags

    return decorate


GLOBAL_SETTINGS = (
    "database_url", "data_dir", "contact_email", "user_agent", "http_timeout", "http_retries", "http_max_backoff",
    "http_request_deadline", "max_response_bytes", "arxiv_min_interval", "user",
)
LLM_SETTINGS = (
    "llm_model", "llm_base_url", "llm_timeout", "llm_retries", "llm_max_backoff", "llm_max_tokens", "llm_temperature",
    "llm_stream", "llm_response_format", "llm_budget_tokens", "llm_price_per_1k_input", "llm_price_per_1k_output",
)


@app.callback()
@setting_flags(*GLOBAL_SETTINGS, scope="global")
def main(config: ConfigOpt = None) -> None:
    _state.config = config


def _settings(**overrides) -> Settings:
    return load_settings(_state.config, **{**_state.overrides, **overrides})


from .cli_brief import brief_command  # noqa: E402 - needs the apps and setting_flags above
from .cli_radar import papers_import_command, radar_app  # noqa: E402 - needs the apps and setting_flags above
from .cli_jobs import jobs_app, worker_command  # noqa: E402 - needs the apps and setting_flags above
from .cli_mcp import mcp_command  # noqa: E402 - needs the apps and setting_flags above
from .cli_delivery import digest_app  # noqa: E402 - needs the apps and setting_flags above
from .cli_export import export_command  # noqa: E402 - needs the apps and setting_flags above
from .cli_users import users_app  # noqa: E402 - needs the apps and setting_flags above

app.command("brief")(brief_command)
app.command("export")(export_command)
papers_app.command("import")(papers_import_command)
app.add_typer(radar_app, name="radar")
app.add_typer(papers_app, name="papers")
app.add_typer(sources_app, name="sources")
app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="bench")
app.command("worker")(worker_command)
app.add_typer(jobs_app, name="jobs")
app.command("mcp")(mcp_command)
app.add_typer(digest_app, name="digest")
app.add_typer(users_app, name="users")


def _fail(exc: BaseException) -> None:
    console.print(error_line(exc))
    raise typer.Exit(1)


def _hub(settings: Settings | None = None, *, engine=None, per_user: bool = False):
    """The application layer for one command (app.Hub): every command that touches the store goes
    through one, built here. It acts as the `user` setting's account (`--user EMAIL`) when one is
    named; `per_user` (a command on one user's radars, lists or channels) refuses a store of several
    accounts when none is, rather than act on nobody (app/accounts.py: act_for_cli)."""
    from .app import accounts
    from .app.hub import Hub

    settings = settings or _settings()
    hub = Hub(settings, engine=engine)
    try:
        accounts.act_for_cli(hub, settings.user, required=per_user)
    except AcademicHubError:
        hub.close()
        raise
    return hub


def _user_hub(settings: Settings | None = None):
    """The hub of a per-user command (see _hub)."""
    return _hub(settings, per_user=True)


def _engine(settings: Settings):
    return _hub(settings).engine


def _progress() -> Progress:
    return progress_bar(console)


# ---------------------------------------------------------------- serve


@app.command()
@setting_flags("host", "port", "public_url", "allowed_hosts", "load_sample", "batch_size", "default_language", "embedding_model", "briefing_papers",
               *LLM_SETTINGS, "queue_url", "queue_name", "scheduler", "worker_concurrency", "job_lease_seconds",
               "timezone", "briefing_hour", "zotero_api_url", "workers")
def serve() -> None:
    """Serve the feed page and the JSON API (migrates the store and loads the sample day if empty).
    `--workers N` web processes (default: the CPU cores); one of them runs the job consumer."""
    import os

    import uvicorn

    try:
        settings = _settings()
        workers = settings.workers or os.cpu_count() or 1
        if workers == 1:
            from .web.app import create_app

            application = create_app(settings)
        else:
            _hub(settings).close()  # migrate once, here, and fail early on a bad store
    except AcademicHubError as exc:
        _fail(exc)
    console.print(f"AcademicHub on http://{settings.host}:{settings.port}/  (store: {_safe_url(settings)}, "
                  f"{workers} process{'es' if workers > 1 else ''})")
    if workers == 1:
        uvicorn.run(application, host=settings.host, port=settings.port, log_level="info")
        return
    # each process builds its app from the environment: the flags given go there (no flag is a secret)
    for name, value in _state.overrides.items():
        os.environ[f"ACADEMICHUB_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    if _state.config is not None:
        os.environ["ACADEMICHUB_CONFIG"] = str(_state.config)
    uvicorn.run("academichub.web.app:app_from_environment", factory=True, workers=workers, host=settings.host,
                port=settings.port, log_level="info")


def _safe_url(settings: Settings) -> str:
    from .store.database import safe_url

    return safe_url(settings.effective_database_url)


# ---------------------------------------------------------------- ingest


@app.command()
@setting_flags("ingest_batch_size", "ingest_worker", "embed_on_ingest", "candidates_on_ingest", "arxiv_rss_url",
               "arxiv_api_url")
def ingest(
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Files or URLs (format is detected).", show_default=False)] = None,
    feed: Annotated[
        Optional[list[str]],
        typer.Option("--feed", help="arXiv RSS archives/categories, e.g. cs.LG or 'cs+math' (repeatable)."),
    ] = None,
    arxiv_id: Annotated[
        Optional[list[str]], typer.Option("--arxiv-id", help="Fetch these arXiv ids through the API (repeatable).")
    ] = None,
) -> None:
    """Ingest arXiv RSS, API Atom, OAI-PMH XML or snapshot JSON lines from files or URLs."""
    from .app.ingest_inputs import feed_targets

    try:
        settings = _settings()
        hub = _hub(settings)
        targets = list(inputs or []) + feed_targets(settings.arxiv_rss_url, list(feed or []))
    except AcademicHubError as exc:
        _fail(exc)
    if not targets and not arxiv_id:
        _fail(AcademicHubError("nothing to ingest: give files, URLs, --feed or --arxiv-id"))

    failures = 0
    with hub.ingest(targets, arxiv_ids=list(arxiv_id or [])) as run, _progress() as progress:  # fork before the bar's thread
        def on_target(target: str, total: int | None, unit: str):
            task = progress.add_task(_short(target), total=total, unit=unit)
            return lambda n: progress.advance(task, n)

        for result in run.results(on_target=on_target):
            if not result.ok:
                failures += 1
                console.print(error_line(result.error))
                continue
            summary, target = result.summary, result.target
            for note in summary.notes:
                console.print(f"{target}: {note}")
            for error in summary.errors[:10]:
                console.print(warning_line(error))
            out.print(f"{target}: {summary.line()}")
            if target in targets and (nothing_stored := _nothing_stored(summary, target)):
                failures += 1
                console.print(error_line(nothing_stored))
        total = run.total
    out.print(f"total: {total.line()}")
    if (total.added or total.updated) and settings.embed_on_ingest:
        _embed_missing(hub, settings)
    if total.added or total.updated:
        _update_candidate_files(hub, settings)
    if failures:
        raise typer.Exit(1)


def _nothing_stored(summary, target: str, *, skipped: int = 0, what: str = "records") -> str | None:
    """The error for an input every record of which failed (or was skipped), else None. Such an
    input failed, it did not succeed with warnings (e.g. 50 MB of JSON lines that are not arXiv
    records): the command must say so and exit non-zero."""
    bad = summary.failed + skipped
    if bad and not (summary.added or summary.updated or summary.unchanged):
        return f"{target}: every one of its {bad} {what} failed; nothing was stored from it"
    return None


def _short(target: str, width: int = 48) -> str:
    return target if len(target) <= width else "…" + target[-(width - 1) :]


# ---------------------------------------------------------------- backfill


@app.command()
@setting_flags("arxiv_oai_url", "arxiv_api_url")
def backfill(
    set_spec: Annotated[Optional[str], typer.Option("--set", help="OAI-PMH set, e.g. physics:quant-ph or cs.")] = None,
    category: Annotated[Optional[str], typer.Option(help="arXiv category for the API route, e.g. cs.LG.")] = None,
    from_date: Annotated[Optional[str], typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    until_date: Annotated[Optional[str], typer.Option("--until", help="Last day, YYYY-MM-DD.")] = None,
    via: Annotated[str, typer.Option(help="oai (bulk, resumable) or api (query by category and submitted date).")] = "oai",
    metadata_prefix: Annotated[str, typer.Option("--prefix", help="OAI metadata format: arXiv or arXivRaw.")] = "arXiv",
    limit: Annotated[Optional[int], typer.Option(help="API route: stop after this many records.")] = None,
) -> None:
    """Harvest a date range: OAI-PMH by set (resumes after interruption) or the query API by category."""
    try:
        start = _parse_day(from_date, "--from")
        end = _parse_day(until_date, "--until")
        if via not in ("oai", "api"):
            raise AcademicHubError(f"--via must be oai or api, not {via!r}")
        if metadata_prefix not in ("arXiv", "arXivRaw"):
            raise AcademicHubError(f"--prefix must be arXiv or arXivRaw, not {metadata_prefix!r}")
        if via == "api" and not category:
            raise AcademicHubError("--via api needs --category")
        hub = _hub(_settings())
        with _progress() as progress:
            task = progress.add_task(f"backfill via {via}", total=None, unit="records")
            summary = hub.backfill(via=via, set_spec=set_spec, category=category, start=start, end=end,
                                   metadata_prefix=metadata_prefix, limit=limit,
                                   progress=lambda n: progress.advance(task, n))
    except AcademicHubError as exc:
        _fail(exc)
    out.print(f"backfill: {summary.line()}")


def _parse_day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise AcademicHubError(f"{flag}: {value!r} is not a date (YYYY-MM-DD)") from exc


# ---------------------------------------------------------------- import-snapshot


@app.command("import-snapshot")
@setting_flags("ingest_batch_size", "ingest_worker", "embed_on_ingest", "candidates_on_ingest")
def import_snapshot(
    file: Annotated[Path, typer.Argument(help="arxiv-metadata-oai-snapshot.json (JSON lines).")],
) -> None:
    """Stream the arXiv metadata snapshot into the store (constant memory, committed per batch)."""
    from .ingest.formats import Format, detect_format

    try:
        settings = _settings()
        if not file.is_file():
            raise AcademicHubError(f"{file}: file not found")
        with open(file, "rb") as handle:
            if detect_format(handle.read(4096), str(file)) is not Format.ARXIV_SNAPSHOT:
                raise AcademicHubError(f"{file}: not a snapshot JSON-lines file (use `academichub ingest` for XML)")
        hub = _hub(settings)
        with hub.ingest([str(file)]) as run, _progress() as progress:  # fork before the bar's thread
            def on_target(target: str, total: int | None, unit: str):
                task = progress.add_task(_short(target), total=total, unit=unit)
                return lambda n: progress.advance(task, n)

            [result] = run.results(on_target=on_target)
        if not result.ok:
            raise result.error if isinstance(result.error, AcademicHubError) else AcademicHubError(result.error)
        summary = result.summary
    except AcademicHubError as exc:
        _fail(exc)
    for error in summary.errors[:10]:
        console.print(warning_line(error))
    out.print(f"{file}: {summary.line()}")
    if nothing_stored := _nothing_stored(summary, str(file)):
        _fail(AcademicHubError(nothing_stored))
    if (summary.added or summary.updated) and settings.embed_on_ingest:
        _embed_missing(hub, settings)
    if summary.added or summary.updated:
        _update_candidate_files(hub, settings)


# ---------------------------------------------------------------- papers


def _feed(filters, *, limit: int):
    from .store.feed import feed_page

    settings = _settings()
    hub = _hub(settings)
    with hub.reading() as conn:
        return feed_page(conn, filters, seed=0, batch=0, size=limit)


def _print_papers(page, fmt: str, *, total: str | None = None) -> None:
    if fmt == "json":
        import json

        out.print_json(json.dumps({"total": page.total, "items": page.items}, default=str, ensure_ascii=False))
        return
    table = text_table(f"{total or page.total} papers", [("#", {"justify": "right"}), "id", "source", "date",
                                                ("title", {"overflow": "fold"})], show_lines=False)
    for i, item in enumerate(page.items, 1):
        label = f"arXiv ({(item.get('primary_category') or '').upper()})"
        add_text_row(table, f"{i:02d}.", item.get("arxiv_id") or item.get("id"), label, item.get("announced_on") or "",
                     item["title"])
    out.print(table)


FormatOpt = Annotated[str, typer.Option("--format", help="table or json.")]


@papers_app.command("list")
def papers_list(
    author: Annotated[Optional[list[str]], typer.Option(help="Author name (repeatable).")] = None,
    category: Annotated[Optional[list[str]], typer.Option(help="arXiv category (repeatable).")] = None,
    day: Annotated[Optional[list[str]], typer.Option("--date", help="Announcement day YYYY-MM-DD (repeatable).")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    fmt: FormatOpt = "table",
) -> None:
    """Newest papers, optionally filtered like the feed's chips."""
    from .store.feed import FeedFilters

    try:
        filters = FeedFilters(
            authors=list(author or []), categories=list(category or []),
            dates=[_parse_day(d, "--date") for d in (day or [])],
        )
        _print_papers(_feed(filters, limit=limit), fmt)
    except AcademicHubError as exc:
        _fail(exc)


@papers_app.command("search")
def papers_search(
    query: Annotated[str, typer.Argument(help="Query over title, abstract and authors (Chinese is read through the glossary).")],
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    sort: Annotated[str, typer.Option(help="relevance (best first) or date (newest first).")] = "relevance",
    fmt: FormatOpt = "table",
) -> None:
    """Ranked search (FTS5 bm25 on SQLite, ts_rank_cd on PostgreSQL; fused with the stored
    embeddings when there are any), as on the web page."""
    from .app.search import describe_notice
    from .store.feed import FeedFilters
    from .store.search import SORTS

    if sort not in SORTS:
        _fail(AcademicHubError(f"--sort must be one of: {', '.join(SORTS)}"))
    try:
        results = _hub(_settings()).search(FeedFilters(q=query), sort=sort, size=max(1, limit))
        for notice in results.notices:
            console.print(describe_notice(notice))
        _print_papers(results.page, fmt, total=results.total_label)
    except AcademicHubError as exc:
        _fail(exc)


@papers_app.command("show")
def papers_show(
    paper: Annotated[str, typer.Argument(help="Store id or arXiv id.")],
    fmt: FormatOpt = "table",
) -> None:
    """One paper with everything the store knows, including what each source said."""
    from .store.feed import get_paper

    try:
        settings = _settings()
        hub = _hub(settings)
        with hub.reading() as conn:
            item = get_paper(conn, paper)
        if item is None:
            raise AcademicHubError(f"no paper {paper!r} in the store")
    except AcademicHubError as exc:
        _fail(exc)
    if fmt == "json":
        import json

        out.print_json(json.dumps(item, default=str, ensure_ascii=False))
        return
    out.print(bold_line(item["title"]))
    label = f"arXiv ({(item.get('primary_category') or '').upper()})"
    out.print(f"{label} · {item.get('announced_on') or ''} · {item.get('arxiv_id') or ''}")
    out.print(", ".join(a["name"] for a in item.get("authors", [])))
    out.print()
    out.print(item.get("abstract") or "")


# ---------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations (the server and every command also do this on open)."""
    from .store.database import current_revision, migrate, make_engine

    try:
        settings = _settings()
        engine = make_engine(settings.effective_database_url)
        before = migrate(engine)
        current = current_revision(engine)
        if before != current:
            out.print(f"migrated from {before or 'none'} to {current}")
        out.print(f"database at revision {current} ({_safe_url(settings)})")
    except AcademicHubError as exc:
        _fail(exc)


@db_app.command("check")
def db_check() -> None:
    """Exit 0 when the database is at the latest revision and matches the declared schema."""
    from .store.database import current_revision, head_revision, make_engine, schema_differences

    try:
        settings = _settings()
        engine = make_engine(settings.effective_database_url)
        current, head = current_revision(engine), head_revision()
        if current != head:
            raise AcademicHubError(f"database at revision {current or 'none'}, latest is {head}: run `academichub db upgrade`")
        diffs = schema_differences(engine)
        if diffs:
            raise AcademicHubError(f"schema differs from the declared one: {diffs}")
    except AcademicHubError as exc:
        _fail(exc)
    out.print(f"database at revision {head}, schema matches ({_safe_url(settings)})")


# ---------------------------------------------------------------- rank


@app.command()
@setting_flags("embedding_model", "embedding_max_tokens", "rank_weights")
def rank(
    name: Annotated[str, typer.Argument(help="Radar name.")],
    since: Annotated[Optional[str], typer.Option(help="Only papers announced or published since this day (YYYY-MM-DD).")] = None,
    all_papers: Annotated[bool, typer.Option("--all", help="Every stored paper (the default).")] = False,
    limit: Annotated[Optional[int], typer.Option(help="How many to print (default: all).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or table.")] = "table",
) -> None:
    """Rank stored papers for a radar; every paper says why it is there."""
    from .errors import NotFound

    try:
        if since and all_papers:
            raise AcademicHubError("give --since or --all, not both")
        settings = _settings()
        hub = _user_hub(settings)
        day = _parse_day(since, "--since")
        try:
            ranked = hub.rank(name, since=day, limit=limit, worth_saying=False)
        except NotFound:
            raise AcademicHubError(f"no radar named {name!r} (create one with `academichub radar create`)") from None
        gap = hub.vector_gap(since=day)
    except AcademicHubError as exc:
        _fail(exc)
    if gap is not None:  # on stderr: the JSON on stdout stays clean
        console.print(f"notice: {gap.missing} of {gap.total} papers have no embedding yet, so this ranking reads only "
                      "their text and the radar's rules: run `academichub embed` to rank them by meaning too")
    if fmt == "json":
        import json

        out.print_json(json.dumps([r.to_dict() for r in ranked], ensure_ascii=False))
        return
    table = text_table(f"{name}: {len(ranked)} papers", [(column, {"overflow": "fold"}) for column in ("#", "score", "title", "why")])
    for i, r in enumerate(ranked, 1):
        add_text_row(table, f"{i:02d}.", f"{r.score:.2f}", r.title, "; ".join(f"{x.kind}: {x.text}" for x in r.reasons))
    out.print(table)


@app.command()
@setting_flags("embedding_model", "embedding_max_tokens")
def embed(
    batch_size: Annotated[Optional[int], typer.Option(
        help="Papers per batch (one transaction each); default 64 on the CPU, 16384 on a GPU.")] = None,
    refresh: Annotated[bool, typer.Option(
        help="Embed every paper again (after changing --embedding-max-tokens), not only those without a vector.")] = False,
) -> None:
    """Embed every stored paper that has no vector yet (needs `pip install 'academichub[embeddings]'`)."""
    try:
        settings = _settings()
        done = _embed_missing(_hub(settings), settings, batch_size=batch_size, required=True, refresh=refresh)
    except AcademicHubError as exc:
        _fail(exc)
    out.print(f"embedded {done} papers")


def _embed_missing(hub, settings: Settings, *, batch_size: int | None = None, required: bool = False,
                   refresh: bool = False) -> int:
    """Vectors for new papers, right after they arrive (Hub.embed_new_papers, with a progress bar);
    without the embeddings extra this is a no-op (ranking then works on text and rules), unless
    asked for explicitly. `refresh` forgets the model's stored vectors first (an interrupted
    refresh is finished by the next `embed`). `hub`: a Hub, or an engine (one is built over it)."""
    from .app.hub import Hub
    from .rank.embeddings import WindowMismatch

    if not isinstance(hub, Hub):
        hub = Hub(settings, engine=hub)
    try:
        with _progress() as progress:
            task = progress.add_task("embedding", total=None, unit="papers")
            return hub.embed_new_papers(
                batch_size=batch_size, refresh=refresh, required=required,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except WindowMismatch as exc:
        if required:
            raise
        console.print(warning_line(f"not embedded: {exc}"))  # what was ingested stays
        return 0


def _update_candidate_files(hub, settings: Settings) -> None:
    """The new papers appended to the ranking's candidate files (written the first time) after an
    import and its embedding (Hub.update_candidate_files), on a line of their own with their time:
    the import's line above is the import alone."""
    import time

    if not settings.candidates_on_ingest:
        return
    start = time.perf_counter()
    try:
        count = hub.update_candidate_files()
    except OSError as exc:  # the first ranking writes them instead
        console.print(warning_line(f"candidate files not written: {exc}"))
        return
    console.print(f"candidate files: {count:,} papers ({time.perf_counter() - start:.1f} s)")


# ---------------------------------------------------------------- sources


def _parse_params(pairs: list[str] | None) -> dict:
    params: dict = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise AcademicHubError(f"--param takes key=value, not {pair!r}")
        params[key.strip()] = value.strip()
    return params


@sources_app.command("add")
@setting_flags("allow_private_urls")
def sources_add(
    kind: Annotated[str, typer.Argument(help="A source kind (`sources kinds` lists them with their params), or venue.")],
    name: Annotated[str, typer.Argument(help="A name for the source; with `venue`, the catalog key or journal name.")],
    param: Annotated[Optional[list[str]], typer.Option("--param", help="key=value, e.g. issn=0028-0836 (repeatable).")] = None,
    label: Annotated[Optional[str], typer.Option(help="What cards show as the source.")] = None,
    interval_minutes: Annotated[int, typer.Option(help="How often `sources run --due` runs it.")] = 1440,
) -> None:
    """Add a source. `sources add venue nature` follows a journal from the shipped catalog."""
    from .ingest.runner import check_params, sources_for_venue
    from .store.sources import add_source, get_source
    from .store.state import utcnow

    try:
        settings = _settings()
        params = _parse_params(param)
        if kind == "venue":
            from .venues import find_venue, load_venues

            venue = find_venue(name, load_venues(settings.data_dir))
            if venue is None:
                raise AcademicHubError(f"no journal {name!r} in the venue catalog")
            planned = sources_for_venue(venue)
            if not planned:
                raise AcademicHubError(f"the catalog has no ISSN or feed for {venue.name}")
        else:
            params = check_params(kind, params, settings)  # the kind's check (a feed URL: not private, not file:)
            planned = [(name, kind, params, label)]
        hub = _hub(settings)
        with hub.writing() as conn:
            for source_name, source_kind, source_params, source_label in planned:
                if get_source(conn, source_name):
                    raise AcademicHubError(f"a source named {source_name!r} exists already")
                add_source(conn, name=source_name, kind=source_kind, params=source_params, label=source_label,
                           now=utcnow(), interval_minutes=interval_minutes)
    except AcademicHubError as exc:
        _fail(exc)
    for source_name, source_kind, source_params, _ in planned:
        out.print(f"added {source_name} ({source_kind} {source_params})")


@sources_app.command("kinds")
def sources_kinds() -> None:
    """The source kinds `sources add` takes, with their parameters (* required)."""
    from .sources.kinds import addable_kinds

    try:
        known = addable_kinds()
    except AcademicHubError as exc:  # a plugin that cannot be loaded
        _fail(exc)
    table = text_table("source kinds", ["kind", "upstream", "param", ("help", {"overflow": "fold"})])
    for kind in known:
        for i, param in enumerate(kind.params or [None]):
            name = (param.name + ("*" if param.required else "")) if param else "-"
            add_text_row(table, kind.name if i == 0 else "", kind.label if i == 0 else "", name, param.help if param else "")
    out.print(table)


@sources_app.command("import-opml")
def sources_import_opml(
    file: Annotated[Path, typer.Argument(help="An OPML file (exported from a feed reader).")],
    interval_minutes: Annotated[int, typer.Option(help="How often `sources run --due` runs them.")] = 1440,
) -> None:
    """Add every feed of an OPML file as a `feed` source (feeds already present are skipped)."""
    import re

    from .sources.opml import check_feed_urls, parse_opml
    from .store.sources import add_source, list_sources
    from .store.state import utcnow

    try:
        if not file.is_file():
            raise AcademicHubError(f"{file}: file not found")
        settings = _settings()
        feeds = check_feed_urls(parse_opml(file.read_bytes(), str(file)), str(file), allow_private=settings.allow_private_urls)
        hub = _hub(settings)
        added = skipped = 0
        with hub.writing() as conn:
            existing = list_sources(conn)
            names = {s["name"] for s in existing}
            urls = {s["params"].get("url") for s in existing if s["kind"] == "feed"}
            for feed in feeds:
                if feed.xml_url in urls:
                    skipped += 1
                    continue
                slug = re.sub(r"[^a-z0-9]+", "-", (feed.title or feed.xml_url).lower()).strip("-")[:60] or "feed"
                name, n = f"feed:{slug}", 2
                while name in names:
                    name, n = f"feed:{slug}-{n}", n + 1
                add_source(conn, name=name, kind="feed", params={"url": feed.xml_url, "venue": feed.title},
                           label=feed.title, now=utcnow(), interval_minutes=interval_minutes)
                names.add(name)
                urls.add(feed.xml_url)
                added += 1
    except AcademicHubError as exc:
        _fail(exc)
    out.print(f"{file}: {added} feeds added, {skipped} already present")


@sources_app.command("remove")
def sources_remove(name: Annotated[str, typer.Argument(help="Source name.")]) -> None:
    """Remove a source (its papers stay)."""
    from .store.sources import remove_source

    try:
        hub = _hub(_settings())
        with hub.writing() as conn:
            if not remove_source(conn, name):
                raise AcademicHubError(f"no such source: {name}")
    except AcademicHubError as exc:
        _fail(exc)
    out.print(f"removed {name}")


@sources_app.command("list")
def sources_list(fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table") -> None:
    """The configured sources with their health."""
    _print_sources(fmt)


@sources_app.command("status")
def sources_status(fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table") -> None:
    """Same as list, with the last error of each failing source."""
    _print_sources(fmt, errors=True)


def _print_sources(fmt: str, *, errors: bool = False) -> None:
    from .store.sources import list_sources

    try:
        hub = _hub(_settings())
        with hub.reading() as conn:
            rows = list_sources(conn)
    except AcademicHubError as exc:
        _fail(exc)
    if fmt == "json":
        import json

        out.print_json(json.dumps(rows, default=str, ensure_ascii=False))
        return
    columns: list = ["name", "kind", "params", "last success", "last run: added/updated", "failures"]
    if errors:
        columns.append(("last error", {"overflow": "fold"}))
    table = text_table(f"{len(rows)} sources", columns)
    for r in rows:
        cells = [
            r["name"] + ("" if r["enabled"] else " (off)"), r["kind"], ", ".join(f"{k}={v}" for k, v in r["params"].items()),
            str(r["last_success_at"] or "never")[:16], f"{r['last_added']}/{r['last_updated']}",
            str(r["consecutive_failures"]) + (f" since {str(r['failing_since'])[:16]}" if r["failing_since"] else ""),
        ]
        if errors:
            cells.append(r["last_error"] or "")
        add_text_row(table, *cells)
    out.print(table)


@sources_app.command("run")
@setting_flags("crossref_url", "pubmed_url", "biorxiv_url", "openalex_url", "semanticscholar_url", "arxiv_rss_url",
               "source_lookback_days", "feed_max_bytes", "allow_private_urls", "embed_on_ingest", "source_run_deadline")
def sources_run(
    names: Annotated[Optional[list[str]], typer.Argument(help="Sources to run (default: all enabled).")] = None,
    due: Annotated[bool, typer.Option("--due", help="Only those whose interval has passed.")] = False,
) -> None:
    """Fetch and merge new papers from the sources; a failing source never stops the others."""
    try:
        settings = _settings()
        hub = _hub(settings)
        with _progress() as progress:
            task = progress.add_task("sources", total=None, unit="records")
            results = hub.run_sources(
                list(names or []), due_only=due,
                on_start=lambda row: progress.update(task, description=row["name"]),
                progress=lambda n: progress.advance(task, n),
            )
    except AcademicHubError as exc:
        _fail(exc)
    failed = 0
    for result in results:
        if result.ok:
            out.print(f"{result.name}: {result.summary.line()}")
        else:
            failed += 1
            console.print(error_line(f"{result.name}: {result.error}"))
    out.print(f"sources: {len(results) - failed} ok, {failed} failed")
    if any(r.summary.added or r.summary.updated for r in results) and settings.embed_on_ingest:
        _embed_missing(hub, settings)
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------- bench


@bench_app.command("ingest")
def bench_ingest(
    shared_data: Annotated[
        Optional[Path], typer.Option(help="Folder with the recorded data (default ../shared/data or ACADEMICHUB_SHARED_DATA).")
    ] = None,
    repeat: Annotated[int, typer.Option(help="Runs per figure (best is reported; this machine is noisy).")] = 5,
) -> None:
    """RSS parse+store vs feedparser, OAI and snapshot bulk import rates, peak memory."""
    from .bench import run_ingest_bench

    try:
        run_ingest_bench(shared_data, repeat=repeat, console=out)
    except AcademicHubError as exc:
        _fail(exc)


@bench_app.command("merge")
def bench_merge(
    shared_data: Annotated[Optional[Path], typer.Option(help="Folder with the recorded data.")] = None,
    sizes: Annotated[str, typer.Option(help="Store sizes, comma-separated.")] = "10000,100000",
) -> None:
    """Merge cost per record at 10k and 100k stored papers (indexed look-ups keep it flat)."""
    from .bench import run_merge_bench

    try:
        run_merge_bench(shared_data, sizes=tuple(int(s) for s in sizes.split(",")), console=out)
    except (AcademicHubError, ValueError) as exc:
        _fail(exc)


@bench_app.command("rank")
def bench_rank(
    shared_data: Annotated[Optional[Path], typer.Option(help="Folder with the recorded data.")] = None,
    candidates: Annotated[int, typer.Option(help="How many candidates.")] = 50_000,
    runs: Annotated[int, typer.Option(help="Rankings timed.")] = 21,
    day: Annotated[int, typer.Option(help="Papers of the new day added to the nearest-neighbour index.")] = 2_000,
    exact: Annotated[bool, typer.Option(help="Also the exact graph (every pair) as the baseline: minutes at 50,000.")] = True,
    work_dir: Annotated[Optional[Path], typer.Option(help="Keep the nearest-neighbour index here and reuse it in the next run of the same size.")] = None,
    two_stage_min: Annotated[Optional[int], typer.Option(help="Rank in two stages above this many candidates (off by default), and compare the top 100 with the full ranking's.")] = None,
    day_runs: Annotated[int, typer.Option(help="Times another day is added to copies of the index, each way (into the delta; the whole index written again).")] = 3,
) -> None:
    """Time to rank N candidates for one radar once embeddings exist (min / median / max), and the
    nearest-neighbour index behind it: built, a new day added, its graph against the exact one."""
    from .bench import run_rank_bench

    try:
        run_rank_bench(shared_data, n=candidates, runs=runs, day=day, exact_limit=50_000 if exact else 0,
                       work_dir=work_dir, two_stage_min=two_stage_min, day_runs=day_runs, console=out)
    except AcademicHubError as exc:
        _fail(exc)


@bench_app.command("briefing")
def bench_briefing_command(
    rounds: Annotated[int, typer.Option(help="Runs per figure (the median is reported).")] = 5,
    vectors: Annotated[str, typer.Option(
        help="auto: the packaged embedding model when the embeddings extra is installed, else TF-IDF/LSA; lsa: always TF-IDF/LSA."
    )] = "auto",
) -> None:
    """Time to build the analysis and the extractive briefing for 40 papers; tokens per LLM briefing."""
    from .bench import run_briefing_bench

    try:
        run_briefing_bench(rounds=rounds, vectors=vectors, console=out)
    except AcademicHubError as exc:
        _fail(exc)


@bench_app.command("daily")
def bench_daily_command(
    papers: Annotated[int, typer.Option(help="Papers in the simulated day (the recorded day's 1,504, replicated).")] = 2000,
    radars: Annotated[int, typer.Option(help="Radars on the embedded default (SQLite, serve's queue).")] = 100,
    scale_radars: Annotated[int, typer.Option(help="Radars for the worker-process runs.")] = 1000,
    processes: Annotated[Optional[list[int]], typer.Option("--processes", help="Worker processes per run (repeat).")] = None,
    pg_url: Annotated[Optional[str], typer.Option(
        help="A PostgreSQL server URL: the worker runs use fresh databases on it (with --redis-url).")] = None,
    redis_url: Annotated[Optional[str], typer.Option(help="A Redis URL for the worker runs' queue.")] = None,
) -> None:
    """One simulated day through the job system, end to end without the embedding: the embedded default beside
    the same use cases called inline; then many radars on 1, 2 and 4 `academichub worker` processes."""
    from .bench_daily import run_daily_bench

    try:
        run_daily_bench(None, papers=papers, radars=radars, scale_radars=scale_radars,
                        processes=tuple(processes or (1, 2, 4)), database_url=pg_url, queue_url=redis_url,
                        console=out)
    except AcademicHubError as exc:
        _fail(exc)


@bench_app.command("sources")
def bench_sources(
    shared_data: Annotated[Optional[Path], typer.Option(help="Folder with the recorded data.")] = None,
    repeat: Annotated[int, typer.Option(help="Runs per figure (best is reported).")] = 3,
    merge: Annotated[bool, typer.Option("--merge/--no-merge", help="Also the merge cost at 10k and 100k stored papers.")] = True,
) -> None:
    """Parse+store rates per upstream on the recorded files, then the merge cost as the store grows."""
    from .bench import run_merge_bench, run_sources_bench

    try:
        run_sources_bench(shared_data, repeat=repeat, console=out)
        if merge:
            run_merge_bench(shared_data, console=out)
    except AcademicHubError as exc:
        _fail(exc)


@contextmanager
def _serve_web(engine, *, lifespan: bool = True):
    """The web app over `engine`, asked in process (a benchmark of the page's own code path).
    Without `lifespan`, no start-up work runs beside the requests (the candidate sets' warm-up,
    the job consumer): what bench scale's search figures need on stores of a million papers."""
    import warnings

    from .web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    import tempfile

    with tempfile.TemporaryDirectory(prefix="academichub-bench-web-") as data_dir:  # its own job queue
        settings = Settings(load_sample=False, default_language="en", batch_size=20, scheduler=False,
                            embed_on_ingest=False, data_dir=Path(data_dir))
        application = create_app(settings, engine=engine)

        # a loopback client of a loopback host: the single-user setup's local user, no login
        def get_from(client):
            def get(url, params):
                response = client.get(url, params=params)
                return response.status_code, response.text

            return get

        if not lifespan:
            yield get_from(TestClient(application, base_url="http://127.0.0.1", client=("127.0.0.1", 50000)))
            return
        with TestClient(application, base_url="http://127.0.0.1", client=("127.0.0.1", 50000)) as client:
            yield get_from(client)


@bench_app.command("search")
def bench_search_command(
    shared_data: Annotated[Optional[Path], typer.Option(help="Folder with the recorded data.")] = None,
    sizes: Annotated[str, typer.Option(help="Store sizes, comma-separated.")] = "15000,150000",
    rounds: Annotated[int, typer.Option(help="Runs per query and size (p50, min and max are reported).")] = 15,
) -> None:
    """Search latency (page and API, named queries) at 15k and 150k papers, and its growth (goal ≤ ×2)."""
    from .bench_search import run_search_bench

    try:
        run_search_bench(shared_data, serve=_serve_web, sizes=tuple(int(s) for s in sizes.split(",")), rounds=rounds,
                         console=out)
    except (AcademicHubError, ValueError) as exc:
        _fail(exc)


@bench_app.command("generate")
def bench_generate_command(
    papers: Annotated[int, typer.Option(help="How many synthetic papers (e.g. 150000 or 1000000).")],
    output: Annotated[Path, typer.Option(help="Folder for the OAI-PMH files (synthetic-NNNN.xml, 50,000 records each).")],
    shared_data: Annotated[Optional[Path], typer.Option(help="Folder with the recorded data.")] = None,
) -> None:
    """Replicate the recorded arXiv OAI and RSS records into N synthetic papers (new ids 9NNN.IIIII, DOIs
    10.5555/academichub-synthetic.*, titles marked "synthetic copy N"), as OAI-PMH files for `academichub ingest`."""
    from .bench import default_shared_data
    from .bench_scale import generate

    try:
        made = generate(shared_data or default_shared_data(), papers, output)
    except AcademicHubError as exc:
        _fail(exc)
    out.print(f"{made.papers:,} synthetic papers from {made.recorded:,} recorded records in {len(made.files)} files "
              f"under {output} ({made.seconds:.1f} s)")


@bench_app.command("web")
def bench_web_command(
    papers: Annotated[int, typer.Option(help="Papers in the store (synthetic copies of the recorded records).")] = 15_000,
    connections: Annotated[int, typer.Option(help="Open connections of the load generator.")] = 32,
    duration: Annotated[float, typer.Option(help="Seconds of load per route.")] = 15.0,
    store_dir: Annotated[Optional[Path], typer.Option(
        help="Build the store here and reuse it on the next run (default: a temporary folder).")] = None,
    shared_data: Annotated[Optional[Path], typer.Option(help="Folder with the recorded data.")] = None,
) -> None:
    """A real `academichub serve` process under wrk (or an httpx load generator in another process): req/s, p50,
    p99 and errors per route, next to a bare FastAPI page of 20 static cards in the same run."""
    from .bench_scale import run_web_bench

    try:
        run_web_bench(shared_data, papers=papers, connections=connections, duration=duration, data_dir=store_dir,
                      console=out)
    except AcademicHubError as exc:
        _fail(exc)


@bench_app.command("scale")
def bench_scale_command(
    sizes: Annotated[str, typer.Option(help="Synthetic store sizes, comma-separated.")] = "15000,150000,1000000",
    pg_url: Annotated[Optional[str], typer.Option(
        help="A PostgreSQL server URL: databases academichub_scale_* are made on it and dropped afterwards.")] = None,
    sqlite: Annotated[bool, typer.Option("--sqlite/--no-sqlite", help="Import into SQLite too.")] = True,
    rounds: Annotated[int, typer.Option(help="Runs per search query and size (p50 is reported).")] = 5,
    work_dir: Annotated[Optional[Path], typer.Option(help="Folder for the generated files and stores (default: the temp dir).")] = None,
    shared_data: Annotated[Optional[Path], typer.Option(help="Folder with the recorded data.")] = None,
) -> None:
    """Import the synthetic sets (15k, 150k, 1M) into SQLite and PostgreSQL through `academichub ingest`: rec/s,
    peak RSS and time to searchable next to the bare lxml + sqlite3 + FTS5 loader, then one-client search latency."""
    from .bench_scale import run_scale_bench

    stores = (("sqlite",) if sqlite else ()) + (("postgresql",) if pg_url else ())
    try:
        from functools import partial

        run_scale_bench(shared_data, serve=partial(_serve_web, lifespan=False), sizes=tuple(int(s) for s in sizes.split(",")), pg_url=pg_url,
                        stores=stores, rounds=rounds, work_dir=work_dir, console=out)
    except (AcademicHubError, ValueError) as exc:
        _fail(exc)


def run() -> None:  # pragma: no cover - console entry convenience
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
