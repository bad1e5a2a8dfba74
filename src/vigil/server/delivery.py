"""Pushes and wake-ups for connected devices. The queue itself lives in the database; this tells a
device's open WebSocket(s) what is waiting. Each connection has a `Mailbox`:
- `hand_off` (a committed send) puts the committed entries themselves in the recipients' mailboxes, so
  the socket pushes them without reading the queue back;
- `notify` (or a hand-off too large for Redis, or one that could not travel) only marks the mailbox
  `needs_fetch`: the socket reads the queue, which holds everything committed.
In one process that is direct. Across processes it travels over Redis pub/sub (when `VIGIL_REDIS_URL`
is set); with Redis, hand-offs reach this worker's own sockets through Redis too, so that every socket
sees hand-offs in one order (Redis's publish order), which keeps each sender device's messages in order
when its consecutive sends went through different workers. The same channel carries credential
invalidations (`vigil.server.authcache`).

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
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from vigil.server.authcache import AuthCache

__all__ = ["DeliveryHub", "Mailbox", "Push", "pushes_of_one_message"]

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
# A hand-off whose wire form is larger than this travels over Redis as a bare wake-up (the sockets read
# the queue): pub/sub messages are copied to every worker.
MAX_HANDOFF_BYTES = 512 * 1024
# A mailbox holding more than this has a socket that is not keeping up: it is emptied and told to fetch.
MAX_MAILBOX_ENTRIES = 1000
log = logging.getLogger(__name__)


class Push(NamedTuple):
    """One queue entry ready for a socket: its id and its wire form (a `Delivery` as JSON) serialised
    once, so that a frame is a join of strings and a group message bound for 500 sockets is not
    encoded 500 times."""

    delivery_id: int
    json: str

    @classmethod
    def of(cls, delivery: Mapping[str, Any]) -> Push:
        """From a wire dict (`services.messaging.wire_delivery`)."""
        return cls(delivery["delivery_id"], json.dumps(delivery, separators=(",", ":")))


def pushes_of_one_message(delivery: Mapping[str, Any], entry_ids: Iterable[int]) -> list[Push]:
    """The pushes of one message's entries that differ only in `delivery_id` (a group message's
    entries: one shared body): the rest of the wire form is serialised once for all of them."""
    rest = json.dumps({k: v for k, v in delivery.items() if k != "delivery_id"}, separators=(",", ":"))
    tail = rest[1:]  # the fields after `delivery_id`, and the closing brace
    return [Push(entry_id, f'{{"delivery_id":{entry_id:d},{tail}') for entry_id in entry_ids]


def frame_of(pushes: Iterable[Push]) -> str:
    """The server's push frame: `{"type": "deliveries", "messages": [Delivery...]}`."""
    return '{"type":"deliveries","messages":[' + ",".join(p.json for p in pushes) + "]}"


