"""The review console: FastAPI + Jinja, server-rendered, no scripts.

Mounted by `vigil serve` under /console (sharing the server's context) or run alone by `vigil console
serve`. Every page sends a strict Content-Security-Policy (no inline scripts or styles, no framing);
the session cookie is HttpOnly, SameSite=Strict and Secure (unless `VIGIL_CONSOLE_SECURE_COOKIES=false`);
every POST carries the session's CSRF token.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.middleware.base import BaseHTTPMiddleware

from vigil.console.auth import (
    LockedOut,
    Reviewer,
    Role,
    SignedIn,
    create_reviewer,
    csrf_ok,
    list_reviewers,
    mark_revealed,
    session_for,
    set_disabled,
    sign_in,
    sign_out,
)
from vigil.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
    VigilError,
)
from vigil.protocol.reports import ReportReason
from vigil.protocol.vouchers import VoucherKeyPair
from vigil.server.context import ServerContext
from vigil.server.db.safety_repositories import OPEN_STATES, QueueFilter
from vigil.server.hashlist_keys import load_voucher_keypair
from vigil.server.services import cases, evidence, hashlist, vouchers
from vigil.server.services.audit import append_audit, verify_chain
from vigil.server.services.cases import CaseAction, CaseState
from vigil.server.settings import Settings

__all__ = ["CSP", "create_console_app"]

SESSION_COOKIE = "vigil_console"
LOGIN_CSRF_COOKIE = "vigil_console_login"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_STATIC = Path(__file__).parent / "static"
ContextGetter = Callable[[], ServerContext]


class _LoginRequired(Exception):
    pass


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


def _has_voucher_key(ctx: ServerContext) -> bool:
    try:
        load_voucher_keypair(ctx.settings)
    except ValidationError:
        return False
    return True


def _match_key(match_id: int) -> int:
    """Image-match reveals share the session's revealed set with evidence items, as negative ids."""
    return -match_id


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _age(ms: int, now_ms: int) -> str:
    days = max(0, (now_ms - ms) // 86_400_000)
    return f"{days} day{'s' if days != 1 else ''}"


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("vigil.console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    return env


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
        title="Vigil review console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.add_middleware(_SecurityHeaders)
    env = _templates()

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("me", None)
        html = env.get_template(name).render(
            root=root(request), request=request, now_ms=get_ctx().clock_ms(), **values
        )
        return HTMLResponse(html, status_code=status)

    def redirect(request: Request, path: str) -> RedirectResponse:
        return RedirectResponse(root(request) + path, status_code=303)

    async def signed_in(request: Request) -> SignedIn:
        try:
            return await session_for(get_ctx(), request.cookies.get(SESSION_COOKIE, ""))
        except AuthenticationError as error:
            raise _LoginRequired from error

    async def form_with_csrf(request: Request, me: SignedIn) -> FormData:
        form = await request.form()
        token = form.get("csrf")
        if not csrf_ok(me, token if isinstance(token, str) else None):
            raise PermissionDenied("missing or wrong CSRF token; reload the page and try again")
        return form

    def need(me: SignedIn, role: Role) -> Reviewer:
        if not me.reviewer.role.at_least(role):
            raise PermissionDenied(f"this page needs the {role.value} role")
        return me.reviewer

    def field(form: FormData, name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    @app.exception_handler(_LoginRequired)
    async def _login_required(request: Request, _error: Exception) -> Response:
        if request.method != "GET":
            return render(request, "error.html", 403, title="Signed out", message="Your session has ended.")
        return redirect(request, "/login")

    @app.exception_handler(VigilError)
    async def _vigil_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, VigilError)
        status = (
            403 if isinstance(error, PermissionDenied) else 404 if isinstance(error, NotFoundError) else 400
        )
        if isinstance(error, ConflictError):
            status = 409
        return render(
            request,
            "error.html",
            status,
            title="Not allowed" if status == 403 else "Problem",
            message=error.detail,
        )

    @app.get("/static/console.css")
    async def stylesheet() -> Response:
        return Response((_STATIC / "console.css").read_bytes(), media_type="text/css")

    @app.get("/login")
    async def login_page(request: Request) -> Response:
        token = secrets.token_urlsafe(32)
        response = render(request, "login.html", csrf=token, error=None)
        _set_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=1800)
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        cookie, submitted = request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")
        if not cookie or not isinstance(submitted, str) or not secrets.compare_digest(cookie, submitted):
            return render(
                request, "error.html", 403, title="Not allowed", message="missing or wrong CSRF token"
            )
        try:
            me = await sign_in(get_ctx(), field(form, "username"), str(form.get("password") or ""))
        except AuthenticationError as error:
            message = error.detail if isinstance(error, LockedOut) else "Wrong name or password."
            return render(request, "login.html", 401, csrf=cookie, error=message)
        response = redirect(request, "/queue")
        _set_cookie(
            response, request, SESSION_COOKIE, me.token, max_age=settings.console_session_minutes * 60
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=root(request) or "/")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        me = await signed_in(request)
        await form_with_csrf(request, me)
        await sign_out(get_ctx(), me)
        response = redirect(request, "/login")
        response.delete_cookie(SESSION_COOKIE, path=root(request) or "/")
        return response

    @app.get("/")
    async def home(request: Request) -> Response:
        await signed_in(request)
        return redirect(request, "/queue")

    @app.get("/queue")
    async def queue_page(
        request: Request,
        state: str = "open",
        reason: str = "",
        priority: str = "",
        verified: str = "",
        mine: str = "",
        opened: int = -1,
    ) -> Response:
        me = await signed_in(request)
        states: tuple[str, ...] = (
            OPEN_STATES
            if state in ("", "open")
            else (tuple(s.value for s in CaseState) if state == "all" else (CaseState(state).value,))
        )
        where = QueueFilter(
            states=states,
            reason=ReportReason(reason).value if reason else None,
            priority_at_least={"urgent": 90, "high": 70, "normal": 40}.get(priority),
            verified={"yes": True, "no": False}.get(verified),
            assignee_id=me.reviewer.id if mine else None,
        )
        rows = await cases.queue(get_ctx(), where)
        reviewers = {r.id: r.username for r, _d, _l in await list_reviewers(get_ctx())}
        return render(
            request,
            "queue.html",
            me=me,
            rows=rows,
            opened=opened,
            can_open_vouchers=me.reviewer.role.at_least(Role.LEAD) and _has_voucher_key(get_ctx()),
            reviewers=reviewers,
            reasons=list(ReportReason),
            states=list(CaseState),
            current={
                "state": state,
                "reason": reason,
                "priority": priority,
                "verified": verified,
                "mine": mine,
            },
        )

    @app.get("/cases/{case_id}")
    async def case_page(request: Request, case_id: int) -> Response:
        me = await signed_in(request)
        detail = await cases.case_detail(get_ctx(), me.reviewer.actor, case_id, me.revealed)
        reviewers = await list_reviewers(get_ctx())
        names = {r.id: r.username for r, _d, _l in reviewers}
        matches = await vouchers.image_matches_for(get_ctx(), me.reviewer.actor, case_id, detail.case.subject)
        return render(
            request,
            "case.html",
            me=me,
            d=detail,
            matches=matches,
            match_revealed={m.id for m in matches if _match_key(m.id) in me.revealed},
            names=names,
            assignable=[r for r, disabled, _l in reviewers if not disabled],
            actions=list(CaseAction),
            account_age=_age(detail.facts.created_at_ms, get_ctx().clock_ms()),
        )

    @app.post("/cases/{case_id}/action")
    async def case_action(request: Request, case_id: int) -> Response:
        me = await signed_in(request)
        form = await form_with_csrf(request, me)
        action = CaseAction(field(form, "action"))
        await cases.apply_action(
            get_ctx(), me.reviewer.actor, me.reviewer.id, case_id, action, field(form, "note")
        )
        return redirect(request, f"/cases/{case_id}")

    @app.post("/cases/{case_id}/notes")
    async def case_note(request: Request, case_id: int) -> Response:
        me = await signed_in(request)
        form = await form_with_csrf(request, me)
        await cases.add_note(get_ctx(), me.reviewer.actor, me.reviewer.id, case_id, field(form, "note"))
        return redirect(request, f"/cases/{case_id}#notes")

    @app.post("/cases/{case_id}/assign")
    async def case_assign(request: Request, case_id: int) -> Response:
        me = await signed_in(request)
        form = await form_with_csrf(request, me)
        target = field(form, "assignee")
        if target == "me":
            assignee: int | None = me.reviewer.id
        else:
            need(me, Role.LEAD)  # leads assign to others and unassign
            assignee = int(target) if target.isdigit() else None
        await cases.assign(get_ctx(), me.reviewer.actor, case_id, assignee)
        return redirect(request, f"/cases/{case_id}")

    @app.post("/cases/{case_id}/reopen")
    async def case_reopen(request: Request, case_id: int) -> Response:
        me = await signed_in(request)
        await form_with_csrf(request, me)
        need(me, Role.LEAD)
        await cases.reopen(get_ctx(), me.reviewer.actor, case_id)
        return redirect(request, f"/cases/{case_id}")

    @app.post("/items/{item_id}/reveal")
    async def reveal(request: Request, item_id: int) -> Response:
        me = await signed_in(request)
        await form_with_csrf(request, me)
        case_id = await evidence.reveal_image(get_ctx(), me.reviewer.actor, item_id)
        await mark_revealed(get_ctx(), me, item_id)
        return redirect(request, f"/cases/{case_id}#item-{item_id}")

    @app.get("/items/{item_id}/image")
    async def image(request: Request, item_id: int) -> Response:
        me = await signed_in(request)
        data, mime = await evidence.evidence_image(get_ctx(), item_id, revealed=item_id in me.revealed)
        return Response(data, media_type=mime, headers={"Content-Disposition": "inline"})

    def voucher_keys() -> VoucherKeyPair:
        """Raises ValidationError when the safety team's voucher key is not configured here."""
        return load_voucher_keypair(get_ctx().settings)

    @app.post("/image-matches/{match_id}/reveal")
    async def match_reveal(request: Request, match_id: int) -> Response:
        me = await signed_in(request)
        form = await form_with_csrf(request, me)
        await vouchers.reveal_match_image(get_ctx(), me.reviewer.actor, match_id)
        await mark_revealed(get_ctx(), me, _match_key(match_id))
        case_id = field(form, "case")
        return redirect(request, f"/cases/{int(case_id)}#match-{match_id}" if case_id.isdigit() else "/queue")

    @app.get("/image-matches/{match_id}/image")
    async def match_image(request: Request, match_id: int) -> Response:
        me = await signed_in(request)
        data, mime = await vouchers.case_match_image(
            get_ctx(), match_id, voucher_keys(), revealed=_match_key(match_id) in me.revealed
        )
        return Response(data, media_type=mime, headers={"Content-Disposition": "inline"})

    @app.post("/vouchers/open")
    async def vouchers_open(request: Request) -> Response:
        me = await signed_in(request)
        await form_with_csrf(request, me)
        lead = need(me, Role.LEAD)
        result = await vouchers.open_pending_vouchers(get_ctx(), voucher_keys())
        async with get_ctx().sessions() as session, session.begin():
            await append_audit(
                session,
                now_ms=get_ctx().clock_ms(),
                actor=lead.actor,
                action="vouchers.opened",
                target="vouchers",
                details={"opened": result.opened, "cases": result.cases, "failed": len(result.failed)},
            )
        return redirect(request, f"/queue?opened={result.opened}")

    @app.get("/audit")
    async def audit_page(request: Request) -> Response:
        me = await signed_in(request)
        need(me, Role.LEAD)
        from vigil.console.standalone import recent_audit

        async with get_ctx().sessions() as session:
            check = await verify_chain(session)
        return render(request, "audit.html", me=me, check=check, entries=await recent_audit(get_ctx()))

    @app.get("/banks")
    async def banks_page(request: Request, imported: int = -1, published: int = -1) -> Response:
        me = await signed_in(request)  # every reviewer may look; leads and admins change
        from vigil.console.banks import banks_view

        view = await banks_view(get_ctx())
        return render(request, "banks.html", me=me, v=view, imported=imported, published=published)

    @app.post("/banks")
    async def banks_create(request: Request) -> Response:
        me = await signed_in(request)
        form = await form_with_csrf(request, me)
        lead = need(me, Role.LEAD)
        from vigil.console.banks import parse_kind, parse_threshold

        await hashlist.create_bank(
            get_ctx(),
            field(form, "name"),
            kind=parse_kind(field(form, "kind")),
            threshold=parse_threshold(field(form, "threshold")),
            actor=lead.actor,
        )
        return redirect(request, "/banks")

    @app.post("/banks/enabled")
    async def banks_enabled(request: Request) -> Response:
        me = await signed_in(request)
        form = await form_with_csrf(request, me)
        lead = need(me, Role.LEAD)
        await hashlist.set_bank_enabled(
            get_ctx(), field(form, "name"), field(form, "enabled") == "yes", actor=lead.actor
        )
        return redirect(request, "/banks")

    @app.post("/banks/import")
    async def banks_import(request: Request) -> Response:
        me = await signed_in(request)
        form = await form_with_csrf(request, me)
        lead = need(me, Role.LEAD)
        from vigil.console.banks import read_upload

        name, text = await read_upload(form.get("file"))
        added = await hashlist.import_entries(
            get_ctx(), field(form, "name"), text, field(form, "format"), actor=lead.actor, source=name
        )
        return redirect(request, f"/banks?imported={added}")

    @app.post("/banks/fetch")
    async def banks_fetch(request: Request) -> Response:
        me = await signed_in(request)
        form = await form_with_csrf(request, me)
        lead = need(me, Role.LEAD)
        from vigil.server.exchanges import Exchange, sync_exchange

        try:
            exchange = Exchange(field(form, "exchange"))
        except ValueError as error:
            raise ValidationError("unknown exchange") from error
        result = await sync_exchange(get_ctx(), exchange, actor=lead.actor)
        return redirect(request, f"/banks?imported={result.added}")

    @app.post("/hashlist/publish")
    async def hashlist_publish(request: Request) -> Response:
        me = await signed_in(request)
        await form_with_csrf(request, me)
        lead = need(me, Role.LEAD)
        from vigil.console.banks import publish_from_console

        out = await publish_from_console(get_ctx(), lead.actor)
        return redirect(request, f"/banks?published={out.version}")

    @app.get("/admin/reviewers")
    async def reviewers_page(request: Request) -> Response:
        me = await signed_in(request)
        need(me, Role.ADMIN)
        return render(
            request, "reviewers.html", me=me, reviewers=await list_reviewers(get_ctx()), roles=list(Role)
        )

    @app.post("/admin/reviewers")
    async def reviewers_create(request: Request) -> Response:
        me = await signed_in(request)
        form = await form_with_csrf(request, me)
        admin = need(me, Role.ADMIN)
        await create_reviewer(
            get_ctx(),
            field(form, "username"),
            str(form.get("password") or ""),
            Role(field(form, "role")),
            admin.actor,
        )
        return redirect(request, "/admin/reviewers")

    @app.post("/admin/reviewers/{reviewer_id}/disabled")
    async def reviewers_disable(request: Request, reviewer_id: int) -> Response:
        me = await signed_in(request)
        form = await form_with_csrf(request, me)
        admin = need(me, Role.ADMIN)
        await set_disabled(get_ctx(), admin, reviewer_id, field(form, "disabled") == "yes")
        return redirect(request, "/admin/reviewers")

    def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=root(request) or "/",
            secure=settings.console_secure_cookies,
            httponly=True,
            samesite="strict",
        )

    return app
