"""Wake-ups for connected devices. The queue itself lives in the database; this only tells a device's
open WebSocket(s) that something is waiting. In one process that is an asyncio.Event per connection;
across processes the same wake-up travels over Redis pub/sub (when `VIGIL_REDIS_URL` is set)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable

__all__ = ["DeliveryHub"]

_CHANNEL = "vigil:deliver"
log = logging.getLogger(__name__)


class DeliveryHub:
    def __init__(self, redis_url: str | None = None) -> None:
        self._listeners: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._redis_url = redis_url
        self._redis: object | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._redis_url is None:
            return
        from redis.asyncio import Redis

        redis = Redis.from_url(self._redis_url)
        pubsub = redis.pubsub()
        await pubsub.subscribe(_CHANNEL)
        self._redis = redis
        self._task = asyncio.create_task(self._listen(pubsub))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._redis is not None:
            await self._redis.aclose()  # type: ignore[attr-defined]

    async def _listen(self, pubsub: object) -> None:
        async for message in pubsub.listen():  # type: ignore[attr-defined]
            if message.get("type") != "message":
                continue
            try:
                device_ids = json.loads(message["data"])
            except (ValueError, TypeError):
                log.warning("ignoring a malformed delivery wake-up")
                continue
            self._wake_local(device_ids)

    def subscribe(self, device_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._listeners[device_id].add(event)
        return event

    def unsubscribe(self, device_id: str, event: asyncio.Event) -> None:
        listeners = self._listeners.get(device_id)
        if listeners is not None:
            listeners.discard(event)
            if not listeners:
                del self._listeners[device_id]

    def _wake_local(self, device_ids: Iterable[str]) -> None:
        for device_id in device_ids:
            for event in self._listeners.get(device_id, ()):
                event.set()

    async def notify(self, device_ids: Iterable[str]) -> None:
        ids = list(device_ids)
        if self._redis is not None:
            await self._redis.publish(_CHANNEL, json.dumps(ids))  # type: ignore[attr-defined]
        else:
            self._wake_local(ids)
