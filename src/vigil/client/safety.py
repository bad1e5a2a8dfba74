"""On-device known-image matching (DESIGN.md §3 "Known-image match").

The client pins the hash-list authority's Ed25519 key, fetches signed manifests (deltas) from the server,
verifies each with `HashListVerifier` and follows the transparency log head; anything unsigned, tampered,
rolled back or off the log is refused and the old list kept. Every image sent or received is PDQ-hashed
(with its 8 rotations/flips) and looked up BEFORE it is uploaded or shown. On a match the image is withheld
and a voucher (the image, its hash, the matched entry and the message's franking proof, encrypted to the
safety team's key) goes to the server. A non-matching image causes no request at all.

The held list is stored as JSON with a `format` number; `_STATE_MIGRATIONS` brings older formats (the first
had no number) up to date at open, and a newer format is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx

from vigil.client.device import DeviceCore
from vigil.client.engine import commitment_of
from vigil.client.events import ImageWithheld, ReceivedAttachment, now_ms, withheld_event
from vigil.errors import (
    ConflictError,
    NotFoundError,
    PolicyViolation,
    ProtocolError,
    StorageError,
    ValidationError,
    VigilError,
)
from vigil.protocol.encoding import b64decode, b64encode
from vigil.protocol.vouchers import (
    FrankingProof,
    HashListHead,
    VoucherContent,
    VoucherDirection,
    VoucherMatch,
    VoucherSubmission,
    authority_fingerprint,
    decode_authority_key,
    seal_voucher,
    verify_voucher_key,
)
from vigil.protocol.wire import AttachmentDescriptor, Delivery, InnerPayload, MessageKind
from vigil.safety.hashing.banks import Match, Matcher
from vigil.safety.hashing.distribution import banks_from_state
from vigil.safety.hashing.hashlist import (
    EMPTY_LOG_HEAD,
    HashListEntry,
    HashListState,
    HashListVerifier,
    NotInLogError,
    RollbackError,
    Sha256Digest,
    SignedManifest,
    StaleListError,
    chain_log_head,
    root_hash,
)
from vigil.safety.hashing.pdq import ImageHash, PdqHash, UnhashableImageError, hash_image

__all__ = [
    "DEFAULT_MAX_LIST_AGE_SECONDS",
    "STATE_FORMAT",
    "AuthorityPin",
    "HashListRefusedError",
    "ImageSafety",
    "ImageWithheldError",
]

log = logging.getLogger(__name__)

_OUTGOING_NOTICE: Final = (
    "This image matches a known child sexual abuse image and was not sent. It has been reported to "
    "Vigil's safety team."
)
NOT_UPLOADED_BLOB_ID: Final = "0" * 32
"""The blob id in the franked payload of a withheld outgoing image: it was never uploaded."""
_SECRET_AUTHORITY: Final = "hashlist_authority"  # noqa: S105 - store entry names, not secrets
_SECRET_STATE: Final = "hashlist_state"  # noqa: S105
_SECRET_VOUCHER_KEY: Final = "hashlist_voucher_key"  # noqa: S105
_SECRET_MIN_VERSION: Final = "hashlist_min_version"  # noqa: S105
DEFAULT_MAX_LIST_AGE_SECONDS: Final = 30 * 24 * 3600
"""A list whose newest manifest was signed longer ago than this is refused: a server cannot keep a device
on an old (validly signed) list. The authority publishes at least this often (`vigil hashlist publish`
signs a new version even when nothing changed)."""


class HashListRefusedError(ProtocolError):
    """The server offered a list this device refuses (unsigned, tampered, rolled back, forked, off the
    log). The previously verified list stays in force. `cause` is the verifier's error."""

    code = "hashlist_refused"

    def __init__(self, cause: VigilError) -> None:
        super().__init__(f"hash list refused ({cause.code}): {cause.detail}")
        self.cause = cause


class ImageWithheldError(PolicyViolation):
    """An outgoing image matched the known-image list: it was not uploaded or sent; a voucher was."""

    code = "image_withheld"

    def __init__(self, voucher_id: str | None) -> None:
        super().__init__(_OUTGOING_NOTICE)
        self.voucher_id = voucher_id


@dataclass(frozen=True, slots=True)
class AuthorityPin:
    """The pinned hash-list authority key; `source` is "configuration", "server" (trusted on first use)
    or "pinned" (earlier); `newly` when this very call pinned it."""

    key: str
    source: str
    newly: bool

    @property
    def fingerprint(self) -> str:
        return authority_fingerprint(self.key)


@dataclass(frozen=True, slots=True)
class _Held:
    state: HashListState
    log_head: Sha256Digest


