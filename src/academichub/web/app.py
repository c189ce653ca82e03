"""The web app: the feed page and paper pages (server-rendered, work without JavaScript), a small
JSON API, and /healthz. Titles, abstracts and names are untrusted upstream text: templates
autoescape everything, links are http(s) only, and a strict Content-Security-Policy forbids
inline script."""


import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import fastapi_offline
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import AfterValidator, BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..app.hub import Hub
from ..app.loop_status import loop_status
from ..errors import AcademicHubError
from ..settings import Settings, load_settings
from ..store.feed import (
    SEED_MAX,
    FeedFilters,
    FeedPage,
    available_dates,
    category_facets,
    feed_page,
    feed_rows,
    get_paper,
    feed_notices,
    latest_announcement,
    new_seed,
    store_stats,
)
from ..store.papers import count_papers
from ..store.state import as_utc
from . import http_cache, i18n, identity, mathtext
from .text_links import linkify

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

MAX_VALUES = 20  # per filter kind
MAX_AUTHOR_LEN = 200
MAX_CATEGORY_LEN = 64
MAX_QUERY_LEN = 300
MAX_BATCH = 1_000_000
MAX_SIZE = 100
# A day parameter is a string (so a bad one gets our own message), published as a date.
DATE_PARAMETER = {"format": "date"}
LONG_ABSTRACT = 320  # characters; longer abstracts get the "more" toggle

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# /docs and /redoc: Swagger UI and ReDoc from the fastapi-offline package (served at DOCS_ASSETS),
# started by our own script files, so the pages work offline with no inline script. Both libraries
# set inline styles and ReDoc runs its search in a blob: worker; nothing else is loosened.
_DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_DOCS_PATHS = ("/docs", "/redoc")
DOCS_ASSETS = "/static/api-docs"


class SecurityHeaders:
    """Pure ASGI middleware (streams untouched): security headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = _DOCS_CSP if path.startswith(_DOCS_PATHS) else _CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in (
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- parameters -----------------------------------------------------------------------------------


@dataclass(slots=True)
class FeedQuery:
    filters: FeedFilters
    batch: int
    seed: int | None
    size: int
    size_given: bool = False
    sort: str | None = None  # a search's order: "relevance" (the default) or "date"


def invalid(field_name: str, message: i18n.Said | AcademicHubError | str, value: Any, *,
            location: str = "query") -> RequestValidationError:
    """A bad parameter, answered like FastAPI's own (422, the published HTTPValidationError shape).
    A Said (or a translatable error) is shown in the page's language on HTML pages; `msg` is English."""
    said = message if isinstance(message, i18n.Said) else None
    if isinstance(message, AcademicHubError) and message.template:
        said = i18n.Said(message.template, message.params)
    text = said.template.format(**said.params) if said else str(message)
    error = {"type": "value_error", "loc": (location, field_name), "msg": text, "input": value}
    if said:
        error["said"] = said
    return RequestValidationError([error])


def parse_day(value: str, field_name: str = "date") -> date:
    value = value.strip()
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        raise invalid(field_name, i18n.said("{name} must be YYYY-MM-DD", name=field_name), value)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(field_name, i18n.said("not a valid calendar date (YYYY-MM-DD)"), value) from None


NUL = "\x00"


async def refuse_nul(request: Request) -> None:
    """No path, query or form value may hold NUL (U+0000): PostgreSQL text cannot, so the query
    it reached failed there (a 500 on PostgreSQL only), and no real value has one. Every route's."""
    values = [("path", name, str(value)) for name, value in request.path_params.items()]
    values += [("query", name, value) for name, value in request.query_params.multi_items()]
    if request.method == "POST" and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        values += [("body", name, value) for name, value in (await request.form()).multi_items() if isinstance(value, str)]
    for location, name, value in values:
        if NUL in name or NUL in value:
            raise invalid(name.replace(NUL, "\\0"), i18n.said("a NUL character is not allowed"), value[:80], location=location)


NO_NUL_PATTERN = "^[^\\u0000]*$"


