"""The local app's one signed-in device: the client SDK, the view kept beside it, a background task that
catches up with the server, and the live-update fan-out to the open pages.

Every use of the client goes through `AppSession.lock`: the SDK's ratchets are not safe against two
coroutines decrypting and encrypting at once, so the poller and the pages take turns."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from vigil.app.nudity import ImageScorer, NudityScore
from vigil.app.view import AGE_BAND_FIELD, ViewState, keep_image
from vigil.client.client import Client
from vigil.client.contacts import SafetyNotice
from vigil.client.events import (
    Event,
    GroupUpdated,
    ImageWithheld,
    KeyChangeWarning,
    MessageEvent,
    RejectedDelivery,
    SasCancelled,
    SasCompleted,
    SasRequested,
    SasShowCode,
    group_id_of,
    now_ms,
)
from vigil.client.safety import AuthorityPin
from vigil.errors import ConflictError, PolicyViolation, StorageError, VigilError
from vigil.protocol.contacts import ContactRequestList
from vigil.protocol.wire import AgeBand
from vigil.safety.policy import Refusal

__all__ = ["POLL_SECONDS", "AccountStanding", "AppSession", "SasView", "is_suspension"]

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 1.0  # how often the local process catches up with the server
SLOW_POLL_EVERY: Final = 3  # contact requests, notices, groups: every third round
COULD_NOT_SHOW: Final = "This image could not be shown."
COULD_NOT_SEND: Final = "This image could not be sent."
APPEAL_FIELD: Final = "app_appeal"  # the appeal sent from this device: {"appeal_id", "action", "notice_id"}
ACTION_KIND_PREFIX: Final = "action_"  # a reviewer's action on this account (server: ACTION_NOTICE_PREFIX)
APPEAL_KIND_PREFIX: Final = "appeal_"  # the outcome of its appeal: appeal_upheld, appeal_overturned


def is_suspension(error: Exception) -> bool:
    """The server refused because this account is suspended (told as itself, never neutrally)."""
    return isinstance(error, PolicyViolation) and error.detail == Refusal.SUSPENDED.value


@dataclass(frozen=True)
class AccountStanding:
    """What the app shows about the account itself: the latest action's verified notice, whether it can
    be appealed from here, the appeal's state and its outcome's verified notice."""

    action: SafetyNotice | None
    appeal: str  # "none" (nothing to appeal), "open" (may appeal), "pending", "upheld", "overturned"
    outcome: SafetyNotice | None


@dataclass
class SasView:
    transaction_id: str
    device_id: str
    state: (
        str  # "requested" (they asked), "waiting" (we asked), "compare", "confirmed", "verified", "cancelled"
    )
    emoji: list[tuple[str, str]] = field(default_factory=list)
    decimals: tuple[int, ...] = ()
    reason: str = ""


class AppSession:
    def __init__(
        self,
        profile_path: Path,
        server_url: str | None,
        scorer: ImageScorer | None,
        authority_key: str | None = None,
    ) -> None:
        self.profile_path = profile_path
        self.authority_key = authority_key  # the hash-list authority to pin; default: the server's (TOFU)
        self.authority: AuthorityPin | None = None
        self.server_url = server_url
        self.scorer = scorer
        self.client: Client | None = None
        self.view = ViewState()
        self.age_band: AgeBand | None = None
        self.lock = asyncio.Lock()
        self.contacts: list[str] = []
        self.group_names: dict[str, str] = {}
        self.requests = ContactRequestList(incoming=[], outgoing=[])
        self.safety_notices: list[SafetyNotice] = []
        self.team_notices: list[str] = []
        self.sas: dict[str, SasView] = {}
        self.flash: str | None = None
        self.suspended = False  # the server refuses this account everything but its notices and appeal
        self.reported: dict[str, str] = {}  # message id -> what the report returned (shown once)
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._poller: asyncio.Task[None] | None = None

    # ---- signing in ----------------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        return self.profile_path.exists()

    @property
    def is_minor(self) -> bool:
        return self.age_band is not None and self.age_band.is_minor

    @property
    def blur(self) -> bool:
        """Minors always get the sensitive-image blur; adults when they turned it on."""
        return self.is_minor or self.view.settings.blur_for_adult

    def me(self) -> str:
        return self.require().username

    def require(self) -> Client:
        if self.client is None:
            raise StorageError("the app is locked: unlock it first")
        return self.client

    async def register(self, server_url: str, username: str, born: dt.date, passphrase: str) -> None:
        self.profile_path.parent.mkdir(parents=True, exist_ok=True)
        client = await Client.register(server_url, username, born, self.profile_path, passphrase)
        band = AgeBand.from_birth_date(born, dt.date.today())
        client.store.set_secret(AGE_BAND_FIELD, band.value)
        await self._started(client)

    async def unlock(self, passphrase: str) -> None:
        client = await Client.open(self.profile_path, passphrase, self.server_url)
        await self._started(client)

    async def _started(self, client: Client) -> None:
        self.client = client
        self.view = ViewState.load(client.store)
        band = client.store.get_secret(AGE_BAND_FIELD)
        self.age_band = AgeBand(band) if band else None
        await self._pin_authority(client)
        self._poller = asyncio.create_task(self._poll_forever(), name="vigil-app-poll")

    async def _pin_authority(self, client: Client) -> None:
        """Known-image matching runs as in every client: the hash-list authority key pinned (configured, or
        the one the server names on first use; shown with its fingerprint in Settings)."""
        try:
            self.authority = await client.safety.ensure_authority(self.authority_key)
        except (VigilError, httpx.HTTPError) as error:
            self.flash = f"Could not set up known-image matching ({error}); it stays off for now."

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.client is not None:
            async with self.lock:
                await self.client.close()
            self.client = None

    # ---- live updates --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscription(self) -> AsyncIterator[asyncio.Queue[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=16)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def changed(self) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait("changed")

    async def _poll_forever(self) -> None:
        round_ = 0
        while True:
            try:
                await self.poll(slow=round_ % SLOW_POLL_EVERY == 0)
            except (VigilError, OSError) as error:
                log.warning("catching up with the server failed: %s", type(error).__name__)
            except Exception:  # the poller must outlive any one bad round
                log.exception("catching up with the server failed")
            round_ += 1
            await asyncio.sleep(POLL_SECONDS)

    async def poll(self, *, slow: bool = True) -> None:
        """Fetches and applies new events (and, when `slow`, requests, notices, contacts and groups)."""
        client = self.require()
        changed = False
        try:
            async with self.lock:
                try:
                    events = await client.fetch()
                except PolicyViolation as error:
                    if not is_suspension(error):
                        raise
                    # Suspended: nothing else answers, but why (and the appeal's outcome) can be read.
                    changed = not self.suspended
                    self.suspended = True
                    if slow or changed:
                        changed |= await self._refresh_notices(client)
                    return
                lifted = self.suspended  # overturned or lifted: show the account (and why) at once
                changed, self.suspended = lifted, False
                for event in events:
                    try:
                        await self._apply(client, event)
                    except (
                        Exception
                    ):  # the next fetch consumes the batch: one bad event must not lose the rest
                        log.exception("could not show a %s", type(event).__name__)
                if events:
                    self.view.save(client.store)
                    client.consume()  # applied and saved: never handed out again
                    changed = True
                if slow or lifted:
                    changed |= await self._refresh_lists(client)
        finally:
            if changed:  # the pages hear of what was applied even when a later step of the round failed
                self.changed()

    async def _refresh_lists(self, client: Client) -> bool:
        before = (self.contacts, self.group_names, self.requests)
        self.contacts = sorted(await client.contacts())
        groups = (await client.groups.list_groups()).groups
        # groups left or removed from keep their name in the list (their history stays on the device)
        self.group_names = {
            **{gid: self.group_name(gid) for gid in self.group_names},
            **{g.group_id: self.group_name(g.group_id) for g in groups},
        }
        for conversation in self.view.last:
            gid = group_id_of(conversation)
            if gid is not None and gid not in self.group_names:
                self.group_names[gid] = self.group_name(gid)
        self.requests = await client.contact_requests()
        notices_changed = await self._refresh_notices(client)
        self._warnings(client)
        return notices_changed or before != (self.contacts, self.group_names, self.requests)

    async def _refresh_notices(self, client: Client) -> bool:
        """New signed safety notices (verified by the SDK) and safety-team notices; True if any came."""
        after = self.safety_notices[-1].id if self.safety_notices else 0
        fresh = await client.safety_notices(after=after)
        self.safety_notices += fresh
        team_after = int(client.store.get_secret("app_team_notice") or 0)
        team = await client.notices(after=team_after)
        for notice in team:
            self.team_notices.append(notice.text)
            client.store.set_secret("app_team_notice", str(notice.id))
        return bool(fresh or team)

    # ---- the account's own standing and its appeal -------------------------------------------------

    def notices_about_others(self) -> list[SafetyNotice]:
        me = self.me()
        return [n for n in self.safety_notices if n.subject != me]

    def account_notices(self) -> list[SafetyNotice]:
        """Verified notices about this account itself (actions taken on it, appeal outcomes), oldest
        first."""
        me = self.me()
        return [n for n in self.safety_notices if n.subject == me]

    def standing(self) -> AccountStanding:
        mine = self.account_notices()
        actions = [n for n in mine if n.kind.startswith(ACTION_KIND_PREFIX)]
        if not actions:
            return AccountStanding(None, "none", None)
        action = actions[-1]
        outcome = next((n for n in mine if n.kind.startswith(APPEAL_KIND_PREFIX) and n.id > action.id), None)
        if outcome is not None:
            return AccountStanding(action, outcome.kind.removeprefix(APPEAL_KIND_PREFIX), outcome)
        sent = self._sent_appeal()
        pending = sent is not None and sent.get("notice_id") == action.id
        return AccountStanding(action, "pending" if pending else "open", None)

    def _sent_appeal(self) -> dict[str, object] | None:
        raw = self.require().store.get_secret(APPEAL_FIELD)
        return None if raw is None else dict(json.loads(raw))

    async def appeal(self, reason: str) -> str:
        """Appeals the latest action on this account (the server allows one appeal per action); returns
        what to tell the user. Raises ValidationError (no reason), NotFoundError (nothing to appeal)."""
        client = self.require()
        action = self.standing().action
        async with self.lock:
            try:
                accepted = await client.appeal(reason)
            except ConflictError:
                accepted = None
            # Remembered either way: this action's appeal is with the safety team (sent from here or
            # from another device), so the form is not offered again.
            record: dict[str, object] = {"notice_id": action.id if action is not None else None}
            if accepted is not None:
                record |= {"appeal_id": accepted.appeal_id, "action": accepted.action}
            client.store.set_secret(APPEAL_FIELD, json.dumps(record))
        self.changed()
        if accepted is None:
            return "This decision was already appealed; an action can be appealed once."
        return (
            f"Your appeal against the {accepted.action} decision went to Vigil's safety team. "
            "Their answer will appear here."
        )

    def group_name(self, group_id: str) -> str:
        meta = self.require().groups.meta(group_id)
        return meta.name if meta is not None and meta.name else "(unnamed group)"

    def _warnings(self, client: Client) -> None:
        for warning in client.verification.take_warnings():
            self._key_change(warning)

    def _key_change(self, warning: KeyChangeWarning) -> None:
        if warning.was_verified:
            text = (
                f"Security warning: {warning.username}'s keys changed since you verified them. Sending is "
                "paused until you look at their details and verify them again."
            )
        else:
            text = f"{warning.username}'s devices or keys changed (a new phone or a reinstall)."
        self.view.notice(warning.username, now_ms(), "key-change", text)

    async def _apply(self, client: Client, event: Event) -> None:
        match event:
            case MessageEvent():
                line = event.text or ("[image]" if event.attachment else "")
                if event.attachment is not None and event.attachment.mime.startswith("image/"):
                    keep_image(
                        client.store,
                        self.view,
                        event.sender,
                        event.message_id,
                        event.attachment.data,
                        event.attachment.mime,
                    )
                    score = await self.score(event.attachment.data)
                    if score is not None:
                        self.view.scores[event.message_id] = score.score
                    line = event.text or "[image]"
                self.view.touch(event.conversation, event.server_ts_ms, line, unread=not event.outgoing)
                if event.sender != client.username:
                    self.view.last[event.conversation] = (event.server_ts_ms, f"{event.sender}: {line}")
            case ImageWithheld():
                # the timeline shows the message itself as withheld (its history record stays for reports)
                self.view.withheld.add(event.message_id)
                self.view.touch(event.conversation, event.server_ts_ms, COULD_NOT_SHOW, unread=True)
            case RejectedDelivery():
                self.view.notice(
                    event.sender,
                    now_ms(),
                    "rejected",
                    f"A message from {event.sender} failed verification and was dropped.",
                )
            case GroupUpdated():
                self.group_names[event.group_id] = event.name or "(unnamed group)"
                self.view.notice(
                    f"group:{event.group_id}", now_ms(), "group", f"{event.by} named the group “{event.name}”"
                )
            case KeyChangeWarning():
                self._key_change(event)
            case SasRequested():
                self.sas[event.username] = SasView(event.transaction_id, event.device_id, "requested")
            case SasShowCode():
                self.sas[event.username] = SasView(
                    event.transaction_id,
                    event.device_id,
                    "compare",
                    emoji=[(e.emoji, e.description) for e in event.emoji],
                    decimals=tuple(event.decimals),
                )
            case SasCompleted():
                self._sas_done(event)
            case SasCancelled():
                self.sas[event.username] = SasView(
                    event.transaction_id, event.device_id, "cancelled", reason=event.reason
                )

    def _sas_done(self, event: SasCompleted) -> None:
        self.sas[event.username] = SasView(event.transaction_id, event.device_id, "verified")
        self.view.notice(
            event.username,
            now_ms(),
            "verified",
            f"You verified {event.username}'s device {event.device_id} by emoji.",
        )

    def sas_result(self, result: SasCompleted | SasCancelled | None, peer: str) -> None:
        if isinstance(result, SasCompleted):
            self._sas_done(result)
        elif isinstance(result, SasCancelled):
            self.sas[peer] = SasView(
                result.transaction_id, result.device_id, "cancelled", reason=result.reason
            )
        elif peer in self.sas:
            self.sas[peer].state = "confirmed"

    async def score(self, data: bytes) -> NudityScore | None:
        """The on-device nudity score (in a thread: the page stays responsive); None without the
        classifier or for an image it cannot decode. Nothing about it leaves this process."""
        if self.scorer is None:
            return None
        try:
            return await asyncio.to_thread(self.scorer.score, data)
        except ValueError:
            return None

    def opened(self, conversation: str) -> None:
        if self.view.unread.pop(conversation, None):
            self.view.save(self.require().store)
