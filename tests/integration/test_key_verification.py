"""Safety numbers, SAS verification through a real server, and key-change warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import PASSPHRASE, register, texts

from vigil.client.client import Client
from vigil.client.events import (
    Event,
    KeyChangeWarning,
    SasCancelled,
    SasCompleted,
    SasRequested,
    SasShowCode,
)
from vigil.client.verification import VerificationRequired, VerificationState
from vigil.errors import TamperError
from vigil.protocol.olm import DeviceAccount
from vigil.protocol.verification import SasCancelCode


def only(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


async def exchange_codes(alice: Client, bob: Client) -> str:
    """Runs SAS up to both sides showing their short strings; checks they match; returns the id."""
    transaction = await alice.verification.start_sas(bob.username)
    requested = only(await bob.fetch(), SasRequested)
    assert [(r.transaction_id, r.username) for r in requested] == [(transaction, alice.username)]
    await bob.verification.accept_sas(transaction)
    assert await alice.fetch() == []  # accept handled: alice sent her key
    bob_code = only(await bob.fetch(), SasShowCode)
    alice_code = only(await alice.fetch(), SasShowCode)
    assert len(bob_code) == len(alice_code) == 1
    assert alice_code[0].emoji == bob_code[0].emoji and len(alice_code[0].emoji) == 7
    assert alice_code[0].decimals == bob_code[0].decimals
    return transaction


async def test_sas_verification_through_the_server_then_key_change_is_loud(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    carol = await register(server.url, tmp_path, "carol")
    transaction = await exchange_codes(alice, bob)
    assert await alice.verification.confirm_sas(transaction) is None  # bob's MAC is not here yet
    assert await bob.verification.confirm_sas(transaction) is None
    assert [type(e) for e in await bob.fetch()] == [SasCompleted]
    assert [type(e) for e in await alice.fetch()] == [SasCompleted]
    assert alice.verification.state(bob.username) is VerificationState.VERIFIED
    assert bob.verification.state(alice.username) is VerificationState.VERIFIED

    # Everything works while nothing changes.
    await alice.send_text(carol.username, "hi carol")
    group = (await alice.groups.create([bob.username, carol.username])).group_id
    await alice.groups.send_text(group, "verified group")
    alice.verification.take_warnings()

    # An unverified contact's new device: a warning, and the send goes ahead.
    await carol.link_device(tmp_path / "carol-2.db", PASSPHRASE)
    sent = await alice.send_text(carol.username, "carol has a new phone")
    assert sent.devices == 2
    quiet = alice.verification.take_warnings()
    assert [(w.username, len(w.added), w.was_verified) for w in quiet] == [(carol.username, 1, False)]

    # A verified contact's new device: loud, and nothing is sent until the user acknowledges it.
    await bob.link_device(tmp_path / "bob-2.db", PASSPHRASE)
    with pytest.raises(VerificationRequired):
        await alice.send_text(bob.username, "this must not go out unacknowledged")
    loud = alice.verification.take_warnings()
    assert [(w.username, w.was_verified) for w in loud] == [(bob.username, True)]
    assert alice.verification.state(bob.username) is VerificationState.CHANGED
    with pytest.raises(VerificationRequired):
        await alice.groups.member_devices(group, refresh=True)
        await alice.groups.send_text(group, "nor to a group bob is in")
    assert texts(await bob.fetch()) == ["verified group"]
    alice.verification.acknowledge_key_change(bob.username)
    assert alice.verification.state(bob.username) is VerificationState.UNVERIFIED
    assert (await alice.send_text(bob.username, "acknowledged")).devices == 2
    assert texts(await bob.fetch()) == ["acknowledged"]


async def test_sas_detects_a_substituted_device_key(server, tmp_path: Path) -> None:
    """A man in the middle: alice holds a key for bob's device that is not bob's (as if the server had
    listed another device's keys under bob's device id). Bob's MAC over his real keys then fails."""
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    transaction = await exchange_codes(alice, bob)
    await alice.verification.confirm_sas(transaction)
    await bob.verification.confirm_sas(transaction)
    assert [type(e) for e in await bob.fetch()] == [SasCompleted]  # alice's keys are genuine
    mallory = DeviceAccount().device_keys()
    with alice.store.transaction():
        alice.groups.store.save_seen_keys(bob.username, {bob.device_id: mallory.model_dump()})
    cancelled = only(await alice.fetch(), SasCancelled)
    assert [(c.code, c.by_peer) for c in cancelled] == [(SasCancelCode.KEY_MISMATCH, False)]
    assert alice.verification.state(bob.username) is VerificationState.UNVERIFIED
    # Bob already checked alice's genuine keys; alice's late cancel does not complete anything for him.
    assert only(await bob.fetch(), SasCompleted) == []


async def test_safety_numbers_match_on_both_sides_and_change_with_devices(server, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    bob = await register(server.url, tmp_path, "bob")
    number = await alice.verification.safety_number(bob.username)
    assert number == await bob.verification.safety_number(alice.username)
    assert len(number.groups) == 12 and all(len(g) == 5 and g.isdigit() for g in number.groups)
    with pytest.raises(TamperError):
        await alice.verification.confirm_safety_number(bob.username, "0" * 60)
    assert alice.verification.state(bob.username) is VerificationState.UNVERIFIED
    await alice.verification.confirm_safety_number(bob.username, str(number))
    assert alice.verification.state(bob.username) is VerificationState.VERIFIED
    await bob.link_device(tmp_path / "bob-2.db", PASSPHRASE)
    changed = await alice.verification.safety_number(bob.username)
    assert changed != number
    warnings = alice.verification.take_warnings()
    assert any(isinstance(w, KeyChangeWarning) and w.was_verified for w in warnings)
