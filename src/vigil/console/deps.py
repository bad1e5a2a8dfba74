"""The console's `Annotated` dependencies: the server context, the signed-in reviewer, a role check and a
CSRF-checked form. A route lists what it needs in the order the checks run: session, then CSRF, then
role (FastAPI solves dependencies in signature order and caches each one per request)."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from jinja2 import Environment
from starlette.datastructures import FormData

from vigil.console.auth import Reviewer, Role, SignedIn, csrf_ok, session_for
from vigil.errors import AuthenticationError, PermissionDenied, ValidationError
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
    "bounded_path_ids",
    "choice",
    "console_state",
    "field",
    "form_id",
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


_Choice = TypeVar("_Choice", bound=enum.Enum)


def choice(form: FormData, name: str, kind: type[_Choice]) -> _Choice:
    """The form's `name` as one of `kind`'s values. Raises ValidationError naming the field (a 400 page:
    a value no form offers is a malformed request, not a server error)."""
    try:
        return kind(field(form, name))
    except ValueError:
        raise ValidationError(f"{name}: not one of the choices") from None


# Every numeric id in a console URL names a row; the id columns are 32-bit on PostgreSQL (64-bit at most
# on SQLite), and a larger number reached the driver as an overflow (a 500).
MAX_PATH_ID = 2**31 - 1


async def bounded_path_ids(request: Request) -> None:
    """An app-wide dependency: refuses a numeric path parameter beyond any row id before a route looks it
    up. Raises ValidationError naming the parameter."""
    for name, value in request.path_params.items():
        digits = str(value).removeprefix("-")
        if digits.isdigit() and (len(digits) > 10 or int(digits) > MAX_PATH_ID):
            raise ValidationError(f"{name}: no such id")


def form_id(value: str, name: str) -> int:
    """A row id posted in a form field (`name` is the field, for the error). Raises ValidationError for
    anything but a number that can name a row."""
    if not value.isdigit() or len(value) > 10 or not 0 < int(value) <= MAX_PATH_ID:
        raise ValidationError(f"{name}: not a valid id")
    return int(value)
