"""The review console: FastAPI + Jinja, server-rendered, no scripts.

Mounted by `vigil serve` under /console (`mount_console`, sharing the server's context) or run alone by
`vigil console serve`. Every page sends a strict Content-Security-Policy (no inline scripts or styles, no
framing); the session cookie is HttpOnly, SameSite=Strict and Secure (unless
`VIGIL_CONSOLE_SECURE_COOKIES=false`); every POST carries the session's CSRF token. The pages are in
`console/routes/`, their shared checks in `console/deps.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Depends, FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware

from vigil.console.deps import ConsoleState, LoginRequired, bounded_path_ids
from vigil.console.pages import redirect, render, templates
from vigil.console.routes import ROUTERS
from vigil.errors import ConflictError, NotFoundError, PermissionDenied, VigilError
from vigil.server.context import ServerContext
from vigil.server.settings import Settings

__all__ = ["CSP", "create_console_app", "mount_console"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
ContextGetter = Callable[[], ServerContext]


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        return response


async def _login_required(request: Request, _error: Exception) -> Response:
    if request.method != "GET":
        return render(request, "error.html", 403, title="Signed out", message="Your session has ended.")
    return redirect(request, "/login")


async def _vigil_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, VigilError)
    status = 403 if isinstance(error, PermissionDenied) else 404 if isinstance(error, NotFoundError) else 400
    if isinstance(error, ConflictError):
        status = 409
    return render(
        request,
        "error.html",
        status,
        title="Not allowed" if status == 403 else "Problem",
        message=error.detail,
    )


def create_console_app(settings: Settings, context: ContextGetter | None = None) -> FastAPI:
    """With `context`, the console shares a running server's context (mounted); without it, it builds
    its own in its lifespan (standalone)."""
    holder: dict[str, ServerContext] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if context is not None:
            yield
            return
        from vigil.server.offline import offline_context

        async with offline_context(settings) as ctx:
            holder["ctx"] = ctx
            yield

    def get_ctx() -> ServerContext:
        return context() if context is not None else holder["ctx"]

    app = FastAPI(
        title="Vigil review console",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        dependencies=[Depends(bounded_path_ids)],
    )
    app.state.console = ConsoleState(settings=settings, context=get_ctx, templates=templates())
    app.add_middleware(_SecurityHeaders)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(VigilError, _vigil_error)
    for router in ROUTERS:
        app.include_router(router)
    return app


def mount_console(app: FastAPI, settings: Settings) -> None:
    """Serves the console under /console of the server `app`, sharing its context (set in its lifespan)."""
    app.mount("/console", create_console_app(settings, context=lambda: app.state.context))
