"""Key verification and key-change warnings for `Client` (`client.verification`).

Verified state per contact, in the encrypted store:
- UNVERIFIED: nothing compared yet (trust on first use).
- VERIFIED: the user compared the safety number (`confirm_safety_number`, covers every device then
  known) or completed SAS with one of the contact's devices; the verified device keys are recorded.
- CHANGED: the contact was verified and then a device appeared or a key changed. This is the loud case:
  every send to that contact (1:1 or to a group they are in) raises `VerificationRequired` until the user
  calls `acknowledge_key_change` (back to UNVERIFIED; verify again to return to VERIFIED).

Every change of a contact's device set or identity keys, verified or not, produces a `KeyChangeWarning`
the moment the client learns the new device list, i.e. before anything is encrypted for the new keys;
apps read them with `take_warnings()` (the CLI prints them before and after each send).

SAS runs over Olm-encrypted `/v1/to-device` control messages; see `vigil.protocol.verification` for the
protocol. A flow lives in memory for the life of the client (it is interactive).
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from vigil.client.device import DeviceCore
from vigil.client.engine import PeerDevice
from vigil.client.events import (
    KeyChangeWarning,
    SasCancelled,
    SasCompleted,
    SasRequested,
    SasShowCode,
    VerificationEvent,
)
from vigil.client.transport import ServerError
from vigil.errors import PermissionDenied, ProtocolError, TamperError, ValidationError
from vigil.protocol.ids import DeviceId, UserId
from vigil.protocol.olm import verify_device_keys
from vigil.protocol.verification import (
    SafetyNumber,
    SasAccept,
    SasCancel,
    SasCancelCode,
    SasDevice,
    SasEstablished,
    SasKey,
    SasMac,
    SasStart,
    SasStarted,
    safety_number,
)
from vigil.protocol.wire import DeviceInfo, DeviceKeys

__all__ = [
    "VerificationManager",
    "VerificationRequired",
    "VerificationState",
    "diff_device_keys",
]

MAX_PENDING_WARNINGS = 100


class VerificationState(enum.StrEnum):
    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    CHANGED = "changed"  # was verified; keys changed since; sends refused until acknowledged


class VerificationRequired(PermissionDenied):
    """A verified contact's keys changed: acknowledge (and ideally re-verify) before sending to them."""

    code = "verification_required"

    def __init__(self, usernames: list[str]) -> None:
        super().__init__(
            f"the keys of verified contact(s) {', '.join(usernames)} changed; acknowledge or verify again"
        )
        self.usernames = usernames


