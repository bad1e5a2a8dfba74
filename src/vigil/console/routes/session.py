"""Signing in and out, the home redirect and the stylesheet."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import APIRouter, Request, Response

from vigil.console.auth import LockedOut, sign_in, sign_out
from vigil.console.deps import SESSION_COOKIE, CsrfForm, Ctx, Me, console_state, field
from vigil.console.pages import redirect, render, root, set_cookie
from vigil.errors import AuthenticationError

__all__ = ["LOGIN_CSRF_COOKIE", "router"]

LOGIN_CSRF_COOKIE = "vigil_console_login"
_STATIC = Path(__file__).parent.parent / "static"

router = APIRouter()


@router.get("/static/console.css")
async def stylesheet() -> Response:
    return Response((_STATIC / "console.css").read_bytes(), media_type="text/css")


@router.get("/static/keys.js")
async def keys_js() -> Response:
    return Response((_STATIC / "keys.js").read_bytes(), media_type="text/javascript")


@router.get("/login")
async def login_page(request: Request) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", csrf=token, error=None)
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=1800)
    return response


@router.post("/login")
async def login(request: Request, ctx: Ctx) -> Response:
    # Before sign-in there is no session token: the CSRF token is a double-submit cookie.
    form = await request.form()
    cookie, submitted = request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")
    if not cookie or not isinstance(submitted, str) or not secrets.compare_digest(cookie, submitted):
        return render(request, "error.html", 403, title="Not allowed", message="missing or wrong CSRF token")
    try:
        me = await sign_in(ctx, field(form, "username"), str(form.get("password") or ""))
    except AuthenticationError as error:
        message = error.detail if isinstance(error, LockedOut) else "Wrong name or password."
        return render(request, "login.html", 401, csrf=cookie, error=message)
    response = redirect(request, "/queue")
    minutes = console_state(request).settings.console_session_minutes
    set_cookie(response, request, SESSION_COOKIE, me.token, max_age=minutes * 60)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=root(request) or "/")
    return response


@router.post("/logout")
async def logout(request: Request, ctx: Ctx, me: Me, _form: CsrfForm) -> Response:
    await sign_out(ctx, me)
    response = redirect(request, "/login")
    response.delete_cookie(SESSION_COOKIE, path=root(request) or "/")
    return response


@router.get("/")
async def home(request: Request, _me: Me) -> Response:
    return redirect(request, "/queue")
