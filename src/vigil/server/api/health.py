"""Liveness, readiness and retention. `/v1/health` says the process answers and touches nothing else, so a
load balancer or supervisor does not restart a healthy worker because a dependency is down. `/v1/ready` says
whether requests can be served now: the database answers, and Redis too when one is configured.
`/v1/retention` says what each retention sweep did since start-up (counts and times, never content or
identifiers), so an operator can see every rule of `docs/threat-model.md` run."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from vigil.server.api.deps import Context
from vigil.server.api.errors import error_response
from vigil.server.capacity import DEPENDENCY_RETRY_AFTER_S
from vigil.server.context import ServerContext

__all__ = ["Readiness", "RetentionReport", "SweepReport", "router"]

router = APIRouter(prefix="/v1", tags=["health"])

_CHECK_TIMEOUT_S = 2.0

Check = Literal["ok", "unreachable", "not_configured"]


class Readiness(BaseModel):
    status: Literal["ready"]
    database: Check
    redis: Check


class SweepReport(BaseModel):
    runs: int
    failures: int
    deleted_total: int
    last_deleted: int
    last_run_ms: int | None
    last_error: str | None


class RetentionReport(BaseModel):
    sweeps: dict[str, SweepReport]


@router.get("/retention")
async def retention(ctx: Context) -> RetentionReport:
    return RetentionReport(
        sweeps={
            name: SweepReport(
                runs=s.runs,
                failures=s.failures,
                deleted_total=s.deleted_total,
                last_deleted=s.last_deleted,
                last_run_ms=s.last_run_ms,
                last_error=s.last_error,
            )
            for name, s in ctx.retention.sweeps.items()
        }
    )


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "a dependency is unreachable"}}, response_model=None)
async def ready(ctx: Context) -> Readiness | JSONResponse:
    database: Check = "ok" if await _database_answers(ctx) else "unreachable"
    redis: Check = "not_configured"
    if ctx.delivery.uses_redis:
        redis = "ok" if await ctx.delivery.redis_reachable(_CHECK_TIMEOUT_S) else "unreachable"
    if database == "ok" and redis != "unreachable":
        return Readiness(status="ready", database=database, redis=redis)
    return error_response(
        503,
        "not_ready",
        {"database": database, "redis": redis},
        {"Retry-After": str(DEPENDENCY_RETRY_AFTER_S)},
    )


async def _database_answers(ctx: ServerContext) -> bool:
    async def select_one() -> None:
        async with ctx.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(select_one(), _CHECK_TIMEOUT_S)
    except Exception:  # whatever the driver raises, the database did not answer
        return False
    return True