def publish_no_nul(spec: dict) -> dict:
    """refuse_nul's rule in the OpenAPI document: every string a request carries (parameters and
    request bodies) gets NO_NUL_PATTERN unless it has a pattern of its own, so a request valid by
    the schema is one the API accepts."""

    def patch(schema: dict) -> None:
        if "$ref" in schema:
            patch(spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]])
        if schema.get("type") == "string" and "pattern" not in schema:
            schema["pattern"] = NO_NUL_PATTERN
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in schema.get(key, []):
                patch(branch)
        for child in [schema.get("items"), *schema.get("properties", {}).values()]:
            if isinstance(child, dict):
                patch(child)

    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                patch(parameter.get("schema", {}))
            for content in operation.get("requestBody", {}).get("content", {}).values():
                patch(content.get("schema", {}))
    return spec


def publish_gate_answers(spec: dict) -> dict:
    """The answers every JSON route can give before its own code runs, in each operation's
    `responses`: 401 from the login gate (no viewer, or a bad API token) on every route but the
    public ones; 403 on a state-changing one (a cross-site request, a read-only token, a session's
    missing CSRF token); 400 where a body is read (not JSON). A client reads them off the schema,
    and a fuzzer holds the API to them."""
    for path, operations in spec.get("paths", {}).items():
        public = path in identity.PUBLIC_PATHS or path.startswith(identity.PUBLIC_PREFIXES)
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if not public:
                responses.setdefault("401", {"description": "Login required, or the API token is not valid"})
            if method.upper() not in identity.SAFE_METHODS:
                responses.setdefault("403", {"description": "A cross-site request, a read-only API token, "
                                                            "or a session's request without its CSRF token"})
            if "requestBody" in operation:
                responses.setdefault("400", {"description": "The body is not JSON"})
    return spec


def no_nul(value: Any) -> Any:
    """A pydantic validator of request bodies' strings: refuse_nul's rule."""
    if isinstance(value, str) and NUL in value:
        raise ValueError("a NUL character is not allowed")
    return value


def _listed(longest: int, **item) -> dict:
    """The published schema of a repeatable filter: the limits feed_query() enforces itself (with
    its own messages), so a request valid by the schema is one the API accepts."""
    return {"maxItems": MAX_VALUES, "items": {"type": "string", "maxLength": longest, **item}}


def _feed_query_dependency(default_size: int):
    def feed_query(
        author: Annotated[
            list[str], Query(description="Author display name (repeatable); matches the folded full name.",
                             json_schema_extra=_listed(MAX_AUTHOR_LEN))
        ] = [],  # noqa: B006 - FastAPI copies defaults
        category: Annotated[list[str], Query(description="arXiv category such as cs.LG (repeatable).",
                                             json_schema_extra=_listed(MAX_CATEGORY_LEN))] = [],  # noqa: B006
        date_: Annotated[list[str], Query(alias="date", description="Announcement day YYYY-MM-DD (repeatable).",
                                          json_schema_extra=_listed(10, **DATE_PARAMETER))] = [],  # noqa: B006
        q: Annotated[str | None, Query(json_schema_extra={"maxLength": MAX_QUERY_LEN},
                                       description="Full-text search over title, abstract and authors.")] = None,
        batch: Annotated[int, Query(ge=0, le=MAX_BATCH, description="0-based batch of the seeded shuffle.")] = 0,
        seed: Annotated[int | None, Query(ge=0, le=SEED_MAX, description="Shuffle seed; random when absent.")] = None,
        size: Annotated[int | None, Query(ge=1, le=MAX_SIZE, description="Papers per batch.")] = None,
        sort: Annotated[Literal["relevance", "date"] | None, Query(
            description="With `q`: best match first (relevance, the default) or newest first (date).")] = None,
    ) -> FeedQuery:
        for name, values, longest in (
            ("author", author, MAX_AUTHOR_LEN),
            ("category", category, MAX_CATEGORY_LEN),
            ("date", date_, 10),
        ):
            if len(values) > MAX_VALUES:
                raise invalid(name, i18n.said("at most {limit} {name} values", limit=MAX_VALUES, name=name), len(values))
            for value in values:
                if len(value) > longest and name != "date":
                    raise invalid(name, i18n.said("longer than {limit} characters", limit=longest), value[:50])
        if q is not None and len(q) > MAX_QUERY_LEN:
            raise invalid("q", i18n.said("search text longer than {limit} characters", limit=MAX_QUERY_LEN), q[:50])
        days = [parse_day(v) for v in date_ if v.strip()]
        filters = FeedFilters(authors=author, categories=category, dates=days, q=q).normalized()
        return FeedQuery(
            filters=filters, batch=batch, seed=seed, size=size or default_size, size_given=size is not None, sort=sort
        )

    return feed_query


