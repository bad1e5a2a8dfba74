"""Wake-ups for connected devices. The queue itself lives in the database; this only tells a device's
open WebSocket(s) that something is waiting. In one process that is an asyncio.Event per connection;
across processes the same wake-up travels over Redis pub/sub (when `VIGIL_REDIS_URL` is set).

A wake-up is best effort and never fails the send that caused it: the message is already stored, and a
device that missed a push finds it on its next fetch. Sockets of this process are woken directly, so
they keep getting pushes while Redis is down; the listener reconnects with backoff and, once back,
wakes every local socket so that what other workers stored meanwhile is pushed. The server starts
while Redis is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

__all__ = ["DeliveryHub"]

# How long start() waits for the first subscription, so that a healthy Redis is listening before the
# first request; a Redis that is down does not hold the start-up longer than this.
_FIRST_SUBSCRIBE_WAIT_S = 2.0
_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 5.0
# Publishing waits at most this long for Redis: a send answers after its wake-up was attempted.
_REDIS_SOCKET_TIMEOUT_S = 1.0
_IDLE_READ_S = 5.0
# After a failed publish, sends skip publishing this long instead of each waiting on a Redis that is down.
_PUBLISH_PAUSE_S = 1.0
log = logging.getLogger(__name__)


class DeliveryHub:
    def __init__(self, redis_url: str | None = None, namespace: str = "vigil") -> None:
        self._channel = f"{namespace}:deliver"
        self._listeners: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._redis_url = redis_url
        self._publisher: Any = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        # Published wake-ups carry this worker's id so the worker that already woke its own sockets
        # does not wake them a second time when its message comes back from Redis.
        self._origin = uuid.uuid4().hex
        self._publish_paused_until = 0.0

    async def start(self) -> None:
        if self._redis_url is None:
            return
        from redis.asyncio import Redis

        self._publisher = Redis.from_url(
            self._redis_url,
            socket_connect_timeout=_REDIS_SOCKET_TIMEOUT_S,
            socket_timeout=_REDIS_SOCKET_TIMEOUT_S,
        )
        self._task = asyncio.create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), _FIRST_SUBSCRIBE_WAIT_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._publisher is not None:
            await self._publisher.aclose()

    @property
    def uses_redis(self) -> bool:
        return self._redis_url is not None

    async def redis_reachable(self, timeout_s: float) -> bool:
        """True when this worker listens for wake-ups and Redis answers a PING within `timeout_s`
        (False when none is configured)."""
        if self._publisher is None or not self._subscribed.is_set():
            return False
        try:
            return bool(await asyncio.wait_for(self._publisher.ping(), timeout_s))
        except Exception:  # any failure to answer is "not reachable"
            return False

    async def _listen_forever(self) -> None:
        from redis.asyncio import Redis

        backoff = _BACKOFF_FIRST_S
        while True:
            client = Redis.from_url(
                self._redis_url or "",
                socket_connect_timeout=_REDIS_SOCKET_TIMEOUT_S,
                health_check_interval=10,
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if backoff > _BACKOFF_FIRST_S:
                    log.info("delivery wake-ups: Redis is back")
                    # Whatever other workers stored while we were not listening.
                    self._wake_all_local()
                backoff = _BACKOFF_FIRST_S
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=_IDLE_READ_S)
                    if message is not None:
                        self._on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis gone or restarted: listen again once it answers
                if self._subscribed.is_set() or backoff == _BACKOFF_FIRST_S:
                    log.warning("delivery wake-ups: lost Redis (%s); retrying", type(error).__name__)
                self._subscribed.clear()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        try:
            wake_up = json.loads(message["data"])
            origin, device_ids = wake_up["origin"], wake_up["devices"]
        except (ValueError, TypeError, KeyError):
            log.warning("ignoring a malformed delivery wake-up")
            return
        if origin != self._origin:
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

    def _wake_all_local(self) -> None:
        for listeners in self._listeners.values():
            for event in listeners:
                event.set()

    async def notify(self, device_ids: Iterable[str]) -> None:
        """Wakes the devices' sockets here at once and, through Redis, on other workers. Never raises:
        a lost wake-up only delays a push until the device's next fetch."""
        ids = list(device_ids)
        self._wake_local(ids)
        if self._publisher is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._publish_paused_until:
            return  # Redis was down a moment ago; other workers wake their sockets once it is back
        try:
            await self._publisher.publish(self._channel, json.dumps({"origin": self._origin, "devices": ids}))
        except Exception as error:
            self._publish_paused_until = loop.time() + _PUBLISH_PAUSE_S
            log.warning("delivery wake-up not published (%s)", type(error).__name__)
