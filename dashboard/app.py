"""The Starlette application: pages, JSON views, the server-sent event stream, local assets.

Routes:

    /market /prices /settlement /network /experiments    the pages (HTML shells, filled by their script)
    /api/events                  server-sent events: ``status`` now and on changes, ``block`` per commit
    /api/status /api/market /api/prices /api/settlement /api/participant /api/network
    /api/statement.csv           a participant's statement lines (the CLI's CSV columns)
    /results/<run>/<file>        files of an experiment run (plots, CSV, JSON)
    /static/...                  the dashboard's own CSS and scripts
    /vendor/uplot/...            the charting library installed from the npm registry at set-up

No page loads anything from another origin (the Content-Security-Policy says
so to the browser as well).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard import experiments, names, views
from dashboard.chain import NOT_FOUND, Node, NodeUnreachable, QueryFailed, RpcError
from dashboard.config import DashboardConfig
from dashboard.follower import BlockInfo, Follower
from dashboard.live import Event, LiveState
from dashboard.units import Currency

log = logging.getLogger("gridledger.dashboard")

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
UPLOT_DIST = HERE / "frontend" / "node_modules" / "uplot" / "dist"
VENDOR_FILES = {"uPlot.iife.min.js": "text/javascript; charset=utf-8", "uPlot.min.css": "text/css; charset=utf-8"}
SSE_PING_S = 15
SSE_RETRY_MS = 2000
NAMES_RETRY_S = 5.0
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                 b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True)
class Page:
    name: str
    title: str

    @property
    def href(self) -> str:
        return f"/{self.name}"


PAGES = (Page("market", "Market"), Page("prices", "Prices"), Page("settlement", "Settlement"),
         Page("network", "Network"), Page("experiments", "Experiments"))


def charts_available() -> bool:
    return all((UPLOT_DIST / name).is_file() for name in VENDOR_FILES)


class Runtime:
    """The nodes, the block follower and what it keeps; one per running app."""

    def __init__(self, config: DashboardConfig, roster: names.Roster | None) -> None:
        self.config = config
        self.roster = roster
        nodes = [Node(url) for url in config.nodes]
        self.live = LiveState()
        self.ctx = views.Context(primary=nodes[0], nodes=nodes, live=self.live, results=config.results)
        self.follower = Follower(nodes[0], self._on_block, self._on_status)
        self._tasks: list[asyncio.Task[None]] = []
        self.currency: Currency | None = None

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.follower.run(), name="dashboard-follower"))
        if self.roster is not None:
            self._tasks.append(asyncio.create_task(self._resolve_names(self.roster), name="dashboard-names"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for node in self.ctx.nodes:
            await node.close()

    async def _resolve_names(self, roster: names.Roster) -> None:
        """Names need the chain's genesis participants: retry until the node answers."""
        needs_genesis = any(p.account is None for p in roster.participants)
        while True:
            try:
                genesis = await self.ctx.primary.genesis_app_state() if needs_genesis else {}
                break
            except (NodeUnreachable, RpcError) as exc:
                log.info("roster names wait for the node's genesis: %s", exc)
                await asyncio.sleep(NAMES_RETRY_S)  # no event tells us the node is back
        resolved = names.resolve(roster, genesis.get("participants") if isinstance(genesis, dict) else None)
        for warning in resolved.warnings:
            log.warning("%s", warning)
        self.ctx.names = resolved
        log.info("roster: %d participant names", len(resolved.by_account))

    async def _on_block(self, info: BlockInfo, resync: bool) -> None:
        self.ctx.primary.advance(info.height)
        record = self.live.add(info, resync)
        if info.seen_ns is not None:
            try:
                record.mempool = await self.ctx.primary.mempool_size()
            except (NodeUnreachable, RpcError) as exc:
                log.debug("mempool size unavailable: %s", exc)
        self.live.hub.publish(Event("block", views.block_event(self.ctx, record, resync, await self._currency())))

    async def _currency(self) -> Currency | None:
        """The chain's currency and exponent: fixed at genesis, so read once."""
        if self.currency is None:
            with contextlib.suppress(NodeUnreachable, RpcError, QueryFailed):
                params = await self.ctx.primary.query_value("/params")
                self.currency = Currency(params["currency"], params["currency_exponent"])
        return self.currency

    async def _on_status(self, connected: bool, reason: str) -> None:
        self.live.connected, self.live.error = connected, reason
        self.live.hub.publish(Event("status", await views.status(self.ctx)))


# -- HTTP ------------------------------------------------------------------------------------------
def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})