def diff_device_keys(
    old: dict[str, dict[str, str]], new: dict[str, dict[str, str]]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(added, removed, changed-key) device ids between two {device id: DeviceKeys JSON} snapshots."""
    added = tuple(sorted(set(new) - set(old)))
    removed = tuple(sorted(set(old) - set(new)))
    changed = tuple(
        sorted(
            d
            for d in set(old) & set(new)
            if (old[d]["curve25519"], old[d]["ed25519"]) != (new[d]["curve25519"], new[d]["ed25519"])
        )
    )
    return added, removed, changed


@dataclass(slots=True)
class _Flow:
    peer_user: UserId
    peer_device: DeviceId
    started: SasStarted | None = None
    established: SasEstablished | None = None
    confirmed: bool = False
    peer_mac: SasMac | None = None
    pending_start: SasStart | None = None
    events: list[Any] = field(default_factory=list)
    unsent: list[SasKey] = field(default_factory=list)  # answers that failed to go out, oldest first


class VerificationManager:
    """`client.verification`. Watches every device list the core learns (`DeviceCore.watch_devices`)."""

    def __init__(self, core: DeviceCore) -> None:
        self._core = core
        self._store = core.tables
        self._warnings: list[KeyChangeWarning] = []
        self._flows: dict[str, _Flow] = {}
        core.watch_devices(self.observe)

    # ---- key tracking ----------------------------------------------------------------------------

    def observe(self, username: str, infos: list[DeviceInfo]) -> KeyChangeWarning | None:
        """Records the device list the server just gave for `username` (self-signatures checked by the
        caller) and returns (and queues) a warning if it differs from the last one seen."""
        new = {i.device_id: i.keys.model_dump() for i in infos}
        record = self._store.seen_keys(username)
        if record == new:
            return None
        with self._core.store.transaction():
            self._store.save_seen_keys(username, new)
            if record is None:
                return None  # first contact: trust on first use
            added, removed, changed = diff_device_keys(record, new)
            verified = self._store.verification(username)
            was_verified = verified is not None and verified["state"] == VerificationState.VERIFIED
            if verified is not None and verified["state"] != VerificationState.UNVERIFIED:
                devices = {d: k for d, k in verified["devices"].items() if d not in removed}
                state = verified["state"]
                if was_verified and (added or changed):
                    state = VerificationState.CHANGED
                self._store.save_verification(username, {"state": state, "devices": devices})
        loud = was_verified and bool(added or changed)
        warning = KeyChangeWarning(UserId(username), added, removed, changed, loud)
        self._warnings = [*self._warnings, warning][-MAX_PENDING_WARNINGS:]
        return warning

    def take_warnings(self) -> list[KeyChangeWarning]:
        warnings, self._warnings = self._warnings, []
        return warnings

    def known_keys(self, username: str, device_id: str) -> DeviceKeys | None:
        """The self-signed keys last seen for a device in its owner's device list."""
        record = self._store.seen_keys(username)
        if record is None or device_id not in record:
            return None
        return DeviceKeys.model_validate(record[device_id])

    def state(self, username: str) -> VerificationState:
        record = self._store.verification(username)
        return VerificationState.UNVERIFIED if record is None else VerificationState(record["state"])

    def check_can_send(self, usernames: set[str]) -> None:
        """Raises VerificationRequired if any of them is a verified contact whose keys changed."""
        changed = sorted(u for u in usernames if self.state(u) is VerificationState.CHANGED)
        if changed:
            raise VerificationRequired(changed)

    def acknowledge_key_change(self, username: str) -> None:
        """The user saw the warning: the contact becomes unverified and sends are allowed again."""
        with self._core.store.transaction():
            self._store.save_verification(username, {"state": VerificationState.UNVERIFIED, "devices": {}})

    def _mark_verified(self, username: str, devices: dict[str, str]) -> None:
        record = self._store.verification(username)
        known = dict(record["devices"]) if record and record["state"] == VerificationState.VERIFIED else {}
        with self._core.store.transaction():
            self._store.save_verification(
                username, {"state": VerificationState.VERIFIED, "devices": known | devices}
            )

    # ---- safety numbers --------------------------------------------------------------------------

    async def safety_number(self, username: str) -> SafetyNumber:
        """From every device key of both users, as the server lists them now."""
        core = self._core
        await core.refresh_devices(username)
        await core.refresh_devices(core.username)
        theirs = [d.ed25519 for d in core.known_devices(username)]
        mine = [core.engine.account.ed25519, *(d.ed25519 for d in core.known_devices(core.username))]
        return safety_number(core.username, mine, username, theirs)

    async def confirm_safety_number(self, username: str, compared: str) -> None:
        """The user compared `compared` with the contact's screen. Raises TamperError if it is not the
        number of the current keys (nothing is marked verified then)."""
        number = await self.safety_number(username)
        if not number.matches(compared):
            raise TamperError("the safety number does not match the current keys")
        self._mark_verified(username, {d.device_id: d.ed25519 for d in self._core.known_devices(username)})

    # ---- SAS -------------------------------------------------------------------------------------

    def _own(self) -> SasDevice:
        core = self._core
        return SasDevice(core.username, core.device_id, core.engine.account.device_keys())

    async def _peer(self, username: str, device_id: str | None) -> PeerDevice:
        devices = await self._core.refresh_devices(username)
        for device in devices:
            if device_id is None or device.device_id == device_id:
                return device
        raise ValidationError(f"{username} has no device {device_id or ''}".strip())

    async def _send(self, flow: _Flow, message: SasStart | SasAccept | SasKey | SasMac | SasCancel) -> None:
        device = await self._peer(flow.peer_user, flow.peer_device)
        await self._core.send_to_devices(flow.peer_user, [device], [message])

    async def _answer(self, flow: _Flow, message: SasKey) -> None:
        """Sends the answer to a step that arrived in a delivery. That delivery's Olm message is already
        consumed, so the step cannot run again: an answer that fails to go out (the server busy, the
        network down) stays queued on the flow and `resend_unsent` (every `Client.fetch`) sends it,
        instead of the verification stalling for good."""
        flow.unsent.append(message)
        await self._flush(flow)

    async def _flush(self, flow: _Flow) -> None:
        try:
            while flow.unsent:
                await self._send(flow, flow.unsent[0])
                flow.unsent.pop(0)
        except (httpx.HTTPError, ServerError):
            return  # still queued: sent again by the next `resend_unsent`

    async def resend_unsent(self) -> None:
        """Sends the SAS answers that failed to go out earlier (kept, in order, until they do)."""
        for flow in list(self._flows.values()):
            await self._flush(flow)

    async def start_sas(self, username: str, device_id: str | None = None) -> str:
        """Starts SAS with one of `username`'s devices; returns the transaction id."""
        peer = await self._peer(username, device_id)
        transaction_id = secrets.token_urlsafe(12)
        flow = _Flow(
            UserId(peer.username),
            DeviceId(peer.device_id),
            started=SasStarted.initiate(self._own(), transaction_id=transaction_id),
        )
        self._flows[transaction_id] = flow
        assert flow.started is not None
        await self._send(flow, flow.started.start_message)
        return transaction_id

    async def accept_sas(self, transaction_id: str) -> None:
        """Answers a `SasRequested`. Raises ProtocolError for an unknown or already answered request."""
        flow = self._flows.get(transaction_id)
        if flow is None or flow.pending_start is None:
            raise ProtocolError("no pending verification request with this id")
        started = SasStarted.respond(self._own(), flow.pending_start)
        assert started.accept_message is not None
        await self._send(flow, started.accept_message)
        # Answered only once the accept went out: if it did not, the user can accept again.
        flow.started, flow.pending_start = started, None

    async def confirm_sas(self, transaction_id: str) -> SasCompleted | SasCancelled | None:
        """The user saw matching emoji/decimals: send our MAC; completes if the peer's MAC is here."""
        flow = self._flows.get(transaction_id)
        if flow is None or flow.established is None:
            raise ProtocolError("nothing to confirm for this verification")
        flow.confirmed = True
        await self._send(flow, flow.established.mac_message())
        return await self._maybe_finish(transaction_id, flow)

    async def cancel_sas(
        self, transaction_id: str, code: SasCancelCode = SasCancelCode.MISMATCHED_SAS
    ) -> None:
        """The user saw different emoji (or gave up): tell the peer and forget the flow."""
        flow = self._flows.pop(transaction_id, None)
        if flow is not None:
            await self._send(flow, SasCancel(transaction_id=transaction_id, code=code))

    async def _maybe_finish(self, transaction_id: str, flow: _Flow) -> SasCompleted | SasCancelled | None:
        if not (flow.confirmed and flow.peer_mac is not None and flow.established is not None):
            return None
        self._flows.pop(transaction_id, None)
        keys = self.known_keys(flow.peer_user, flow.peer_device)
        try:
            if keys is None:
                raise TamperError("no keys known for the peer device")
            verify_device_keys(keys)
            verified = flow.established.verify_mac(flow.peer_mac, keys)
        except (TamperError, ProtocolError) as error:
            await self._send(flow, SasCancel(transaction_id=transaction_id, code=SasCancelCode.KEY_MISMATCH))
            return SasCancelled(
                transaction_id,
                flow.peer_user,
                flow.peer_device,
                SasCancelCode.KEY_MISMATCH,
                error.detail,
                False,
            )
        self._mark_verified(verified.user_id, {verified.device_id: verified.keys.ed25519})
        return SasCompleted(transaction_id, flow.peer_user, flow.peer_device)

    async def handle(
        self, sender: PeerDevice, message: SasStart | SasAccept | SasKey | SasMac | SasCancel
    ) -> VerificationEvent | None:
        """One SAS message from `sender` (already Olm-authenticated). Raises ProtocolError/TamperError on
        an out-of-order, foreign or tampered message (the flow is then cancelled)."""
        tid = message.transaction_id
        if isinstance(message, SasStart):
            if (message.from_user, message.from_device) != (sender.username, sender.device_id):
                raise TamperError("SAS start names another device than its sender")
            if tid in self._flows:
                raise ProtocolError("SAS transaction id reused")
            requested = _Flow(UserId(sender.username), DeviceId(sender.device_id), pending_start=message)
            self._flows[tid] = requested
            return SasRequested(tid, requested.peer_user, requested.peer_device)
        flow = self._flows.get(tid)
        if flow is None or (flow.peer_user, flow.peer_device) != (sender.username, sender.device_id):
            raise ProtocolError("SAS message for no verification we know with this device")
        if isinstance(message, SasCancel):
            self._flows.pop(tid, None)
            return SasCancelled(tid, flow.peer_user, flow.peer_device, message.code, message.reason, True)
        try:
            return await self._advance(flow, message)
        except (TamperError, ProtocolError, ValidationError) as error:
            self._flows.pop(tid, None)
            code = (
                SasCancelCode.COMMITMENT_MISMATCH
                if isinstance(error, TamperError)
                else SasCancelCode.UNEXPECTED_MESSAGE
            )
            await self._send(flow, SasCancel(transaction_id=tid, code=code))
            return SasCancelled(tid, flow.peer_user, flow.peer_device, code, error.detail, False)

    async def _advance(self, flow: _Flow, message: SasAccept | SasKey | SasMac) -> VerificationEvent | None:
        tid = message.transaction_id
        if isinstance(message, SasAccept):
            if flow.started is None or (message.from_user, message.from_device) != (
                flow.peer_user,
                flow.peer_device,
            ):
                raise ProtocolError("unexpected SAS accept")
            await self._answer(flow, flow.started.receive_accept(message))
            return None
        if isinstance(message, SasKey):
            if flow.started is None or flow.established is not None:
                raise ProtocolError("unexpected SAS key")
            flow.established = flow.started.receive_key(message)
            if flow.established.own_key_message is not None:
                await self._answer(flow, flow.established.own_key_message)
            return SasShowCode(
                tid, flow.peer_user, flow.peer_device, flow.established.emoji(), flow.established.decimals()
            )
        if flow.established is None or flow.peer_mac is not None:
            raise ProtocolError("unexpected SAS MAC")
        flow.peer_mac = message
        return await self._maybe_finish(tid, flow)