STATE_FORMAT: Final = 1
_STATE_MIGRATIONS: Final[tuple[Callable[[dict[str, Any]], dict[str, Any]], ...]] = (
    # 0 -> 1: format 0 had the fields of format 1 and no `format` number.
    lambda raw: raw,
)


def _migrate_state(raw: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The stored list brought to STATE_FORMAT, and whether it changed. Raises StorageError for a format
    written by a newer Vigil."""
    found = raw.get("format", 0)
    if not isinstance(found, int) or not 0 <= found <= len(_STATE_MIGRATIONS):
        raise StorageError(
            f"the stored hash list has format {found}, newer than the {STATE_FORMAT} this version of Vigil "
            "knows; update Vigil"
        )
    for step in _STATE_MIGRATIONS[found:]:
        raw = step(raw)
    return raw | {"format": STATE_FORMAT}, found != STATE_FORMAT


def _encode_state(held: _Held) -> str:
    s = held.state
    return json.dumps(
        {
            "format": STATE_FORMAT,
            "version": s.version,
            "digest": s.digest.hex(),
            "issued_at": s.issued_at,
            "root": s.root.hex(),
            "log_head": held.log_head.hex(),
            "entries": [[e.bank, e.hash.hex(), e.threshold] for e in sorted(s.entries)],
        }
    )


def _decode_state(raw: dict[str, Any]) -> _Held:
    """Raises StorageError if the stored list does not hash to its stored root."""
    entries = frozenset(HashListEntry(b, PdqHash.from_hex(h), t) for b, h, t in raw["entries"])
    root = Sha256Digest(bytes.fromhex(raw["root"]))
    if root_hash(entries) != root:
        raise StorageError("the stored hash list does not match its root")
    state = HashListState(
        raw["version"], Sha256Digest(bytes.fromhex(raw["digest"])), raw["issued_at"], root, entries
    )
    return _Held(state, Sha256Digest(bytes.fromhex(raw["log_head"])))


class ImageSafety:
    """`client.safety`. Inactive until an authority key is pinned (`pin_authority`)."""

    refresh_seconds: float = 300.0
    max_list_age_seconds: int = DEFAULT_MAX_LIST_AGE_SECONDS

    def __init__(self, core: DeviceCore) -> None:
        self._core = core
        self._held: _Held | None = None
        self._matcher: Matcher | None = None
        self._voucher_key: bytes | None = None
        self._synced_at = 0.0
        self.last_refusal: HashListRefusedError | None = None
        store = core.store
        stored = store.get_secret(_SECRET_STATE)
        if stored is not None:
            raw, migrated = _migrate_state(json.loads(stored))
            held = _decode_state(raw)
            if migrated:
                with store.transaction():
                    store.set_secret(_SECRET_STATE, _encode_state(held))
            self._set_held(held)
        key = store.get_secret(_SECRET_VOUCHER_KEY)
        self._voucher_key = None if key is None else b64decode(key, field="voucher key")

    # ---- the list --------------------------------------------------------------------------------

    @property
    def authority(self) -> str | None:
        return self._core.store.get_secret(_SECRET_AUTHORITY)

    @property
    def state(self) -> HashListState | None:
        return None if self._held is None else self._held.state

    @property
    def min_version(self) -> int:
        """The oldest list version this device accepts: shipped with the app beside the authority key
        (`pin_authority`), then raised to each version it holds (the first sync pins what it saw)."""
        pinned = self._core.store.get_secret(_SECRET_MIN_VERSION)
        held = 0 if self._held is None else self._held.state.version
        return max(int(pinned or 0), held)

    def pin_authority(self, key: str, *, min_version: int = 0) -> None:
        """Pins the authority's public key (base64) and the oldest list version accepted (the one the
        app shipped with; a fresh device then refuses anything older). Raises ValidationError on a
        malformed key or a negative version and ConflictError if another key is already pinned (a
        pinned key never changes silently)."""
        decode_authority_key(key)
        if min_version < 0:
            raise ValidationError("min_version is a list version (>= 0)")
        current = self.authority
        if current is not None and current != key:
            raise ConflictError("another hash-list authority key is already pinned")
        with self._core.store.transaction():
            self._core.store.set_secret(_SECRET_AUTHORITY, key)
            if min_version > int(self._core.store.get_secret(_SECRET_MIN_VERSION) or 0):
                self._core.store.set_secret(_SECRET_MIN_VERSION, str(min_version))

    @property
    def authority_fingerprint(self) -> str | None:
        """The pinned key's fingerprint, for the user to compare with the one the operator publishes."""
        key = self.authority
        return None if key is None else authority_fingerprint(key)

    async def ensure_authority(self, configured: str | None = None) -> AuthorityPin | None:
        """Pins the authority key so matching runs: `configured` (from the app's or the user's
        configuration) when given, else, if nothing is pinned yet, the key the server names (trust on
        first use: show the fingerprint). A pinned key never changes silently. Returns what is pinned and
        whether this call pinned it, or None when nothing is configured and the server names no key.
        Raises ValidationError on a malformed key, ConflictError when `configured` differs from the pinned
        key, and the transport's errors."""
        pinned = self.authority
        if configured is not None:
            self.pin_authority(configured.strip())
            return AuthorityPin(configured.strip(), "configuration", newly=pinned is None)
        if pinned is not None:
            return AuthorityPin(pinned, "pinned", newly=False)
        try:
            offered = await self._core.transport.hashlist_authority()
        except NotFoundError:
            return None
        self.pin_authority(offered.key)
        return AuthorityPin(offered.key, "server", newly=True)

    def _set_held(self, held: _Held) -> None:
        self._held = held
        # Multi-index hashing (Matcher's default): an image is looked up by up to 16 hashes (orientations,
        # trimmed and not), which a linear scan pays 16 times: 42 ms against 1 ms at 100k entries, for a
        # build of 0.24 s (0.15 s for the scan's arrays) when the list changes.
        self._matcher = Matcher(banks_from_state(held.state))

    async def sync(self) -> HashListState | None:
        """Fetches and verifies every new version. Raises HashListRefusedError (the old list is kept) when
        the server offers anything that does not verify under the pinned key or does not match the log
        head it publishes. Returns the list now held (None before the first publication)."""
        authority = self.authority
        if authority is None:
            return None
        key = decode_authority_key(authority)
        transport = self._core.transport
        head = await transport.hashlist_head()
        held = self._held
        version = 0 if held is None else held.state.version
        try:
            if head.version < version:
                raise RollbackError(f"the server offers version {head.version}; this device holds {version}")
            if head.version < self.min_version:
                raise RollbackError(
                    f"the server offers version {head.version}; this device accepts {self.min_version} "
                    "or later"
                )
            verifier = HashListVerifier(key, state=None if held is None else held.state)
            log_head = EMPTY_LOG_HEAD if held is None else held.log_head
            while verifier.state is None or verifier.state.version < head.version:
                since = 0 if verifier.state is None else verifier.state.version
                batch = await transport.hashlist_manifests(since)
                if not batch.manifests:
                    raise NotInLogError(
                        f"the server published version {head.version} but serves none after {since}"
                    )
                for encoded in batch.manifests:
                    signed = SignedManifest.from_bytes(b64decode(encoded, field="manifest"))
                    state = verifier.apply(signed)
                    log_head = chain_log_head(log_head, state.digest)
            state = verifier.state
            if state is not None:
                if (
                    head.root != state.root.hex()
                    or head.log_head != log_head.hex()
                    or head.log_size != state.version
                ):
                    raise NotInLogError("the list does not match the published transparency log head")
                self._check_age(state)
            voucher_key = self._check_voucher_key(key, head)
        except VigilError as error:
            refusal = error if isinstance(error, HashListRefusedError) else HashListRefusedError(error)
            self.last_refusal = refusal
            raise refusal from error
        self._synced_at = time.monotonic()
        if state is not None and (held is None or state.version != held.state.version):
            new_held = _Held(state, log_head)
            with self._core.store.transaction():
                self._core.store.set_secret(_SECRET_STATE, _encode_state(new_held))
            self._set_held(new_held)
        if voucher_key is not None and voucher_key != self._voucher_key:
            with self._core.store.transaction():
                self._core.store.set_secret(_SECRET_VOUCHER_KEY, b64encode(voucher_key))
            self._voucher_key = voucher_key
        return self.state

    def _check_age(self, state: HashListState) -> None:
        """Raises StaleListError when the newest list was signed more than `max_list_age_seconds` ago
        (from the manifest's signed `issued_at`, by this device's clock). Only the newest counts: the
        older manifests of a catch-up are old by nature."""
        age = now_ms() // 1000 - state.issued_at
        if age > self.max_list_age_seconds:
            raise StaleListError(
                f"the newest hash list (version {state.version}) was signed {age // 86400} days ago, "
                f"more than the {self.max_list_age_seconds // 86400} days this device accepts"
            )

    @staticmethod
    def _check_voucher_key(key: object, head: HashListHead) -> bytes | None:
        if head.voucher_key is None or head.voucher_key_signature is None:
            return None
        public = b64decode(head.voucher_key, field="voucher key")
        verify_voucher_key(key, public, b64decode(head.voucher_key_signature, field="signature"))  # type: ignore[arg-type]
        return public

    async def _maybe_sync(self) -> None:
        if time.monotonic() - self._synced_at < self.refresh_seconds:
            return
        try:
            await self.sync()
        except HashListRefusedError as refusal:
            log.warning("hash list refused, keeping the held one: %s", refusal.cause.code)
        except (httpx.TransportError, VigilError) as error:
            log.warning("hash list sync failed, keeping the held one: %s", type(error).__name__)

    # ---- matching ----------------------------------------------------------------------------------

    def match(self, data: bytes) -> tuple[ImageHash, Match] | None:
        """The best match of an image in the held list, or None (no list, no match, or an image that
        cannot be hashed reliably: undecodable or below PDQ's matching quality)."""
        if self._matcher is None:
            return None
        try:
            hashed = hash_image(data)
            result = self._matcher.match_image(hashed)
        except UnhashableImageError:
            return None
        return (hashed, result.matches[0]) if result.is_match else None

    async def _submit(
        self,
        direction: VoucherDirection,
        data: bytes,
        mime: str,
        hashed: ImageHash,
        match: Match,
        proof: FrankingProof,
    ) -> str | None:
        """Sends the voucher; returns its id, or None if there is no voucher key or the server is unreachable
        (the image stays withheld either way)."""
        if self._voucher_key is None or self._held is None:
            log.warning("no voucher key: the withheld image is not reported")
            return None
        content = VoucherContent(
            direction=direction,
            image=b64encode(data),
            mime=mime,
            image_sha256=b64encode(hashlib.sha256(data).digest()),
            pdq=hashed.hash.hex(),
            quality=hashed.quality,
            match=VoucherMatch(
                bank=match.bank,
                entry_hash=match.entry.hash.hex(),
                distance=match.distance,
                dihedral=int(match.dihedral),
            ),
            list_version=self._held.state.version,
            franking=proof,
        )
        voucher_id = str(uuid.uuid4())
        sealed = seal_voucher(self._voucher_key, content.model_dump_json(exclude_none=True).encode())
        try:
            await self._core.transport.submit_voucher(VoucherSubmission.of(voucher_id, sealed))
        except (httpx.TransportError, VigilError) as error:
            log.warning("voucher not delivered: %s", type(error).__name__)
            return None
        return voucher_id

    async def check_outgoing(
        self, to: str, data: bytes, mime: str, *, caption: str = "", name: str | None = None
    ) -> None:
        """Before anything is uploaded; `to` is the recipient or a group's "group:<id>" conversation.
        Raises ImageWithheldError on a match (after sending the voucher)."""
        if self.authority is None or not mime.startswith("image/"):
            return
        await self._maybe_sync()
        found = self.match(data)
        if found is None:
            return
        hashed, match = found
        descriptor = AttachmentDescriptor(
            blob_id=NOT_UPLOADED_BLOB_ID,
            key=b64encode(os.urandom(32)),
            sha256=b64encode(hashlib.sha256(data).digest()),
            size=len(data),
            mime=mime,
            name=name,
        )
        payload: InnerPayload = self._core.engine.build_payload(
            to, MessageKind.IMAGE, now_ms(), body=caption, attachment=descriptor
        )
        proof = FrankingProof(payload=payload, commitment=b64encode(commitment_of(payload)), conversation=to)
        voucher_id = await self._submit(VoucherDirection.OUTGOING, data, mime, hashed, match, proof)
        raise ImageWithheldError(voucher_id)

    async def check_incoming(
        self,
        payload: InnerPayload,
        delivery: Delivery,
        attachment: ReceivedAttachment | None,
        *,
        conversation: str,
    ) -> ImageWithheld | None:
        """After a received message (1:1 or group) and its blob were decrypted and verified, before the app
        sees them. `conversation` is where the app would show the message. Returns the notice event to show
        instead of the message on a match (after sending the voucher), else None."""
        if attachment is None or self.authority is None or not attachment.mime.startswith("image/"):
            return None
        await self._maybe_sync()
        found = self.match(attachment.data)
        if found is None:
            return None
        hashed, match = found
        # The delivery's commitment and tag are what the server franked, for a 1:1 recipient or a
        # "group:<id>" conversation alike.
        proof = FrankingProof(
            payload=payload,
            commitment=delivery.commitment,
            server_tag=delivery.franking_tag,
            server_ts_ms=delivery.server_ts_ms,
            sender_device=delivery.sender_device,
            conversation=delivery.conversation,
        )
        voucher_id = await self._submit(
            VoucherDirection.INCOMING, attachment.data, attachment.mime, hashed, match, proof
        )
        return withheld_event(payload, delivery, conversation, voucher_id)