@dataclass(slots=True, eq=False)
class Mailbox:
    """One WebSocket's inbox. `handed` are pushes (`Push`) committed after the socket subscribed;
    `needs_fetch` says the queue may hold entries not in `handed` (a wake-up, a dropped hand-off, a fresh
    connection). The socket takes both with `take`."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    handed: list[Push] = field(default_factory=list)
    needs_fetch: bool = True
    # When the socket last took from it (monotonic seconds): the idle read looks for a period without any.
    last_take: float = field(default_factory=time.monotonic)

    def put(self, deliveries: Iterable[Push]) -> None:
        self.handed.extend(deliveries)
        if len(self.handed) > MAX_MAILBOX_ENTRIES:
            self.handed.clear()
            self.needs_fetch = True
        self.wake.set()

    def mark_fetch(self) -> None:
        self.needs_fetch = True
        self.wake.set()

    def take(self) -> tuple[bool, list[Push]]:
        """(needs_fetch, handed) since the last take; empties the mailbox."""
        self.wake.clear()
        self.last_take = time.monotonic()
        fetch, handed = self.needs_fetch, self.handed
        self.needs_fetch, self.handed = False, []
        return fetch, handed


class DeliveryHub:
    def __init__(self, redis_url: str | None = None, namespace: str = "vigil") -> None:
        self._channel = f"{namespace}:deliver"
        self._listeners: dict[str, set[Mailbox]] = defaultdict(set)
        # Set by ServerContext.open: emptied when another worker says credentials changed.
        self.credentials: AuthCache[Any] | None = None
        self._redis_url = redis_url
        self._publisher: Any = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        # Published wake-ups carry this worker's id so the worker that already woke its own sockets
        # does not wake them a second time when its message comes back from Redis.
        self._origin = uuid.uuid4().hex
        self._publish_paused_until = 0.0
        # Devices whose hand-off or wake-up Redis did not take: the next publish (or a retry once the
        # pause is over) carries a wake-up for them, so other workers' sockets read the queue.
        self._unannounced: set[str] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._pending_tasks: set[asyncio.Task[bool]] = set()

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
        if self._retry is not None:
            self._retry.cancel()
        for pending in list(self._pending_tasks):
            pending.cancel()
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
                # Whatever other workers stored, and any credential change they announced, while we were
                # not listening (also on the first subscription: sockets may have connected before it).
                self._wake_all_local()
                if self.credentials is not None:
                    self.credentials.clear()
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
            published = json.loads(message["data"])
            origin = published["origin"]
            handed: dict[str, list[dict[str, Any]]] = published.get("handed", {})
            device_ids: list[str] = published.get("devices", [])
            users: list[int] = published.get("invalidate_users", [])
            devices: list[str] = published.get("invalidate_devices", [])
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("ignoring a malformed delivery wake-up")
            return
        if (users or devices) and self.credentials is not None and origin != self._origin:
            self.credentials.invalidate_users(users)
            self.credentials.invalidate_devices(devices)
        # Hand-offs come back to their own worker too (one order for every socket: see the module doc).
        for device_id, deliveries in handed.items():
            listeners = self._listeners.get(device_id)
            if listeners:
                pushes = [Push.of(d) for d in deliveries]
                for mailbox in listeners:
                    mailbox.put(pushes)
        if origin != self._origin:
            self._wake_local(device_ids)

    def subscribe(self, device_id: str) -> Mailbox:
        """A mailbox that starts with `needs_fetch` set (the socket drains the queue first)."""
        mailbox = Mailbox()
        self._listeners[device_id].add(mailbox)
        return mailbox

    def unsubscribe(self, device_id: str, mailbox: Mailbox) -> None:
        listeners = self._listeners.get(device_id)
        if listeners is not None:
            listeners.discard(mailbox)
            if not listeners:
                del self._listeners[device_id]

    def _wake_local(self, device_ids: Iterable[str]) -> None:
        for device_id in device_ids:
            for mailbox in self._listeners.get(device_id, ()):
                mailbox.mark_fetch()

    def _wake_all_local(self) -> None:
        for listeners in self._listeners.values():
            for mailbox in listeners:
                mailbox.mark_fetch()

    def _publish_paused(self) -> bool:
        return asyncio.get_running_loop().time() < self._publish_paused_until

    async def _publish(
        self, message: dict[str, Any], devices: Iterable[str] = (), handed_json: str | None = None
    ) -> bool:
        """Publishes on the channel (`handed_json`, already serialised, as the message's `handed`);
        False (and publishing paused a moment) when Redis did not take it, in which case `devices` are
        woken by a later publish (`_unannounced`)."""
        if self._publisher is None:
            return False
        if self._publish_paused():
            self._unannounced.update(devices)
            return False
        unannounced, self._unannounced = self._unannounced, set()
        if unannounced:
            message = {**message, "devices": sorted(unannounced | set(message.get("devices", ())))}
        text = json.dumps({"origin": self._origin, **message})
        if handed_json is not None:
            text = f'{text[:-1]},"handed":{handed_json}}}'
        try:
            await self._publisher.publish(self._channel, text)
        except Exception as error:
            loop = asyncio.get_running_loop()
            self._publish_paused_until = loop.time() + _PUBLISH_PAUSE_S
            self._unannounced |= unannounced | set(devices)
            if self._retry is None or self._retry.cancelled():
                self._retry = loop.call_later(_PUBLISH_PAUSE_S * 1.1, self._schedule_retry)
            log.warning("delivery wake-up not published (%s)", type(error).__name__)
            return False
        return True

    def _schedule_retry(self) -> None:
        self._retry = None
        if self._unannounced:
            task = asyncio.get_running_loop().create_task(self._publish({"devices": []}))
            self._pending_tasks.add(task)
            task.add_done_callback(self._pending_tasks.discard)

    async def notify(self, device_ids: Iterable[str]) -> None:
        """Wakes the devices' sockets here at once (they read the queue) and, through Redis, on other
        workers. Never raises: a lost wake-up only delays a push until the device's next fetch."""
        ids = list(device_ids)
        self._wake_local(ids)
        await self._publish({"devices": ids}, ids)

    async def hand_off(self, deliveries: Mapping[str, list[Push]]) -> None:
        """Gives committed entries (by device) to the devices' sockets, here and on other workers.
        Never raises; whatever cannot travel whole becomes a wake-up (the socket reads the queue), so a
        socket never misses a committed entry it was connected for."""
        if not deliveries:
            return
        if self._publisher is None:
            for device_id, handed in deliveries.items():
                for mailbox in self._listeners.get(device_id, ()):
                    mailbox.put(handed)
            return
        size = sum(len(p.json) for handed in deliveries.values() for p in handed)
        if size <= MAX_HANDOFF_BYTES and self._subscribed.is_set():
            # The same `handed` object of wire dicts as ever, written from the pushes' JSON.
            handed_json = (
                "{"
                + ",".join(
                    f"{json.dumps(device_id)}:[{','.join(p.json for p in handed)}]"
                    for device_id, handed in deliveries.items()
                )
                + "}"
            )
            if await self._publish({}, deliveries, handed_json):
                return
        elif await self._publish({"devices": list(deliveries)}, deliveries):
            self._wake_local(deliveries)  # our own wake-ups do not come back from Redis
            return
        self._wake_local(deliveries)  # Redis did not take it: this worker's sockets read the queue

    async def credentials_changed(
        self, *, user_ids: Iterable[int] = (), device_ids: Iterable[str] = ()
    ) -> None:
        """Tells every other worker to drop cached credentials of these accounts and devices (this
        worker's own cache is the caller's). Never raises: a worker that misses it clears its whole cache
        when it hears Redis again."""
        users, devices = list(user_ids), list(device_ids)
        if users or devices:
            await self._publish({"invalidate_users": users, "invalidate_devices": devices})
