"""Rendering console pages: the Jinja environment, HTML responses, redirects and cookies, all relative to
where the console is mounted (`/console` under `vigil serve`, `/` standalone)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from vigil.console.deps import console_state

__all__ = ["age", "redirect", "render", "root", "set_cookie", "templates"]


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(ms: int) -> str:
    minutes = max(0, ms) // 60_000
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24}h"


def age(ms: int, now_ms: int) -> str:
    days = max(0, (now_ms - ms) // 86_400_000)
    return f"{days} day{'s' if days != 1 else ''}"


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("vigil.console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    return env


def root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    state = console_state(request)
    values.setdefault("me", None)
    html = state.templates.get_template(name).render(
        root=root(request), request=request, now_ms=state.context().clock_ms(), **values
    )
    return HTMLResponse(html, status_code=status)


def redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(root(request) + path, status_code=303)


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=root(request) or "/",
        secure=console_state(request).settings.console_secure_cookies,
        httponly=True,
        samesite="strict",
    )
