"""`create_app(settings)`: builds the FastAPI app. Nothing happens at import time; the database is
migrated and background tasks start in the lifespan. The review console sits above the server and is
not imported here: `vigil serve` mounts it (`vigil.console.app.mount_console`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp, Receive, Scope, Send

from vigil.server.access_log import AccessLog
from vigil.server.api import accounts, blobs, health, keys, messages, stream
from vigil.server.api import contacts as contacts_api
from vigil.server.api import groups as groups_api
from vigil.server.api import hashlist as hashlist_api
from vigil.server.api import reports as reports_api
from vigil.server.api.errors import ERROR_RESPONSES, install_error_handlers
from vigil.server.api.limits import RequestBodyLimits
from vigil.server.context import ServerContext
from vigil.server.delivery import DeliveryHub
from vigil.server.ratelimit import RateLimiter
from vigil.server.services.cybertip_filing import recover_unfinished_filings
from vigil.server.services.preservation import copy_uncopied_holds
from vigil.server.services.retention import start_sweeps
from vigil.server.services.risk import risk_loop
from vigil.server.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger(__name__)
CYBERTIP_RECOVERY_MAX_INTERVAL_S = 300
# FastAPI's native OpenTelemetry, off: its spans and logs carry request paths (usernames, group and blob
# ids) and exception messages to whatever provider the environment configures, which the access log's
# rules forbid; and checking whether it is on cost every request a look at the environment.
NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


async def _recover_cybertip_filings_forever(ctx: ServerContext) -> None:
    """CyberTipline crash recovery (issue 9): at start-up, then as often as a filing lease can run out,
    filings whose filer died are finished or retracted. Needs the CyberTipline credentials."""
    interval = min(CYBERTIP_RECOVERY_MAX_INTERVAL_S, max(1.0, ctx.settings.cybertipline_lease_seconds))
    while True:
        try:
            for filing in await recover_unfinished_filings(ctx):
                log.info("cybertip filing %d recovered: %s", filing.id, filing.state)
        except Exception as error:  # retried next round, never fatal
            log.warning("cybertip recovery failed: %s", type(error).__name__)
        await asyncio.sleep(interval)


class _VigilApp(FastAPI):
    """FastAPI with the relay's send route (`messages.serve_send`) dispatched before Starlette's error and
    exception middleware and its router, inside the app's own middleware (access log, body limits) as
    every other request."""

    _send_stack: ASGIApp

    def build_middleware_stack(self) -> ASGIApp:
        # Built with the app's stack and from the same middleware list, so the send route cannot miss
        # a middleware the other routes have (or keep one they lost).
        send_stack: ASGIApp = messages.serve_send
        for cls, args, kwargs in reversed(self.user_middleware):
            send_stack = cls(send_stack, *args, **kwargs)
        self._send_stack = send_stack
        return super().build_middleware_stack()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if messages.is_send(scope):
            if self.middleware_stack is None:
                self.middleware_stack = self.build_middleware_stack()
            scope["app"] = self
            await self._send_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        namespace = settings.resolved_redis_namespace
        delivery = DeliveryHub(settings.redis_url, namespace)
        limiter = RateLimiter(settings.rate_limit_rules(), settings.redis_url, namespace)
        async with ServerContext.open(settings, delivery, limiter=limiter) as ctx:
            await delivery.start()
            app.state.context = ctx
            # Holds from before holds copied their data must be copied before any sweep deletes it.
            await copy_uncopied_holds(ctx)
            background = [
                asyncio.create_task(risk_loop(ctx)),
                asyncio.create_task(_recover_cybertip_filings_forever(ctx)),
                *start_sweeps(ctx),
            ]
            try:
                yield
            finally:
                for task in background:
                    task.cancel()
                for task in background:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await delivery.stop()

    app = _VigilApp(
        title="Vigil", version="1", lifespan=lifespan, responses=ERROR_RESPONSES, telemetry=NO_TELEMETRY
    )
    install_error_handlers(app)
    # The relay's routes first: a request is matched against the routes in order (no two paths overlap).
    for router in (messages.router, stream.router, health.router, accounts.router, keys.router, blobs.router):
        app.include_router(router)
    app.include_router(groups_api.router)
    app.include_router(hashlist_api.router)
    app.include_router(reports_api.router)
    app.include_router(contacts_api.router)

    app.add_middleware(
        RequestBodyLimits,
        default_limit=settings.max_json_bytes,
        blob_limit=settings.max_blob_bytes,
        stall_timeout_s=settings.request_body_timeout_seconds,
    )
    app.add_middleware(AccessLog)  # outermost: sees the final status of every request
    return app
