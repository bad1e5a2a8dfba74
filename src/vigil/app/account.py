"""The account's own page (`/account`): the verified notice of an action a reviewer took on this account
(warning, restriction, suspension), the one appeal it allows (a reason in the user's words), the
appeal's state, and its outcome's verified notice. A suspended account can use this page and nothing
else: the server answers it only for its notices and its appeal (`vigil.server.api.deps`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vigil.app.session import AppSession
from vigil.errors import ValidationError
from vigil.protocol.reports import MAX_APPEAL_REASON_CHARS

__all__ = ["add_account_routes"]

Page = Callable[..., HTMLResponse]


def add_account_routes(
    app: FastAPI, session: AppSession, page: Page, back: Callable[[str], RedirectResponse]
) -> None:
    def values() -> dict[str, Any]:
        return {"standing": session.standing(), "max_chars": MAX_APPEAL_REASON_CHARS}

    @app.get("/account")
    async def account_page() -> Response:
        session.require()
        return page("account.html", **values())

    @app.get("/account/fragment")
    async def account_fragment() -> Response:
        session.require()
        return page("_account.html", **values())

    @app.post("/account/appeal")
    async def appeal(reason: Annotated[str, Form()] = "") -> Response:
        session.require()
        reason = reason.strip()
        if not reason:
            raise ValidationError("Say in a few words why the decision should be looked at again.")
        if len(reason) > MAX_APPEAL_REASON_CHARS:
            raise ValidationError(f"An appeal can be up to {MAX_APPEAL_REASON_CHARS} characters.")
        session.flash = await session.appeal(reason)
        return back("/account")
