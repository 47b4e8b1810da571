"""The explorer: a read-only web application over the runs under one folder.

``create_app(runs_folder)`` gives a FastAPI application with HTML pages (plain HTML, one
small vanilla JavaScript file, and the Plotly.js bundled with the ``plotly`` package — no
CDN) and the JSON API behind every page, described at ``/openapi.json``. ``socialcredit
serve`` runs it with uvicorn on 127.0.0.1.

Safe by default: every route is a GET; runs are named by id and looked up in the map of runs
found under the folder, so no path reaches outside it; pages are bounded in size and queries
in time; whatever a request names that does not exist gets a 404 with one plain sentence.
"""

from __future__ import annotations

import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as Path_
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from socialcredit import __version__
from socialcredit.errors import UserError
from socialcredit.web import queries, story
from socialcredit.web.catalog import NotFound, RunCatalog, RunHandle, Unavailable, prepare_numba

log = logging.getLogger(__name__)

STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
}


# --- the documented shapes (for /openapi.json) --------------------------------------------------


class Problem(BaseModel):
    """What every error answers: one plain sentence."""

    detail: str = Field(..., description="What is wrong, in one plain sentence.")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RunEntry(_Open):
    """A run in the list of runs."""

    id: str = Field(..., description="The run's id: its path under the runs folder, parts "
                                     "joined by '~'.")
    scenario: str | None = None
    start: str
    end: str
    days: int
    citizens: int
    businesses: int
    policy: str | None = None
    reforms: list[str] = []
    ledger: bool
    headline: dict[str, Any] = Field(default_factory=dict,
                                     description="Headline figures (as `socialcredit run` "
                                                 "prints them).")


class RunDetail(RunEntry):
    """A run's manifest and headline figures."""

    manifest: dict[str, Any]


class CreditFile(_Open):
    """A subject's credit file: the `explain` story as JSON."""

    subject_id: int
    kind: str
    source: str = Field(..., description="`ledger` (read from the run's tables) or `replay` "
                                         "(replayed from the seed).")
    ledger: bool = Field(..., description="Whether the run stored its ledger (`--ledger`), so "
                                          "that the file can be read from it.")
    days: list[dict[str, Any]] = Field(..., description="Each day with its events, in the "
                                                        "order of the day's phases.")


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "The run, subject, date, list or region does not "
                                           "exist, or the run cannot show this."},
    503: {"model": Problem, "description": "The query took too long and was stopped."},
}


# --- the pages ---------------------------------------------------------------------------------


def _asset(name: str) -> str:
    return resources.files("socialcredit.web").joinpath(name).read_text(encoding="utf-8")


def _plotly_js() -> Path | None:
    try:
        import plotly
    except ImportError:  # pragma: no cover - plotly is a dependency
        return None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


class Pages:
    """The HTML shells: each page is rendered in the browser from the JSON API."""

    def __init__(self) -> None:
        self.template = Template(_asset("templates/page.html"))

    def render(self, page: str, title: str, status: int = 200, **data: Any) -> HTMLResponse:
        attrs = " ".join(
            f'data-{k.replace("_", "-")}="{html.escape(str(v), quote=True)}"'
            for k, v in data.items() if v is not None
        )
        body = self.template.substitute(
            title=html.escape(title), page=html.escape(page), attrs=attrs,
            version=html.escape(__version__),
            message=html.escape(str(data.get("message", ""))),
        )
        return HTMLResponse(body, status_code=status)


# --- the application ---------------------------------------------------------------------------


