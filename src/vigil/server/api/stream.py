"""WebSocket push: drain the device's queue, then wait for wake-ups; acks come back on the same socket.

Server frames: `{"type": "deliveries", "messages": [Delivery...]}` and `{"type": "error", ...}`.
Client frames: `{"type": "ack", "delivery_ids": [...]}`. Entries are deleted only on ack, so a dropped
connection redelivers everything unacknowledged on the next one. At most MAX_IN_FLIGHT entries are
unacknowledged on one socket: a client that stops acking stops receiving.
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


MAX_IN_FLIGHT = 500


async def _read_acks(
    websocket: WebSocket,
    ctx: ServerContext,
    device: AuthenticatedDevice,
    in_flight: set[int],
    wake: asyncio.Event,
) -> None:
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
            request = AckRequest.model_validate({"delivery_ids": frame.get("delivery_ids")})
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
        in_flight.difference_update(request.delivery_ids)
        wake.set()


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
    # Sent but not yet acknowledged. Not an "after id N" cursor: on PostgreSQL, ids are assigned at insert
    # but become visible at commit, so a lower id can appear after a higher one was already sent.
    in_flight: set[int] = set()
    reader = asyncio.create_task(_read_acks(websocket, ctx, device, in_flight, wake))
    try:
        while not reader.done():
            wake.clear()
            while len(in_flight) < MAX_IN_FLIGHT:
                batch = await fetch_pending(
                    ctx,
                    device,
                    limit=min(ctx.settings.fetch_batch, MAX_IN_FLIGHT - len(in_flight)),
                    skip=in_flight,
                )
                if not batch.messages:
                    break
                in_flight.update(m.delivery_id for m in batch.messages)
                await websocket.send_json(
                    {"type": "deliveries", "messages": [m.model_dump(mode="json") for m in batch.messages]}
                )
                if not batch.more:
                    break
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
