"""Verification over a fake transport: key-change warnings through the core's device hook, the CHANGED
state that blocks sends, and a full SAS run with real Olm between two devices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import FakeServer, new_client, start

from vigil.client.client import Client
from vigil.client.events import Event, KeyChangeWarning, SasCompleted, SasRequested, SasShowCode
from vigil.client.transport import ServerError
from vigil.client.verification import VerificationRequired, VerificationState
from vigil.errors import TamperError


def only(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


async def _verify(alice: Client, bob: Client) -> None:
    transaction = await alice.verification.start_sas(bob.username)
    [requested] = only(await bob.fetch(), SasRequested)
    assert (requested.transaction_id, requested.username) == (transaction, "alice")
    await bob.verification.accept_sas(transaction)
    assert await alice.fetch() == []
    [bob_code] = only(await bob.fetch(), SasShowCode)
    [alice_code] = only(await alice.fetch(), SasShowCode)
    assert alice_code.emoji == bob_code.emoji and alice_code.decimals == bob_code.decimals
    assert await alice.verification.confirm_sas(transaction) is None  # bob's MAC is not here yet
    assert await bob.fetch() == []  # alice's MAC waits for bob's own confirmation
    assert await bob.verification.confirm_sas(transaction) == SasCompleted(transaction, "alice", "ALICE1")
    assert only(await alice.fetch(), SasCompleted) == [SasCompleted(transaction, "bob", "BOB1")]


async def test_sas_verifies_and_a_new_device_then_blocks_sends_until_acknowledged(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await start(new_client(server, tmp_path, "alice"))
    bob = await start(new_client(server, tmp_path, "bob"))
    await _verify(alice, bob)
    assert alice.verification.state("bob") is VerificationState.VERIFIED
    await alice.send_text("bob", "verified hello")
    assert alice.verification.take_warnings() == []

    await start(new_client(server, tmp_path, "bob", "BOB2"))
    await alice.refresh_devices("bob")  # the core's hook tells verification
    [warning] = alice.verification.take_warnings()
    assert warning == KeyChangeWarning("bob", ("BOB2",), (), (), True)
    assert alice.verification.state("bob") is VerificationState.CHANGED
    sends = sum(1 for m, _ in server.calls if m == "send")
    with pytest.raises(VerificationRequired):
        await alice.send_text("bob", "not before acknowledging")
    assert sum(1 for m, _ in server.calls if m == "send") == sends  # nothing left the device
    alice.verification.acknowledge_key_change("bob")
    await alice.send_text("bob", "after acknowledging")
    assert alice.verification.state("bob") is VerificationState.UNVERIFIED


async def test_first_contact_is_trusted_and_a_changed_key_warns_quietly(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await start(new_client(server, tmp_path, "alice"))
    await start(new_client(server, tmp_path, "bob"))
    await alice.refresh_devices("bob")
    assert alice.verification.take_warnings() == []  # trust on first use
    server.devices["bob"].clear()
    await start(new_client(server, tmp_path, "bob", "BOB9"))
    await alice.refresh_devices("bob")
    assert alice.verification.take_warnings() == [KeyChangeWarning("bob", ("BOB9",), ("BOB1",), (), False)]
    assert alice.verification.state("bob") is VerificationState.UNVERIFIED


async def test_safety_numbers_agree_and_confirming_a_wrong_one_changes_nothing(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await start(new_client(server, tmp_path, "alice"))
    bob = await start(new_client(server, tmp_path, "bob"))
    mine = await alice.verification.safety_number("bob")
    theirs = await bob.verification.safety_number("alice")
    assert mine.matches(str(theirs)) and len(mine.digits) == 60
    with pytest.raises(TamperError, match="does not match"):
        await alice.verification.confirm_safety_number("bob", "0" * 60)
    assert alice.verification.state("bob") is VerificationState.UNVERIFIED
    await alice.verification.confirm_safety_number("bob", str(theirs))
    assert alice.verification.state("bob") is VerificationState.VERIFIED


async def test_a_sas_answer_that_fails_to_go_out_is_sent_again_not_lost(tmp_path: Path) -> None:
    """Under load the answer to a step can fail to send (a 503, a dropped connection) after the step's
    Olm message was consumed: that step cannot run again, so the answer stays queued and the next fetch
    sends it. Before, the verification stalled for good (the emoji-verification flake under load)."""
    server = FakeServer()
    alice = await start(new_client(server, tmp_path, "alice"))
    bob = await start(new_client(server, tmp_path, "bob"))
    transaction = await alice.verification.start_sas(bob.username)
    only(await bob.fetch(), SasRequested)
    await bob.verification.accept_sas(transaction)

    real = alice.transport.to_device
    failures = 0

    async def unavailable(request: Any) -> Any:
        nonlocal failures
        failures += 1
        raise ServerError(503, "unavailable", "the database is unreachable")

    alice.transport.to_device = unavailable  # type: ignore[method-assign]
    assert await alice.fetch() == []  # bob's accept handled; alice's key did not go out
    assert failures == 1 and await bob.fetch() == []
    alice.transport.to_device = real  # type: ignore[method-assign]

    assert await alice.fetch() == []  # the next fetch sends the queued key
    [bob_code] = only(await bob.fetch(), SasShowCode)
    [alice_code] = only(await alice.fetch(), SasShowCode)
    assert alice_code.emoji == bob_code.emoji
    assert await alice.verification.confirm_sas(transaction) is None
    assert await bob.fetch() == []  # alice's MAC
    assert await bob.verification.confirm_sas(transaction) == SasCompleted(transaction, "alice", "ALICE1")
    assert only(await alice.fetch(), SasCompleted) == [SasCompleted(transaction, "bob", "BOB1")]
    assert alice.verification.state("bob") is VerificationState.VERIFIED


async def test_an_accept_that_fails_to_go_out_can_be_given_again(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await start(new_client(server, tmp_path, "alice"))
    bob = await start(new_client(server, tmp_path, "bob"))
    transaction = await alice.verification.start_sas(bob.username)
    only(await bob.fetch(), SasRequested)
    real = bob.transport.to_device

    async def unavailable(request: Any) -> Any:
        raise ServerError(503, "unavailable", "the database is unreachable")

    bob.transport.to_device = unavailable  # type: ignore[method-assign]
    with pytest.raises(ServerError):
        await bob.verification.accept_sas(transaction)
    bob.transport.to_device = real  # type: ignore[method-assign]
    await bob.verification.accept_sas(transaction)  # still pending: the user's second try goes out
    assert await alice.fetch() == []
    [bob_code] = only(await bob.fetch(), SasShowCode)
    [alice_code] = only(await alice.fetch(), SasShowCode)
    assert alice_code.emoji == bob_code.emoji