def create_app(runs_folder: str | Path, *, query_seconds: float | None = None) -> FastAPI:
    """The explorer over every run under ``runs_folder`` (read-only).

    ``query_seconds`` bounds each query (default :data:`queries.QUERY_SECONDS`)."""
    catalog = RunCatalog(runs_folder)
    # before any request thread exists: numba cannot be imported by two threads at once
    prepare_numba()
    if query_seconds is not None:
        queries.QUERY_SECONDS = float(query_seconds)
    pages = Pages()
    plotly_js = _plotly_js()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        catalog.close()

    app = FastAPI(
        lifespan=lifespan,
        title="socialcredit explorer",
        version=__version__,
        description=(
            "A read-only explorer of socialcredit runs: the runs under one folder, a run's "
            "charts, a subject's credit file, who is on each list, the policy with its "
            "references and rights audit, and two runs compared. Every endpoint is a GET; "
            "what does not exist gets a 404 with `{\"detail\": \"<plain sentence>\"}`."
        ),
        docs_url=None,  # /api/docs is the explorer's own page (below), served offline
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.catalog = catalog

    # -- errors -------------------------------------------------------------------------------

    def _error(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api") or request.url.path.endswith(".json"):
            return JSONResponse({"detail": message}, status_code=status)
        return pages.render("error", f"{status}: {message}", status=status, message=message)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(queries.QueryTimeout)
    async def _timeout(request: Request, exc: queries.QueryTimeout) -> Response:
        return _error(request, 503, str(exc))

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> Response:
        return _error(request, 404, exc.sentence())

    import duckdb

    @app.exception_handler(duckdb.Error)
    async def _unreadable(request: Request, exc: duckdb.Error) -> Response:
        # a run whose files are damaged or not what its manifest says
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("unreadable run data on %s: %s", request.url.path, exc)
        return _error(request, 404, f"the run's tables cannot be read ({first})")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"there is no page {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed: the explorer only reads (use GET)"
        else:
            message = str(exc.detail)
        response = _error(request, exc.status_code, message)
        if exc.status_code == 405:
            response.headers["Allow"] = "GET"
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "path"))
            problems.append(f"{where}: {e.get('msg', 'invalid')}" if where else
                            str(e.get("msg", "invalid")))
        return _error(request, 422, "invalid request: " + "; ".join(problems))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:  # pragma: no cover
        log.exception("unexpected error on %s", request.url.path)
        return _error(request, 500, f"the explorer failed: {type(exc).__name__}: {exc}")

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    def run_of(run: str) -> RunHandle:
        handle = catalog.get(run)
        if handle.has_ledger:
            handle.index()  # start building the subject index early
            catalog.touch_index(handle)
        return handle

    # -- API ----------------------------------------------------------------------------------

    @app.get("/api/runs", response_model=list[RunEntry], tags=["runs"],
             summary="List the runs under the folder")
    def api_runs() -> list[dict[str, Any]]:
        out = []
        for rid in catalog.ids():
            try:
                out.append(queries.run_entry(catalog.get(rid)))
            except NotFound:
                continue  # removed, or not readable: not a run to list
        return out

    @app.get("/api/runs/{run}", response_model=RunDetail, responses=ERRORS, tags=["runs"],
             summary="A run's manifest and headline figures")
    def api_run(run: str) -> dict[str, Any]:
        return queries.run_detail(run_of(run))

    @app.get("/api/runs/{run}/overview", responses=ERRORS, tags=["runs"],
             summary="A run's charts (Plotly figures), filtered by region, group and dates")
    def api_overview(
        run: str,
        region: str | None = Query(None, max_length=100, description="A region id; all if "
                                                                        "omitted."),
        group: str | None = Query(None, max_length=20,
                                  description="all, citizen, business, income:0..3, urban, "
                                              "rural or size:0..3."),
        start: str | None = Query(None, max_length=10, description="First day, YYYY-MM-DD."),
        end: str | None = Query(None, max_length=10, description="Last day, YYYY-MM-DD."),
    ) -> dict[str, Any]:
        return queries.overview(run_of(run), region, group, start, end)

    @app.get("/api/runs/{run}/subjects/{subject}", response_model=CreditFile,
             responses=ERRORS, tags=["subjects"],
             summary="A subject's credit file (the explain story as JSON)")
    def api_subject(
        run: str,
        subject: str,
        source: str = Query("auto", pattern="^(auto|ledger|replay)$",
                            description="auto (the ledger when the run has one), ledger or "
                                        "replay."),
    ) -> dict[str, Any]:
        handle = run_of(run)
        return story.credit_file(handle, handle.subject(subject), source)

    @app.get("/api/runs/{run}/lists", responses=ERRORS, tags=["lists"],
             summary="The run's lists and how many are on each on a date")
    def api_lists(run: str, date: str | None = Query(None, max_length=10)) -> dict[str, Any]:
        return queries.lists_on(run_of(run), date)

    @app.get("/api/runs/{run}/lists/{name}", responses=ERRORS, tags=["lists"],
             summary="Who is on a list on a date, a page at a time")
    def api_list(
        run: str,
        name: str,
        date: str | None = Query(None, max_length=10, description="YYYY-MM-DD; the last day "
                                                                  "if omitted."),
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int = Query(50, ge=1, le=queries.MAX_PAGE_SIZE),
        region: str | None = Query(None, max_length=100),
        kind: str | None = Query(None, pattern="^(citizen|business)$"),
        false_caused: bool | None = Query(None, description="Only entries caused (or not) by "
                                                            "false records."),
    ) -> dict[str, Any]:
        return queries.list_members(run_of(run), name, date, page, page_size, region, kind,
                                    false_caused)

    # -- downloads: every table view as CSV or Parquet ----------------------------------------

    def download(make: Any, filename: str, fmt: str) -> Response:
        import shutil
        import tempfile

        from starlette.background import BackgroundTask

        folder = tempfile.mkdtemp(prefix="socialcredit-export-")
        try:
            path = make(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        headers = {"X-Rows-Limit": str(queries.EXPORT_ROWS)}
        return FileResponse(path, media_type=queries.EXPORT_TYPES[fmt], filename=filename,
                            headers=headers,
                            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))

    @app.get("/api/runs/{run}/tables/{table}.{fmt}", responses=ERRORS, tags=["downloads"],
             summary="A table of the run as a CSV or Parquet file (one subject's rows with "
                     "`subject`; at most 1,000,000 rows)",
             response_class=FileResponse)
    def api_table_file(
        run: str, table: str, fmt: str = Path_(..., pattern="^(csv|parquet)$"),
        subject: str | None = Query(None, max_length=40, description="A subject id or USCC."),
    ) -> Response:
        handle = run_of(run)
        sid = handle.subject(subject) if subject is not None else None
        name = f"{handle.id.replace('~', '-')}-{table}" + (f"-{sid}" if sid is not None else "")
        return download(lambda folder: queries.export_table(handle, table, fmt, folder, sid),
                        f"{name}.{fmt}", fmt)

    @app.get("/api/runs/{run}/lists/{name}/members.{fmt}", responses=ERRORS,
             tags=["downloads"], response_class=FileResponse,
             summary="Everyone on a list on a date, with demographics, as a CSV or Parquet "
                     "file (at most 1,000,000 rows)")
    def api_list_file(
        run: str, name: str, fmt: str = Path_(..., pattern="^(csv|parquet)$"),
        date: str | None = Query(None, max_length=10),
        region: str | None = Query(None, max_length=100),
        kind: str | None = Query(None, pattern="^(citizen|business)$"),
        false_caused: bool | None = Query(None),
    ) -> Response:
        handle = run_of(run)
        return download(lambda folder: queries.export_members(
            handle, name, fmt, folder, date, region, kind, false_caused),
            f"{handle.id.replace('~', '-')}-{name}.{fmt}", fmt)

    @app.get("/api/compare/{run_a}/{run_b}/changed.{fmt}", responses=ERRORS,
             tags=["downloads"], response_class=FileResponse,
             summary="Every subject whose story differs between two runs, with demographics "
                     "and figures in both, as a CSV or Parquet file")
    def api_changed_file(run_a: str, run_b: str,
                         fmt: str = Path_(..., pattern="^(csv|parquet)$")) -> Response:
        from socialcredit.analysis.compare import export_changed

        a, b = run_of(run_a), run_of(run_b)
        a.require_ledger("the changed subjects")
        b.require_ledger("the changed subjects")

        def make(folder: str) -> str:
            target = Path(folder) / f"changed.{fmt}"
            export_changed(a.run, b.run, target)
            return str(target)

        return download(make, f"{a.id.replace('~', '-')}-vs-{b.id.replace('~', '-')}.{fmt}",
                        fmt)

    @app.get("/api/runs/{run}/policy", responses=ERRORS, tags=["policy"],
             summary="The run's rules for a region and date, with references, and the rights "
                     "audit")
    def api_policy(
        run: str,
        region: str | None = Query(None, max_length=100),
        date: str | None = Query(None, max_length=10),
    ) -> dict[str, Any]:
        return queries.policy_view(run_of(run), region, date)

    @app.get("/api/compare/{run_a}/{run_b}", responses=ERRORS, tags=["compare"],
             summary="Two runs side by side, with the grade transition matrix")
    def api_compare(
        run_a: str,
        run_b: str,
        region: str | None = Query(None, max_length=100),
        kind: str = Query("citizen", pattern="^(citizen|business)$"),
    ) -> dict[str, Any]:
        return queries.compare(run_of(run_a), run_of(run_b), region, kind)

    # -- pages --------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def page_runs() -> HTMLResponse:
        return pages.render("runs", "Runs", folder=catalog.root.name)

    @app.get("/runs/{run}", include_in_schema=False)
    def page_overview(run: str) -> HTMLResponse:
        handle = run_of(run)
        return pages.render("overview", f"Run {handle.id}", run=handle.id)

    @app.get("/runs/{run}/subjects/{subject}", include_in_schema=False)
    def page_subject(run: str, subject: str) -> HTMLResponse:
        handle = run_of(run)
        sid = handle.subject(subject)
        return pages.render("subject", f"Subject {sid} in {handle.id}", run=handle.id,
                            subject=sid, ledger=int(handle.has_ledger))

    @app.get("/runs/{run}/lists", include_in_schema=False)
    def page_lists(run: str) -> HTMLResponse:
        handle = run_of(run)
        return pages.render("lists", f"Lists of {handle.id}", run=handle.id,
                            ledger=int(handle.has_ledger))

    @app.get("/runs/{run}/policy", include_in_schema=False)
    def page_policy(run: str) -> HTMLResponse:
        handle = run_of(run)
        return pages.render("policy", f"Policy of {handle.id}", run=handle.id)

    @app.get("/compare", include_in_schema=False)
    def page_compare() -> HTMLResponse:
        return pages.render("compare", "Compare two runs")

    @app.get("/api/docs", include_in_schema=False)
    def page_api() -> HTMLResponse:
        # the explorer's own page over /openapi.json (app.js), not FastAPI's Swagger UI page:
        # that one loads its assets from a CDN, which offline users cannot reach and the
        # content policy blocks, and runs an inline script, which the policy forbids too
        return pages.render("api", "The explorer's API")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        headers = {"Cache-Control": "public, max-age=3600"}
        if name == "plotly.min.js" and plotly_js is not None:
            return FileResponse(plotly_js, media_type="text/javascript", headers=headers)
        if name not in STATIC:
            raise NotFound(f"there is no file {name}")
        return Response(_asset(f"static/{name}"), media_type=STATIC[name], headers=headers)

    return app
