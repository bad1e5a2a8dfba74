"""Known-image matching over a fake transport with a real authority, log and voucher keys: a verified list
is held, a rollback or a log mismatch is refused with the old list kept, and a matching image is withheld
with a voucher and nothing uploaded."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fakes import FakeServer, new_client, start
from PIL import Image, ImageDraw

from vigil.client.safety import HashListRefusedError, ImageWithheldError
from vigil.errors import ConflictError, ValidationError
from vigil.protocol.vouchers import (
    HashListHead,
    VoucherContent,
    VoucherKeyPair,
    authority_fingerprint,
    encode_authority_key,
    open_voucher,
    voucher_key_statement,
)
from vigil.safety.hashing.hashlist import HashListAuthority, HashListEntry, HashListPublisher
from vigil.safety.hashing.pdq import hash_image


def _image(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    while True:
        image = Image.new("RGB", (96, 96), tuple(int(x) for x in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(8):
            x0, y0 = (int(v) for v in rng.integers(0, 80, 2))
            box = [x0, y0, x0 + int(rng.integers(8, 60)), y0 + int(rng.integers(8, 60))]
            colour = tuple(int(x) for x in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        if hash_image(buffer.getvalue()).quality >= 50:
            return buffer.getvalue()


class Authority:
    def __init__(self, server: FakeServer) -> None:
        key = Ed25519PrivateKey.generate()
        self.public = encode_authority_key(key.public_key())
        self.publisher = HashListPublisher(HashListAuthority(key))
        self.vouchers = VoucherKeyPair.generate()
        self._signature = key.sign(voucher_key_statement(self.vouchers.public))
        self.server = server

    def publish(self, *images: bytes, issued_at: int | None = None) -> None:
        """Signs the next version, by default now (a device refuses a list signed too long ago)."""
        entries = [HashListEntry("known", hash_image(i).hash, 31) for i in images]
        when = int(time.time()) + len(self.server.manifests) if issued_at is None else issued_at
        signed = self.publisher.publish(entries, issued_at=when)
        self.server.manifests.append(base64.b64encode(signed.to_bytes()).decode())
        head = self.publisher.log.head()
        state = self.publisher.log.state
        assert state is not None
        self.server.hashlist_head = HashListHead(
            version=state.version,
            root=state.root.hex(),
            log_size=head.size,
            log_head=head.hash.hex(),
            voucher_key=base64.b64encode(self.vouchers.public).decode(),
            voucher_key_signature=base64.b64encode(self._signature).decode(),
        )


async def test_sync_holds_the_verified_list_and_refuses_a_rollback_or_forked_head(tmp_path: Path) -> None:
    server = FakeServer()
    authority = Authority(server)
    alice = await start(new_client(server, tmp_path, "alice"))
    alice.safety.pin_authority(authority.public)
    authority.publish(_image(1))
    authority.publish(_image(1), _image(2))
    state = await alice.safety.sync()
    assert state is not None and state.version == 2 and len(state.entries) == 2
    stored = json.loads(alice.store.get_secret("hashlist_state") or "{}")
    assert stored["format"] == 1 and stored["log_head"] == authority.publisher.log.head().hash.hex()

    assert server.hashlist_head is not None
    good_head = server.hashlist_head
    server.hashlist_head = good_head.model_copy(update={"version": 1, "log_size": 1})
    with pytest.raises(HashListRefusedError):
        await alice.safety.sync()
    server.hashlist_head = good_head.model_copy(update={"log_head": "00" * 32})
    with pytest.raises(HashListRefusedError):
        await alice.safety.sync()
    assert alice.safety.state == state  # the verified list stays in force


async def test_a_matching_image_is_withheld_with_a_voucher_and_not_uploaded(tmp_path: Path) -> None:
    server = FakeServer()
    authority = Authority(server)
    alice = await start(new_client(server, tmp_path, "alice"))
    await start(new_client(server, tmp_path, "bob"))
    alice.safety.pin_authority(authority.public)
    known, harmless = _image(1), _image(5)
    authority.publish(known)
    await alice.safety.sync()
    with pytest.raises(ImageWithheldError) as withheld:
        await alice.send_attachment("bob", known, "image/png")
    assert not any(m in ("upload_blob", "send") for m, _ in server.calls)
    [submission] = server.vouchers
    assert withheld.value.voucher_id == submission.voucher_id
    content = VoucherContent.model_validate_json(open_voucher(authority.vouchers.secret, submission.sealed()))
    assert content.direction == "outgoing" and base64.b64decode(content.image) == known
    assert content.franking.conversation == "bob"

    await alice.send_attachment("bob", harmless, "image/png")
    assert [m for m, _ in server.calls].count("upload_blob") == 1 and len(server.vouchers) == 1


DAY = 24 * 3600


async def test_a_fresh_device_refuses_a_validly_signed_but_old_list(tmp_path: Path) -> None:
    server = FakeServer()
    authority = Authority(server)
    alice = await start(new_client(server, tmp_path, "alice"))
    alice.safety.pin_authority(authority.public)
    authority.publish(_image(1), issued_at=int(time.time()) - 31 * DAY)
    with pytest.raises(HashListRefusedError, match="signed 31 days ago, more than the 30 days") as refused:
        await alice.safety.sync()
    assert refused.value.cause.code == "hashlist_stale" and alice.safety.state is None
    alice.safety.max_list_age_seconds = 40 * DAY  # the setting: a longer allowance accepts it
    state = await alice.safety.sync()
    assert state is not None and state.version == 1


async def test_a_catch_up_through_old_versions_to_a_recent_one_is_accepted(tmp_path: Path) -> None:
    server = FakeServer()
    authority = Authority(server)
    now = int(time.time())
    authority.publish(_image(1), issued_at=now - 300 * DAY)
    authority.publish(_image(1), _image(2), issued_at=now - 200 * DAY)
    authority.publish(_image(2), issued_at=now - DAY)
    alice = await start(new_client(server, tmp_path, "alice"))
    alice.safety.pin_authority(authority.public)
    state = await alice.safety.sync()
    assert state is not None and state.version == 3


async def test_a_device_refuses_a_version_older_than_the_one_it_shipped_with(tmp_path: Path) -> None:
    server = FakeServer()
    authority = Authority(server)
    authority.publish(_image(1))
    authority.publish(_image(1), _image(2))
    alice = await start(new_client(server, tmp_path, "alice"))
    alice.safety.pin_authority(authority.public, min_version=3)
    with pytest.raises(HashListRefusedError, match="offers version 2; this device accepts 3 or later"):
        await alice.safety.sync()
    assert alice.safety.state is None and alice.safety.min_version == 3
    authority.publish(_image(2))
    state = await alice.safety.sync()
    assert state is not None and state.version == 3
    # The first sync pins what it saw: a later head older than that is a rollback.
    assert alice.safety.min_version == 3


async def test_ensure_authority_pins_configured_or_server_named_keys_and_never_swaps_one(
    tmp_path: Path,
) -> None:
    server = FakeServer()
    authority = Authority(server)
    alice = await start(new_client(server, tmp_path, "alice"))
    assert await alice.safety.ensure_authority() is None  # the server names none: matching stays off
    assert alice.safety.authority is None

    server.hashlist_authority = authority.public
    pin = await alice.safety.ensure_authority()
    assert pin is not None and (pin.key, pin.source, pin.newly) == (authority.public, "server", True)
    assert pin.fingerprint == alice.safety.authority_fingerprint == authority_fingerprint(authority.public)
    again = await alice.safety.ensure_authority()
    assert again is not None and (again.source, again.newly) == ("pinned", False)
    assert [m for m, _ in server.calls].count("hashlist_authority") == 2  # not asked once pinned

    # A server that later names another key changes nothing; a configured other key is refused.
    other = encode_authority_key(Ed25519PrivateKey.generate().public_key())
    server.hashlist_authority = other
    assert (await alice.safety.ensure_authority()).key == authority.public  # type: ignore[union-attr]
    with pytest.raises(ConflictError):
        await alice.safety.ensure_authority(other)

    bob = await start(new_client(server, tmp_path, "bob"))
    configured = await bob.safety.ensure_authority(f" {authority.public}\n")
    assert configured is not None and (configured.source, configured.newly) == ("configuration", True)
    assert bob.safety.authority == authority.public  # configuration wins over what the server names
    with pytest.raises(ValidationError):
        await (await start(new_client(server, tmp_path, "carol"))).safety.ensure_authority("not a key")
