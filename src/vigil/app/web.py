"""The local app's pages: FastAPI + Jinja, server-rendered; one small script (static/app.js) refreshes the
open page's timeline and conversation list when the live-update stream (`/events`, server-sent events)
says something changed, and sends on Enter. The browser gets HTML and decrypted images, never keys.

`create_local_app` builds it around one `AppSession`; `vigil app` (vigil.cli.messenger) serves it on
127.0.0.1 behind `LaunchGuard`."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from fastapi import FastAPI, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from vigil.app.account import add_account_routes
from vigil.app.people import add_people_routes
from vigil.app.session import COULD_NOT_SEND, AppSession
from vigil.app.view import build_timeline, conversation_rows, keep_image, kept_image
from vigil.client.events import GROUP_PREFIX, group_id_of, now_ms
from vigil.client.reporting import DEFAULT_CONTEXT, HISTORY_SCAN, select_records
from vigil.client.safety import ImageWithheldError
from vigil.client.verification import VerificationRequired
from vigil.errors import (
    ConflictError,
    NotFoundError,
    PermissionDenied,
    PolicyViolation,
    ValidationError,
    VigilError,
)
from vigil.protocol.reports import ReportReason
from vigil.safety.policy import NEUTRAL_REFUSAL

__all__ = ["MAX_IMAGE_BYTES", "create_local_app"]

MAX_IMAGE_BYTES: Final = 10 * 1024 * 1024
SSE_KEEPALIVE_SECONDS: Final = 15.0
MINORS_RULES: Final = (
    "People under 18 can only get messages from people they have accepted. Someone you don't know has to "
    "send a request first: it has no text and no pictures, just their name. Accept only people you know "
    "in real life. If a request worries you, choose Block, or Report to tell Vigil's safety team. Nobody "
    "is told that you ignored or blocked them. Groups follow the same rule: an adult can only be in a "
    "group with you if you accepted them."
)


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("vigil.app", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clock"] = lambda ms: dt.datetime.fromtimestamp(ms / 1000).strftime("%H:%M")
    env.filters["group_id"] = group_id_of
    return env


def create_local_app(session: AppSession) -> FastAPI:
    templates = _templates()
    pending_sends: dict[
        str, tuple[str, bytes, str, str, str]
    ] = {}  # token -> (conv, data, mime, name, caption)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await session.close()

    app = FastAPI(title="Vigil", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.mount("/static", StaticFiles(packages=[("vigil.app", "static")]), name="static")

    def page(template: str, status: int = 200, **values: Any) -> HTMLResponse:
        flash = None
        if not template.startswith("_"):  # a live-refreshed fragment must not take the next page's message
            flash, session.flash = session.flash, None
        values.setdefault("current", None)
        html = templates.get_template(template).render(
            s=session,
            flash=flash,
            minors_rules=MINORS_RULES,
            me=session.client.username if session.client else None,
            rows=conversation_rows(session.view, session.contacts, session.group_names)
            if session.client
            else [],
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def back(path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)

    def fail(error: VigilError) -> None:
        detail = error.detail
        if isinstance(error, VerificationRequired):
            names = ", ".join(error.usernames)
            detail = (
                f"{names}'s keys changed since you verified them. Nothing was sent. Check with them, then "
                "open their details to accept the new keys or verify them again."
            )
        elif isinstance(error, PolicyViolation) and detail == NEUTRAL_REFUSAL:
            detail = (
                "You can't message this account yet. If you know them, send a contact request "
                "(New chat → Ask to connect); you can write once they accept."
            )
        session.flash = detail

    @app.exception_handler(VigilError)
    async def _vigil_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, VigilError)
        fail(error)
        if request.method == "GET":
            status = 400
            if isinstance(error, NotFoundError):
                status = 404
            elif isinstance(error, PermissionDenied):
                status = 403
            elif isinstance(error, ConflictError):
                status = 409
            return page("error.html", status, message=session.flash)
        return back(request.headers.get("referer", "/") if _same_app(request) else "/")

    def _same_app(request: Request) -> bool:
        referer = request.headers.get("referer", "")
        return referer.startswith(str(request.base_url))

    # ---- signing in --------------------------------------------------------------------------

    @app.get("/")
    async def home() -> Response:
        if session.client is None:
            return page("unlock.html", registered=session.registered, server=session.server_url or "")
        if session.suspended:  # nothing but the account page works: say why, and offer the appeal
            return back("/account")
        return page("home.html")

    @app.post("/unlock")
    async def unlock(passphrase: Annotated[str, Form()]) -> Response:
        try:
            await session.unlock(passphrase)
        except VigilError:
            return page(
                "unlock.html",
                403,
                registered=True,
                server="",
                error="That passphrase did not open this profile.",
            )
        await session.poll()
        return back("/")

    @app.post("/register")
    async def register(
        username: Annotated[str, Form()],
        birth_date: Annotated[str, Form()],
        passphrase: Annotated[str, Form()],
        server: Annotated[str, Form()] = "",
    ) -> Response:
        try:
            born = dt.date.fromisoformat(birth_date)
        except ValueError:
            return page(
                "unlock.html",
                400,
                registered=False,
                server=server,
                error="Give your birth date as YYYY-MM-DD.",
            )
        if len(passphrase) < 8:
            return page(
                "unlock.html",
                400,
                registered=False,
                server=server,
                error="Use a passphrase of 8 characters or more.",
            )
        url = server or session.server_url or "http://127.0.0.1:8000"
        try:
            await session.register(url, username.strip().lower(), born, passphrase)
        except VigilError as error:
            return page("unlock.html", 400, registered=False, server=server, error=error.detail)
        await session.poll()
        return back("/")

    # ---- live updates ---------------------------------------------------------------------------

    @app.get("/events")
    async def events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            async with session.subscription() as queue:
                yield b"retry: 1000\n\n"
                while not await request.is_disconnected():
                    try:
                        what = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield b": keepalive\n\n"
                        continue
                    yield f"data: {what}\n\n".encode()

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.get("/sidebar")
    async def sidebar() -> Response:
        session.require()
        return page("_sidebar.html")

    # ---- conversations ----------------------------------------------------------------------------

    def conversation_name(conversation: str) -> str:
        gid = group_id_of(conversation)
        return session.group_name(gid) if gid else conversation

    def timeline(conversation: str) -> list[Any]:
        client = session.require()
        return build_timeline(
            client.history(conversation, 200), session.view, conversation, client.username, blur=session.blur
        )

    @app.get("/c/{conversation}")
    async def conversation_page(conversation: str) -> Response:
        session.require()
        session.opened(conversation)
        return page(
            "conversation.html",
            current=conversation,
            name=conversation_name(conversation),
            items=timeline(conversation),
            is_group=group_id_of(conversation) is not None,
        )

    @app.get("/c/{conversation}/timeline")
    async def timeline_fragment(conversation: str) -> Response:
        session.require()
        session.opened(conversation)
        return page("_timeline.html", current=conversation, items=timeline(conversation))

    @app.post("/c/{conversation}/send")
    async def send(
        conversation: str,
        text: Annotated[str, Form()] = "",
        image: UploadFile | None = None,
        confirm: Annotated[str, Form()] = "",
    ) -> Response:
        client = session.require()
        data = await image.read(MAX_IMAGE_BYTES + 1) if image is not None and image.filename else b""
        if len(data) > MAX_IMAGE_BYTES:
            raise ValidationError("images up to 10 MB can be sent")
        if not data and not text.strip():
            session.flash = "Type a message or choose an image first."
            return back(f"/c/{conversation}")
        if data:
            mime = (
                image.content_type if image is not None and image.content_type else "application/octet-stream"
            )
            if not mime.startswith("image/"):
                raise ValidationError("only images can be attached here")
            name = image.filename if image is not None and image.filename else "image"
            score = await session.score(data)
            if session.is_minor and score is not None and score.flagged(session.view.settings.threshold):
                token = secrets.token_urlsafe(16)
                pending_sends[token] = (conversation, data, mime, name, text)
                return page(
                    "confirm_send.html",
                    current=conversation,
                    token=token,
                    name=conversation_name(conversation),
                )
            await _send_image(conversation, data, mime, name, text)
        else:
            async with session.lock:
                await _refresh_before_send(conversation)
                gid = group_id_of(conversation)
                if gid:
                    await client.groups.send_text(gid, text)
                else:
                    await client.send_text(conversation, text)
                session.view.touch(conversation, now_ms(), text, unread=False)
                session.view.save(client.store)
        session.changed()
        return back(f"/c/{conversation}")

    async def _refresh_before_send(conversation: str) -> None:
        client = session.require()
        gid = group_id_of(conversation)
        if gid:
            await client.groups.member_devices(gid, refresh=True)
        else:
            await client.refresh_devices(conversation)
        warnings = client.verification.take_warnings()
        for warning in warnings:
            session._key_change(warning)
        if warnings:  # kept even when the send that found them is then held back
            session.view.save(client.store)

    async def _send_image(conversation: str, data: bytes, mime: str, name: str, caption: str) -> None:
        client = session.require()
        gid = group_id_of(conversation)
        async with session.lock:
            try:
                await _refresh_before_send(conversation)
                if gid:
                    sent = await client.groups.send_attachment(gid, data, mime, name=name, caption=caption)
                else:
                    sent = await client.send_attachment(conversation, data, mime, name=name, caption=caption)
            except ImageWithheldError:
                session.view.notice(conversation, now_ms(), "withheld", COULD_NOT_SEND)
                session.view.save(client.store)
                return
            keep_image(client.store, session.view, client.username, sent.message_id, data, mime)
            session.view.touch(conversation, now_ms(), caption or "[image]", unread=False)
            session.view.save(client.store)

    @app.post("/send/confirm")
    async def confirm_send(token: Annotated[str, Form()], choice: Annotated[str, Form()]) -> Response:
        pending = pending_sends.pop(token, None)
        if pending is None:
            raise ValidationError("that image is no longer waiting to be sent")
        conversation, data, mime, name, caption = pending
        if choice == "send":
            await _send_image(conversation, data, mime, name, caption)
            session.changed()
        return back(f"/c/{conversation}")

    @app.get("/img/{sender}/{message_id}")
    async def image(sender: str, message_id: str) -> Response:
        client = session.require()
        data = kept_image(client.store, sender, message_id)
        mime = session.view.mimes.get(message_id)
        if data is None or mime is None or message_id in session.view.withheld:
            return Response(status_code=404)
        return Response(data, media_type=mime)

    @app.get("/c/{conversation}/reveal/{message_id}")
    async def reveal_page(conversation: str, message_id: str) -> Response:
        session.require()
        return page(
            "reveal.html", current=conversation, message_id=message_id, name=conversation_name(conversation)
        )

    @app.post("/c/{conversation}/reveal/{message_id}")
    async def reveal(conversation: str, message_id: str, sure: Annotated[str, Form()] = "") -> Response:
        client = session.require()
        if sure == "yes":
            session.view.revealed.add(message_id)
            session.view.save(client.store)
        return back(f"/c/{conversation}")

    # ---- people, contact requests, blocks ------------------------------------------------------

    @app.get("/new")
    async def new_page() -> Response:
        session.require()
        return page("new.html")

    @app.post("/contacts/request")
    async def request_contact(username: Annotated[str, Form()]) -> Response:
        async with session.lock:
            await session.require().request_contact(username.strip().lower())
        await session.poll()
        session.flash = f"Asked {username} to connect. You can write once they accept."
        return back("/")

    @app.post("/contacts/open")
    async def open_chat(username: Annotated[str, Form()]) -> Response:
        return back(f"/c/{username.strip().lower()}")

    @app.post("/requests/{request_id}/{answer}")
    async def answer_request(request_id: int, answer: str) -> Response:
        client = session.require()
        async with session.lock:
            match answer:
                case "accept":
                    answered = await client.accept_request(request_id)
                    session.flash = f"You and {answered.requester} are connected."
                case "ignore":
                    await client.ignore_request(request_id)
                case "block":
                    answered = await client.block_request(request_id)
                    session.flash = f"Blocked {answered.requester}."
                case "report":
                    request = next((r for r in session.requests.incoming if r.id == request_id), None)
                    if request is None:
                        raise ValidationError("no such request")
                    accepted = await client.report_account(
                        request.requester, ReportReason.GROOMING, block=True
                    )
                    await client.block_request(request_id)
                    session.flash = f"Reported and blocked {accepted.reported} (case #{accepted.case_id})."
                case _:
                    raise ValidationError("answer must be accept, ignore, block or report")
        await session.poll()
        return back("/")

    add_people_routes(app, session, page, back)

    # ---- groups -----------------------------------------------------------------------------------

    @app.post("/groups")
    async def create_group(name: Annotated[str, Form()], members: Annotated[str, Form()] = "") -> Response:
        client = session.require()
        usernames = [m.strip().lower() for m in members.replace(",", " ").split() if m.strip()]
        async with session.lock:
            info = await client.groups.create(usernames, name=name.strip())
            session.group_names[info.group_id] = name.strip() or "(unnamed group)"
            session.view.notice(
                GROUP_PREFIX + info.group_id, now_ms(), "group", f"You created “{name.strip()}”"
            )
            session.view.save(client.store)
        return back(f"/c/{GROUP_PREFIX}{info.group_id}")

    @app.get("/g/{group_id}")
    async def group_page(group_id: str) -> Response:
        client = session.require()
        async with session.lock:
            info = await client.groups.info(group_id)
        return page(
            "group.html",
            current=GROUP_PREFIX + group_id,
            group_id=group_id,
            name=session.group_name(group_id),
            members=[
                (m.username, m.role.value, client.verification.state(m.username).value) for m in info.members
            ],
        )

    @app.post("/g/{group_id}/{action}")
    async def group_action(group_id: str, action: str, value: Annotated[str, Form()] = "") -> Response:
        client = session.require()
        value = value.strip()
        async with session.lock:
            match action:
                case "rename":
                    await client.groups.set_meta(group_id, value)
                    session.group_names[group_id] = value
                    session.view.notice(
                        GROUP_PREFIX + group_id, now_ms(), "group", f"You renamed the group “{value}”"
                    )
                case "add":
                    await client.groups.add_member(group_id, value.lower())
                    session.view.notice(GROUP_PREFIX + group_id, now_ms(), "group", f"You added {value}")
                case "remove":
                    await client.groups.remove_member(group_id, value.lower())
                    session.view.notice(GROUP_PREFIX + group_id, now_ms(), "group", f"You removed {value}")
                case "leave":
                    await client.groups.leave(group_id)
                    return back("/")
                case _:
                    raise ValidationError(f"unknown action {action!r}")
            session.view.save(client.store)
        return back(f"/g/{group_id}")

    # ---- reports ----------------------------------------------------------------------------------

    def to_share(conversation: str, message_id: str) -> list[dict[str, Any]]:
        client = session.require()
        return select_records(client.history(conversation, HISTORY_SCAN), message_id, DEFAULT_CONTEXT)

    @app.get("/c/{conversation}/report/{message_id}")
    async def report_page(conversation: str, message_id: str) -> Response:
        records = to_share(conversation, message_id)
        shared = [
            {
                "message_id": r["payload"]["message_id"],
                "sender": r["payload"]["sender"],
                "text": r["payload"].get("body", ""),
                "image": r["payload"].get("attachment") is not None
                and r["payload"]["message_id"] in session.view.mimes,
                "at_ms": int(r.get("server_ts_ms") or r["payload"].get("sent_at_ms") or 0),
            }
            for r in reversed(records)
        ]
        reported = records[0]["payload"]["sender"]
        return page(
            "report.html",
            current=conversation,
            message_id=message_id,
            shared=shared,
            reported=reported,
            reasons=[(r.value, r.label) for r in ReportReason],
        )

    @app.post("/c/{conversation}/report/{message_id}")
    async def send_report(
        conversation: str,
        message_id: str,
        reason: Annotated[str, Form()],
        note: Annotated[str, Form()] = "",
        block: Annotated[str, Form()] = "",
    ) -> Response:
        client = session.require()
        try:
            chosen = ReportReason(reason)
        except ValueError:
            raise ValidationError(f"unknown reason {reason!r}") from None
        attachments = {}
        for record in to_share(conversation, message_id):
            kept = kept_image(
                client.store, str(record["payload"]["sender"]), str(record["payload"]["message_id"])
            )
            if kept is not None:
                attachments[str(record["payload"]["message_id"])] = kept
        async with session.lock:
            accepted = await client.report(
                message_id,
                chosen,
                conversation=conversation,
                note=note.strip() or None,
                context=DEFAULT_CONTEXT,
                attachments=attachments,
                block=block == "yes",
            )
        verified = sum(accepted.verified)
        session.flash = (
            f"Thank you. Your report went to Vigil's safety team as case #{accepted.case_id}: {verified} of "
            f"{len(accepted.verified)} messages were verified as really sent by their senders"
            + (f", and {accepted.reported} is blocked." if accepted.blocked else ".")
        )
        return back(f"/c/{conversation}")

    @app.post("/notices/{notice_id}/{action}")
    async def notice_action(notice_id: int, action: str) -> Response:
        client = session.require()
        notice = next((n for n in session.safety_notices if n.id == notice_id), None)
        if notice is None:
            raise ValidationError("no such safety notice")
        async with session.lock:
            match action:
                case "block":
                    await client.block(notice.subject)
                    session.flash = f"Blocked {notice.subject}."
                case "report":
                    accepted = await client.report_account(notice.subject, ReportReason.GROOMING, block=True)
                    session.flash = f"Reported and blocked {notice.subject} (case #{accepted.case_id})."
                case _:
                    raise ValidationError(f"unknown action {action!r}")
        return back("/")

    add_account_routes(app, session, page, back)

    # ---- settings ---------------------------------------------------------------------------------

    @app.get("/settings")
    async def settings_page() -> Response:
        session.require()
        return page("settings.html", classifier=session.scorer is not None)

    @app.post("/settings")
    async def save_settings(
        blur: Annotated[str, Form()] = "", threshold: Annotated[str, Form()] = ""
    ) -> Response:
        client = session.require()
        try:
            value = float(threshold) if threshold else session.view.settings.threshold
        except ValueError:
            raise ValidationError("the threshold is a number between 0 and 1") from None
        if not 0.0 < value <= 1.0:
            raise ValidationError("the threshold is a number between 0 and 1")
        session.view.settings.threshold = value
        session.view.settings.blur_for_adult = blur == "on"
        session.view.save(client.store)
        session.flash = "Settings saved."
        return back("/settings")

    return app
