"""The console's pages, one router per page family (the `server/api/` layout); `ROUTERS` lists them in
the order `create_console_app` includes them."""

from __future__ import annotations

from fastapi import APIRouter

from vigil.console.routes import (
    accounts,
    audit,
    banks,
    cases,
    cybertip,
    evidence,
    image_matches,
    metrics,
    policies,
    queue,
    reviewers,
    session,
    vouchers,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    session.router,
    queue.router,
    cases.router,
    cybertip.router,
    evidence.router,
    image_matches.router,
    vouchers.router,
    audit.router,
    banks.router,
    reviewers.router,
    policies.router,
    metrics.router,
    accounts.router,
)
