"""The contact page (`/people/NAME`): the safety number, emoji (SAS) verification step by step, accepting a
verified contact's new keys, block and unblock. The page reloads when its verification state changes
(`/people/NAME/sas-state`, polled by static/app.js on live events)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vigil.app.session import AppSession, SasView
from vigil.errors import ValidationError
from vigil.protocol.verification import SasCancelCode

__all__ = ["add_people_routes"]


def add_people_routes(
    app: FastAPI,
    session: AppSession,
    page: Callable[..., HTMLResponse],
    back: Callable[[str], RedirectResponse],
) -> None:
    @app.get("/people/{username}")
    async def person(username: str) -> Response:
        client = session.require()
        async with session.lock:
            number = await client.verification.safety_number(username)
        return page(
            "person.html",
            current=username,
            username=username,
            number=number.groups,
            state=client.verification.state(username).value,
            sas=session.sas.get(username),
            sas_state=sas_state(username),
            blocked=username in client.blocks,
        )

    def sas_state(username: str) -> str:
        flow = session.sas.get(username)
        state = session.require().verification.state(username).value
        return f"{state}:{flow.transaction_id}:{flow.state}" if flow else state

    @app.get("/people/{username}/sas-state")
    async def person_sas_state(username: str) -> Response:
        return Response(sas_state(username), media_type="text/plain")

    @app.post("/people/{username}/{action}")
    async def person_action(username: str, action: str) -> Response:
        client = session.require()
        async with session.lock:
            match action:
                case "sas":
                    transaction = await client.verification.start_sas(username)
                    session.sas[username] = SasView(transaction, "", "waiting")
                case "sas-accept":
                    flow = session.sas[username]
                    await client.verification.accept_sas(flow.transaction_id)
                    flow.state = "waiting"
                case "sas-match":
                    flow = session.sas[username]
                    session.sas_result(await client.verification.confirm_sas(flow.transaction_id), username)
                case "sas-mismatch":
                    flow = session.sas[username]
                    await client.verification.cancel_sas(flow.transaction_id, SasCancelCode.MISMATCHED_SAS)
                    flow.state = "cancelled"
                    flow.reason = "the emoji did not match"
                case "acknowledge":
                    client.verification.acknowledge_key_change(username)
                case "block":
                    await client.block(username)
                    session.flash = f"Blocked {username}."
                case "unblock":
                    await client.unblock(username)
                case _:
                    raise ValidationError(f"unknown action {action!r}")
            session.view.save(client.store)
        return back(f"/people/{username}")