class FeedLinks:
    """URLs for the chips, the cards and the "another batch" button: plain links carrying every
    other parameter, so the page works without JavaScript."""

    def __init__(self, path: str, filters: FeedFilters, *, seed: int, size: int | None, page: FeedPage | None = None,
                 here: str | None = None, sort: str | None = None):
        self.path = path
        self.sort = sort  # a search's order, kept while the query is
        self.filters = filters
        self.seed = seed
        self.size = size  # only when the request named one
        self.page = page
        self.here = here  # the page these links are on, when it is not this feed (the briefing page)
        self._next: str | None = None

    def _url(self, filters: FeedFilters, *, batch: int = 0, seed: int | None = None, path: str | None = None) -> str:
        params: list[tuple[str, str]] = [("author", a) for a in filters.authors]
        params += [("category", c) for c in filters.categories]
        params += [("date", d.isoformat()) for d in filters.dates]
        if filters.q:
            params.append(("q", filters.q))
            if self.sort:
                params.append(("sort", self.sort))
        if batch:
            params.append(("batch", str(batch)))
        if seed is not None:
            params.append(("seed", str(seed)))
        if self.size is not None:
            params.append(("size", str(self.size)))
        query = urlencode(params)
        return f"{path or self.path}?{query}" if query else (path or self.path)

    def _changed(self, kind: str, value: Any, *, add: bool) -> FeedFilters:
        f = self.filters
        lists = {"author": list(f.authors), "category": list(f.categories), "date": list(f.dates)}
        q = f.q
        if kind == "q":
            q = value if add else None
        else:
            if kind == "date" and isinstance(value, str):
                value = date.fromisoformat(value)
            values = lists[kind]
            if add and value not in values:
                values.append(value)
            elif not add:
                values = [v for v in values if v != value]
            lists[kind] = values
        return FeedFilters(authors=lists["author"], categories=lists["category"], dates=lists["date"], q=q)

    def add(self, kind: str, value: Any) -> str:
        return self._url(self._changed(kind, value, add=True), seed=self.seed)

    def remove(self, kind: str, value: Any = None) -> str:
        return self._url(self._changed(kind, value, add=False), seed=self.seed)

    def clear(self) -> str:
        return self._url(FeedFilters())

    def restart(self) -> str:
        return self._url(self.filters, seed=new_seed())

    def next(self) -> str:
        """The next batch of this shuffle; after the last one, batch 0 of a new shuffle (the same
        new seed however often a template asks)."""
        assert self.page is not None
        if self._next is None:
            nxt = self.page.next_batch
            if nxt is None:
                self._next = self._url(self.filters, seed=new_seed())
            else:
                self._next = self._url(self.filters, batch=nxt, seed=self.seed)
        return self._next

    def current(self) -> str:
        """This very page: the same filters, shuffle and batch (where a paper page leads back to)."""
        if self.here is not None:
            return self.here
        return self._url(self.filters, batch=self.page.batch if self.page else 0, seed=self.seed)

    def paper(self, paper_id: int) -> str:
        """A paper's page, remembering this one for its back link (`from`, a local path)."""
        return f"/papers/{paper_id}?{urlencode([('from', self.current())])}"

    def api(self) -> str:
        batch = self.page.batch if self.page else 0
        return self._url(self.filters, batch=batch, seed=self.seed, path="/api/papers")


