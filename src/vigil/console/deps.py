"""The console's `Annotated` dependencies: the server context, the signed-in reviewer, a role check and a
CSRF-checked form. A route lists what it needs in the order the checks run: session, then CSRF, then
role (FastAPI solves dependencies in signature order and caches each one per request)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from jinja2 import Environment
from starlette.datastructures import FormData

from vigil.console.auth import Reviewer, Role, SignedIn, csrf_ok, session_for
from vigil.errors import AuthenticationError, PermissionDenied
from vigil.server.context import ServerContext
from vigil.server.settings import Settings

__all__ = [
    "SESSION_COOKIE",
    "Admin",
    "ConsoleState",
    "CsrfForm",
    "Ctx",
    "Lead",
    "LoginRequired",
    "Me",
    "console_state",
    "field",
    "need",
    "require_role",
    "server_context",
    "signed_in",
]

SESSION_COOKIE = "vigil_console"


@dataclass(frozen=True)
class ConsoleState:
    """What every console request reads, kept on the console app's state by `create_console_app`."""

    settings: Settings
    context: Callable[[], ServerContext]
    templates: Environment


class LoginRequired(Exception):
    """No valid session: GETs go to the sign-in page, other methods get a 403 page."""


def console_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def server_context(request: Request) -> ServerContext:
    return console_state(request).context()


Ctx = Annotated[ServerContext, Depends(server_context)]


async def signed_in(request: Request, ctx: Ctx) -> SignedIn:
    """Raises LoginRequired without a live session cookie."""
    try:
        return await session_for(ctx, request.cookies.get(SESSION_COOKIE, ""))
    except AuthenticationError as error:
        raise LoginRequired from error


Me = Annotated[SignedIn, Depends(signed_in)]


async def csrf_form(request: Request, me: Me) -> FormData:
    """The posted form, once its `csrf` field matches the session's token. Raises PermissionDenied."""
    form = await request.form()
    token = form.get("csrf")
    if not csrf_ok(me, token if isinstance(token, str) else None):
        raise PermissionDenied("missing or wrong CSRF token; reload the page and try again")
    return form


CsrfForm = Annotated[FormData, Depends(csrf_form)]


def require_role(me: SignedIn, role: Role) -> Reviewer:
    """Raises PermissionDenied unless the reviewer holds `role` or a higher one."""
    if not me.reviewer.role.at_least(role):
        raise PermissionDenied(f"this page needs the {role.value} role")
    return me.reviewer


def need(role: Role) -> Callable[[SignedIn], Awaitable[Reviewer]]:
    """A dependency: the signed-in reviewer, if they hold `role` or a higher one."""

    async def holding_role(me: Me) -> Reviewer:
        return require_role(me, role)

    return holding_role


Lead = Annotated[Reviewer, Depends(need(Role.LEAD))]
Admin = Annotated[Reviewer, Depends(need(Role.ADMIN))]


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
