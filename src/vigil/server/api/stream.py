"""WebSocket push: drain the device's queue, then wait for wake-ups; acks come back on the same socket.

Server frames: `{"type": "deliveries", "messages": [Delivery...]}` and `{"type": "error", ...}`.
Client frames: `{"type": "ack", "delivery_ids": [...]}`. Entries are deleted only on ack, so a dropped
connection redelivers everything unacknowledged on the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pydantic
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from vigil.errors import AuthenticationError
from vigil.protocol.wire import AckRequest
from vigil.server.api.deps import bearer_credential
from vigil.server.context import ServerContext
from vigil.server.services.accounts import AuthenticatedDevice, authenticate
from vigil.server.services.messaging import acknowledge, fetch_pending

router = APIRouter(tags=["stream"])

POLICY_VIOLATION_CLOSE = 4401
MAX_FRAME_BYTES = 64 * 1024


async def _read_acks(websocket: WebSocket, ctx: ServerContext, device: AuthenticatedDevice) -> None:
    while True:
        try:
            text = await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            return
        if len(text) > MAX_FRAME_BYTES:
            await websocket.send_json({"type": "error", "error": "too_large", "detail": "frame too large"})
            continue
        try:
            frame = json.loads(text)
            if not isinstance(frame, dict) or frame.get("type") != "ack":
                raise ValueError("unknown frame type")
            request = AckRequest(delivery_ids=frame.get("delivery_ids"))
        except (ValueError, pydantic.ValidationError):
            await websocket.send_json(
                {
                    "type": "error",
                    "error": "invalid_request",
                    "detail": "expected {type: ack, delivery_ids: [...]}",
                }
            )
            continue
        await acknowledge(ctx, device, request)


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    ctx: ServerContext = websocket.app.state.context
    try:
        device = await authenticate(ctx, bearer_credential(websocket.headers.get("authorization")))
    except AuthenticationError:
        await websocket.close(code=POLICY_VIOLATION_CLOSE)
        return
    await websocket.accept()
    wake = ctx.delivery.subscribe(device.device_id)
    reader = asyncio.create_task(_read_acks(websocket, ctx, device))
    last_sent = 0
    try:
        while not reader.done():
            wake.clear()
            more = True
            while more:
                batch = await fetch_pending(ctx, device, after=last_sent, limit=ctx.settings.fetch_batch)
                if batch.messages:
                    await websocket.send_json(
                        {
                            "type": "deliveries",
                            "messages": [m.model_dump(mode="json") for m in batch.messages],
                        }
                    )
                    last_sent = batch.messages[-1].delivery_id
                more = batch.more
            waiter = asyncio.create_task(wake.wait())
            await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        ctx.delivery.unsubscribe(device.device_id, wake)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