def _lang_url(request: Request, lang: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", lang))
    return f"{request.url.path}?{urlencode(params)}"


# -- API models -----------------------------------------------------------------------------------

# The store keeps datetimes naive in UTC; the API's date-time values carry the zone.
UTCDateTime = Annotated[datetime, AfterValidator(as_utc)]


class AuthorOut(BaseModel):
    name: str
    name_norm: str
    affiliation: str | None = None
    orcid: str | None = None


class LinksOut(BaseModel):
    abs: str | None = None
    pdf: str | None = None
    doi: str | None = None


class HighlightOut(BaseModel):
    title: str = Field(description="The title as HTML: escaped, the query's words in <mark>.")
    abstract: str = Field(description="A short stretch of the abstract as HTML: escaped, the words in <mark>.")


class SearchNoticeOut(BaseModel):
    kind: str = Field(description="translated | not_understood | no_terms | no_match")
    words: list[str]


class PaperOut(BaseModel):
    id: int
    arxiv_id: str | None = None
    arxiv_version: int | None = None
    source: str | None = None
    title: str
    abstract: str
    authors: list[AuthorOut]
    categories: list[str]
    primary_category: str | None = None
    announced_on: date | None = None
    submitted_at: UTCDateTime | None = None
    updated_at: UTCDateTime | None = None
    published_on: date | None = None
    doi: str | None = None
    journal_ref: str | None = None
    venue: str | None = None
    comments: str | None = None
    license: str | None = None
    versions: list[dict] = Field(default_factory=list)
    links: LinksOut
    highlight: HighlightOut | None = Field(default=None, description="With `q`: the matching words marked.")


class FiltersOut(BaseModel):
    authors: list[str]
    categories: list[str]
    dates: list[date]
    q: str | None = None


class FeedOut(BaseModel):
    items: list[PaperOut]
    total: int = Field(description="Papers matching the filters.")
    batch: int
    seed: int
    size: int
    batches: int = Field(description="How many batches the matching papers fill.")
    next_batch: str = Field(description="URL of the next batch; after the last one, batch 0 of a new shuffle.")
    filters: FiltersOut
    sort: str | None = Field(default=None, description="With `q`: relevance or date.")
    capped: bool = Field(default=False, description="With `q`: more papers matched than the ranked set (total) holds.")
    semantic: bool = Field(default=False, description="With `q`: the stored embeddings took part in the ranking.")
    notices: list[SearchNoticeOut] = Field(default_factory=list, description="With `q`: how the query was read.")


class ReasonOut(BaseModel):
    kind: str = Field(description="author | keyword | seed | liked | category | venue | statement")
    text: str


class RankedPaperOut(PaperOut):
    score: float
    reasons: list[ReasonOut]


class RadarFeedOut(BaseModel):
    """/api/papers with `radar`: the radar's ranking, never repeating a paper within a day."""

    items: list[RankedPaperOut]
    total: int = Field(description="Papers the radar ranks under these filters.")
    batch: int | None = Field(description="The batch shown today; null when nothing was left to show, or (GET) when the batch is not recorded yet: POST records it.")
    seed: None = None
    size: int
    batches: None = None
    next_batch: str | None = Field(description="URL of a new batch; null when every paper was shown today.")
    filters: FiltersOut
    radar: str
    remaining: int = Field(description="Ranked papers not shown today besides these.")
    all_shown: bool
    window: date | None = Field(description="The first day of the papers ranked.")


class DayOut(BaseModel):
    date: date
    papers: int


class StatsOut(BaseModel):
    papers: int
    authors: int = Field(description="Distinct folded author names.")
    categories: int
    days: int = Field(description="Distinct announcement days.")
    latest_announcement: date | None = None
    recent_days: list[DayOut]


# -- the app --------------------------------------------------------------------------------------


def api_docs_assets() -> Path:
    """The folder of Swagger UI's and ReDoc's files that the fastapi-offline package ships."""
    return Path(fastapi_offline.__file__).parent / "static"


def _make_env(translations, lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations, newstyle=True)
    env.filters["day"] = lambda value: i18n.format_day(value, lang)
    env.filters["moment"] = i18n.format_moment
    env.filters["linkify"] = linkify
    env.filters["say"] = lambda value: i18n.say(value, translations)
    env.filters["tex"] = http_cache.cached_math  # rendered math kept per text (web/http_cache.py)
    env.filters["tex_links"] = lambda value: http_cache.cached_math(value, True)
    env.filters["text_lang"] = lambda text: i18n.text_lang_attribute(text, lang)
    from .citation import citation

    env.globals["cite"] = citation
    env.globals.update(
        lang=lang,
        html_lang=i18n.HTML_LANG[lang],
        language_names=i18n.LANGUAGE_NAMES,
        version=__version__,
        long_abstract=LONG_ABSTRACT,
        me=None,  # the viewer and its form token: render() passes both (None: a page rendered outside a request)
        csrf_token=None,
    )
    return env


def app_from_environment() -> FastAPI:
    """The app of the settings in the environment: the factory each process of `serve --workers N`
    imports (uvicorn needs an import string to start several; `serve` puts its flags in the
    environment first)."""
    return create_app(load_settings())


def create_app(settings: Settings | None = None, *, engine=None, hub: Hub | None = None) -> FastAPI:
    """The app over one Hub (`app.state.hub`): the one given (shared with the job system or a
    test), else one built from the settings (and `engine`, when given)."""
    owns_hub = hub is None
    if hub is None:
        hub = Hub(settings or load_settings(), engine=engine)
    settings = hub.settings
    engine = hub.engine
    translations = i18n.load_all()
    envs = {lang: _make_env(translations[lang], lang) for lang in i18n.LANGUAGES}
    default_language = i18n.normalize_language(settings.default_language) or i18n.FALLBACK
    feed_query = _feed_query_dependency(max(1, min(settings.batch_size, MAX_SIZE)))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if settings.load_sample:
            try:
                summary = await run_in_threadpool(hub.load_sample_if_empty)
                if summary is not None:
                    log.info("loaded the bundled sample day: %s", summary.line())
            except Exception:  # the server is still useful without the sample
                log.exception("loading the bundled sample failed")
        from ..workers.server import leads, start_in_server, stop_in_server

        # with `serve --workers N` one process leads: it consumes jobs, embeds and warms up
        job_consumer = await run_in_threadpool(start_in_server, settings, engine, _app.state.hub)
        if settings.embed_on_ingest and leads(job_consumer):
            # Vectors for papers that have none (the sample, anything ingested while the server was
            # down), in the background: the feed is served meanwhile, ranked on text and rules.
            hub.embed_in_background()
        warm_up = hub.warm_up_in_background() if leads(job_consumer) else None
        if warm_up is not None:  # then the statement and query embedder (naming the model no longer loads it)
            hub.embeddings.load_later(engine, after=warm_up.thread)
        yield
        await run_in_threadpool(stop_in_server, job_consumer)
        if warm_up is not None:
            await run_in_threadpool(warm_up.stop)  # it reads the store: done before the store is closed
        if owns_hub:
            hub.close()

    app = FastAPI(
        title="AcademicHub",
        version=__version__,
        description="A self-hosted research radar: new papers collected daily. JSON API behind the feed page.",
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul), Depends(identity.require_csrf)],
        docs_url=None,  # our own pages below: FastAPI's load from a CDN with an inline script
        redoc_url=None,
    )
    app.state.settings = settings
    default_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = publish_gate_answers(publish_no_nul(default_openapi()))
        return app.openapi_schema

    app.openapi = openapi
    app.state.engine = engine
    app.state.hub = hub  # the use cases; tests may swap in one with their own clock
    setup_token = identity.setup_token_for(hub, settings)
    from .page_cache import PageCache

    kept = hub.per_state  # per store state: the feed's rows, facets, sidebar, loop line

    app.add_middleware(PageCache, hub=hub, state=app.state)  # inside the gate: kept pages are per viewer (web/page_cache.py)
    app.add_middleware(identity.ViewerGate, hub=hub, settings=settings, setup_token=setup_token)  # inside SecurityHeaders
    app.add_middleware(SecurityHeaders)
    app.add_middleware(http_cache.ETagMiddleware)  # ETag + 304 on pages and JSON (web/http_cache.py)
    app.mount(DOCS_ASSETS, StaticFiles(directory=api_docs_assets()), name="api-docs")  # before /static
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def language_of(request: Request) -> str:
        """?lang= first, then the signed-in account's choice (any browser it signs in from), the
        cookie, the browser's Accept-Language."""
        chosen = identity.viewer(request).locale
        return i18n.negotiate(
            query=request.query_params.get("lang"),
            cookie=i18n.normalize_language(chosen) or request.cookies.get(i18n.COOKIE),
            accept_language=request.headers.get("accept-language"),
            default=default_language,
        )

    def render(request: Request, template: str, context: dict, *, status_code: int = 200) -> HTMLResponse:
        lang = language_of(request)
        env = envs[lang]
        if template == "feed.html" and "store_loop" not in context:  # the radar view's feed shows the loop too
            context = {**context, "store_loop": store_loop(request, None)}
        loop = context.get("store_loop")
        if loop is not None and loop.next_fetch_at is not None and loop.next_fetch_at > loop.now:
            request.state.page_valid_until = loop.next_fetch_at  # "next fetch at" turns "due now" then (page_cache)
        if "saved_ids" not in context:  # the ★ state of the cards (and the paper) on the page
            context = {**context, "saved_ids": _saved_on_page(request, context)}
        me = identity.viewer(request)
        body = env.get_template(template).render(
            request_path=request.url.path,
            me=me,
            csrf_token=identity.csrf_token_of(request),
            request_full_path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            lang_urls={code: _lang_url(request, code) for code in i18n.LANGUAGES},
            **context,
        )
        response = HTMLResponse(body, status_code=status_code)
        response.headers["Vary"] = "Accept-Language, Cookie"
        response.headers["Cache-Control"] = "no-cache"
        chosen = i18n.normalize_language(request.query_params.get("lang"))
        if chosen:
            response.set_cookie(
                i18n.COOKIE, chosen, max_age=i18n.COOKIE_MAX_AGE, httponly=True, samesite="lax", path="/"
            )
        return response

    def _saved_on_page(request: Request, context: dict) -> set[int]:
        from ..app.saved import saved_ids
        from .identity import viewer

        ids = [item["id"] for item in getattr(context.get("page"), "items", None) or []]
        ids += [item["id"] for item in context.get("preview") or [] if isinstance(item, dict) and "id" in item]
        if isinstance(context.get("paper"), dict):
            ids.append(context["paper"]["id"])
        return saved_ids(request.app.state.hub, viewer(request).user_id, ids) if ids else set()

    from . import account_page, briefing_page, radar_page, saved_page, sources_page, welcome_page

    account_page.register(app, hub, render, setup_token)
    from . import admin_page, oidc_page

    admin_page.register(app, hub, render)
    oidc_page.register(app, hub, render)
    for env in envs.values():  # the login page's "Sign in with ..." button
        env.globals["oidc_label"] = settings.oidc_button_label if oidc_page.enabled(settings) else None

    sources_page.register(app, engine, settings, render)
    welcome_page.register(app, engine, settings, render)
    briefing_page.register(app, hub, render)
    radar_views = radar_page.register(app, hub, render, feed_query)
    saved_page.register(app, hub, render)
    from . import jobs_page

    jobs_page.register(app, hub)
    from . import feeds_page

    feeds_page.register(app, hub, render)
    from . import delivery_page

    delivery_page.register(app, hub, render)

    def wants_html(request: Request) -> bool:
        path = request.url.path
        return not (path.startswith(("/api/", "/static/", "/openapi")) or path in ("/api", "/healthz"))

    @app.exception_handler(RequestValidationError)
    async def invalid_params(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        if not wants_html(request):
            return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]) or ".".join(map(str, e.get("loc", ()))),
             "message": i18n.validation_message(e)}
            for e in exc.errors()
        ]
        return render(request, "error.html", {"kind": "bad_params", "problems": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if not wants_html(request) or exc.status_code not in (404, 405):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))
        return render(request, "error.html", {"kind": "not_found", "problems": []}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        if not wants_html(request):
            return JSONResponse({"detail": "internal error"}, status_code=500)
        return render(request, "error.html", {"kind": "server_error", "problems": []}, status_code=500)

    def check_lang(lang: str | None) -> None:
        if lang is not None and i18n.normalize_language(lang) is None:
            raise invalid("lang", i18n.said("lang must be zh or en"), lang)

    # -- pages --

    def sidebar(conn, filters: FeedFilters) -> tuple:
        """The recent days, the latest announcement and the notices of the day on show: the same
        for every view of a store state (kept per state)."""
        day = filters.dates[0] if filters.dates else None
        return kept.get(("sidebar", day), lambda: (available_dates(conn, 7), latest_announcement(conn),
                                                   feed_notices(conn, day)))

    def store_loop(request: Request, day: date | None):
        """loop_status, kept per store state and minute (it says when the next fetch is due); the
        app's hub of the moment (a test puts one with its own clock)."""
        current = request.app.state.hub
        now = current.now()
        status = current.per_state.get(("loop", day, now.replace(second=0, microsecond=0)),
                                       lambda: loop_status(current, now, day=day))
        if status.next_fetch_at is not None and status.now < status.next_fetch_at <= as_utc(now):
            status = loop_status(current, now, day=day)  # it fell due within the minute
        return status

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def feed(
        request: Request,
        params: Annotated[FeedQuery, Depends(feed_query)],
        lang: Annotated[str | None, Query()] = None,
        radar: Annotated[str | None, Query(max_length=200)] = None,
    ):
        check_lang(lang)
        if radar and radar.strip():
            return radar_views.feed_page(request, params, radar.strip())
        seed = params.seed if params.seed is not None else new_seed()
        search = None
        if params.filters.q:  # ranked and highlighted (app/search.py), not shuffled
            search = hub.search(params.filters, sort=params.sort or "relevance", batch=params.batch,
                                size=params.size, seed=seed)
        filtered = repr(params.filters)
        with hub.reading() as conn:
            if search:
                page = search.page
            else:
                rows = kept.get(("feed-rows", filtered), lambda: feed_rows(conn, params.filters))
                page = feed_page(conn, params.filters, seed=seed, batch=params.batch, size=params.size, rows=rows)
            store_empty = page.total == 0 and count_papers(conn) == 0
            if search:
                facets = search.facets
            else:
                facets = kept.get(("facets", filtered), lambda: category_facets(conn, params.filters, 12)) if page.total else []
            days, latest, notices = sidebar(conn, params.filters)
            switch = radar_views.switcher(conn, request, params.filters)
        status = store_loop(request, params.filters.dates[0] if len(params.filters.dates) == 1 else None)
        links = FeedLinks("/", params.filters, seed=seed, size=params.size if params.size_given else None, page=page,
                          sort=params.sort)
        return render(
            request,
            "feed.html",
            {
                "page": page,
                "search": search,
                "filters": params.filters,
                "links": links,
                "store_empty": store_empty,
                "past_end": page.total > 0 and not page.items,
                "facets": facets,
                "days": days,
                "latest": latest,
                "notices": notices,
                "store_loop": status,
                "welcome": welcome_page.welcome_context(settings) if status.first_run else None,
                "briefing_panel": briefing_page.panel_context(
                    request, engine, settings, day=params.filters.dates[0] if params.filters.dates else None,
                    shown_ids=[item["id"] for item in page.items],
                ),
                **switch,
            },
        )

    @app.get("/papers/{key:path}", response_class=HTMLResponse, include_in_schema=False)
    def paper_page(
        request: Request,
        key: str,
        lang: Annotated[str | None, Query()] = None,
        from_: Annotated[str | None, Query(alias="from", max_length=2000)] = None,
    ):
        """One paper, its citation, and like/save/dismiss: for the radar whose feed it was reached
        from (`from`, the page to go back to), else for a radar the reader picks."""
        from .citation import citation
        from .radar_page import paper_feedback_context

        check_lang(lang)
        with hub.reading() as conn:
            paper = get_paper(conn, key)
            if paper is None:
                raise HTTPException(status_code=404, detail="paper not found")
            feedback = paper_feedback_context(conn, request, paper["id"], from_)
        links = FeedLinks("/", FeedFilters(), seed=new_seed(), size=None, here=feedback["here"])
        return render(request, "paper.html", {"paper": paper, "links": links, "citation": citation(paper), **feedback})

    # -- API documentation: Swagger UI and ReDoc, offline --

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def swagger_docs(request: Request):
        return render(request, "api_docs.html", {"viewer": "swagger", "assets": DOCS_ASSETS, "openapi_url": app.openapi_url})

    @app.get("/redoc", response_class=HTMLResponse, include_in_schema=False)
    def redoc_docs(request: Request):
        return render(request, "api_docs.html", {"viewer": "redoc", "assets": DOCS_ASSETS, "openapi_url": app.openapi_url})

    # -- API --

    @app.get("/api/papers", response_model=FeedOut | RadarFeedOut, tags=["papers"], summary="One batch of the feed",
             responses={404: {"description": "No such radar"}})
    def api_papers(
        request: Request,
        params: Annotated[FeedQuery, Depends(feed_query)],
        radar: Annotated[
            str | None,
            Query(max_length=200, description="Rank the day's papers for this radar (name or id): each item "
                  "gains `score` and `reasons`; `batch` names a batch shown today, none reads the latest one "
                  "(or the next, unrecorded); POST records a new batch."),
        ] = None,
    ):
        """Papers matching every filter (AND), newest announcement first, then a seeded shuffle.
        Batches of one seed never repeat a paper; `next_batch` walks them and then reshuffles.
        With `radar`, the radar's ranking instead, never repeating a paper within a day (reading
        records nothing: POST /api/papers?radar= makes and records a new batch)."""
        if radar and radar.strip():
            return radar_views.api_feed(request, params, radar.strip())
        seed = params.seed if params.seed is not None else new_seed()
        search = None
        if params.filters.q:
            search = hub.search(params.filters, sort=params.sort or "relevance", batch=params.batch,
                                size=params.size, seed=seed)
            page = search.page
        else:
            with hub.reading() as conn:
                page = feed_page(conn, params.filters, seed=seed, batch=params.batch, size=params.size)
        links = FeedLinks("/api/papers", params.filters, seed=seed, size=params.size if params.size_given else None,
                          page=page, sort=params.sort)
        f = params.filters
        extra = {}
        if search:
            extra = {"sort": search.sort, "capped": search.capped, "semantic": search.semantic,
                     "notices": [{"kind": n.kind, "words": n.words} for n in search.notices]}
        return {
            **extra,
            "items": page.items,
            "total": page.total,
            "batch": page.batch,
            "seed": page.seed,
            "size": page.size,
            "batches": page.batches,
            "next_batch": links.next(),
            "filters": {
                "authors": f.authors,
                "categories": f.categories,
                "dates": [d.isoformat() for d in f.dates],
                "q": f.q,
            },
        }

    @app.post("/api/papers", response_model=RadarFeedOut, tags=["papers"], summary="A new batch of a radar",
              responses={404: {"description": "No such radar"}})
    def api_papers_next(
        request: Request,
        params: Annotated[FeedQuery, Depends(feed_query)],
        radar: Annotated[str, Query(min_length=1, max_length=200, description="The radar (name or id).")],
    ):
        """The radar's next batch of papers not shown today, recorded as shown (GET only reads:
        the latest batch of today, or the one this call would record)."""
        if not radar.strip():
            raise invalid("radar", i18n.said("a radar needs a name"), radar)
        return radar_views.api_feed(request, params, radar.strip(), record=True)

    @app.get(
        "/api/papers/{key:path}",
        response_model=PaperOut,
        tags=["papers"],
        summary="One paper by id or arXiv id",
        responses={404: {"description": "No such paper"}},
    )
    def api_paper(key: str):
        with hub.reading() as conn:
            paper = get_paper(conn, key)
        if paper is None:
            raise HTTPException(status_code=404, detail="paper not found")
        return paper

    @app.get("/api/stats", response_model=StatsOut, tags=["store"], summary="What the store holds")
    def api_stats():
        with hub.reading() as conn:
            stats = store_stats(conn)
            stats["recent_days"] = [{"date": d, "papers": n} for d, n in available_dates(conn, 14)]
        return stats

    @app.get("/healthz", tags=["store"], summary="Liveness and database check")
    def healthz():
        if not hub.healthy():
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return {"status": "ok", "database": "ok", "version": __version__}

    return app