View = Callable[[views.Context, QueryParams], Awaitable[Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(endpoint: Endpoint) -> Endpoint:
    """Input errors answer 400/404, an unreachable node 503, each with one ``error`` text."""

    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except views.ViewError as exc:
            return _json({"error": exc.message}, exc.status)
        except QueryFailed as exc:
            return _json({"error": exc.log or str(exc)}, 404 if exc.code == NOT_FOUND else 400)
        except (NodeUnreachable, RpcError) as exc:
            return _json({"error": f"the node does not answer: {exc}"}, 503)

    return wrapped


def api(view: View) -> Endpoint:
    @guarded
    async def endpoint(request: Request) -> Response:
        return _json(await view(_runtime(request).ctx, request.query_params))

    return endpoint


def _q(params: QueryParams, key: str) -> str | None:
    return params.get(key) or None


async def _market(ctx: views.Context, q: QueryParams) -> Any:
    return await views.market(ctx, _q(q, "zone"), _q(q, "slot"))


async def _prices(ctx: views.Context, q: QueryParams) -> Any:
    return await views.prices(ctx, _q(q, "day"), _q(q, "zone"))


async def _settlement(ctx: views.Context, q: QueryParams) -> Any:
    return await views.settlement(ctx, _q(q, "day"), _q(q, "slot"))


async def _participant(ctx: views.Context, q: QueryParams) -> Any:
    return await views.participant(ctx, _q(q, "account"), _q(q, "from"), _q(q, "to"))


async def _network(ctx: views.Context, q: QueryParams) -> Any:
    return await views.network(ctx)


async def _status(ctx: views.Context, q: QueryParams) -> Any:
    return await views.status(ctx)


@guarded
async def statement_csv(request: Request) -> Response:
    q = request.query_params
    filename, text = await views.statement_csv(_runtime(request).ctx, _q(q, "account"), _q(q, "from"), _q(q, "to"))
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"})


async def events(request: Request) -> Response:
    runtime = _runtime(request)
    hub = runtime.live.hub
    queue = hub.subscribe()

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            status = Event("status", await views.status(runtime.ctx))
            yield ServerSentEvent(data=status.json(), event=status.name, retry=SSE_RETRY_MS)
            while True:
                event = await queue.get()
                yield ServerSentEvent(data=event.json(), event=event.name)
        finally:
            hub.unsubscribe(queue)

    return EventSourceResponse(stream(), ping=SSE_PING_S, headers={"cache-control": "no-store"})


def page(templates: Jinja2Templates, which: Page) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        runtime = _runtime(request)
        context: dict[str, Any] = {"page": which.name, "title": which.title, "pages": PAGES,
                                   "node": runtime.ctx.primary.url, "charts": charts_available()}
        if which.name == "experiments":
            context.update(_experiments_context(runtime.config.results, request.query_params.get("run")))
        return templates.TemplateResponse(request, f"{which.name}.html", context)

    return endpoint


def _experiments_context(root: Path | None, run_id: str | None) -> dict[str, Any]:
    if root is None:
        return {"results": None, "runs": [], "run": None}
    runs = experiments.list_runs(root)
    chosen = None
    if run_id:
        try:
            run = experiments.find_run(root, run_id)
        except experiments.RunNotFound:
            raise HTTPException(404, f"no run {run_id!r} under {root}") from None
        chosen = {"id": run.id, "name": run.name, "stamp": run.stamp,
                  "report": experiments.render_report(run) if run.has_report else None,
                  "summary": None if run.has_report else experiments.run_summary(run)}
    return {"results": str(root), "runs": runs, "run": chosen}


async def result_file(request: Request) -> Response:
    root = _runtime(request).config.results
    if root is None:
        raise HTTPException(404, "this dashboard shows no results directory (start it with --results DIR)")
    try:
        path, media = experiments.served_file(root, request.path_params["path"])
    except experiments.RunNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return FileResponse(path, media_type=media)


async def vendor_file(request: Request) -> Response:
    name = request.path_params["name"]
    media = VENDOR_FILES.get(name)
    if media is None or not (UPLOT_DIST / name).is_file():
        raise HTTPException(404, "not installed: run `make setup` (the dashboard's npm packages)")
    return FileResponse(UPLOT_DIST / name, media_type=media, headers={"cache-control": "max-age=3600"})


async def root(request: Request) -> Response:
    return RedirectResponse("/market", status_code=307)


class SecurityHeaders:
    """Adds the CSP and friends to every HTTP response (pure ASGI, so streaming is untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(config: DashboardConfig, roster: names.Roster | None = None) -> Starlette:
    templates = Jinja2Templates(directory=str(TEMPLATES))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        runtime = Runtime(config, roster)
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield {}
        finally:
            await runtime.stop()

    routes = [
        Route("/", root),
        *(Route(p.href, page(templates, p)) for p in PAGES),
        Route("/api/events", events),
        Route("/api/status", api(_status)),
        Route("/api/market", api(_market)),
        Route("/api/prices", api(_prices)),
        Route("/api/settlement", api(_settlement)),
        Route("/api/participant", api(_participant)),
        Route("/api/network", api(_network)),
        Route("/api/statement.csv", statement_csv),
        Route(experiments.FILES_ROUTE + "/{path:path}", result_file),
        Route("/vendor/uplot/{name}", vendor_file),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(SecurityHeaders)
    return app
