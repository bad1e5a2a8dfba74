"""Concurrent first contacts: one-time keys are claimed atomically on every backend, so two senders
starting sessions with the same device at the same moment never get the same key, and every first
message decrypts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from helpers import register, texts

from vigil.client.events import RejectedDelivery
from vigil.protocol.wire import ClaimKeysRequest

SENDERS = 12
CLAIMS = 40  # fewer than the device's stock (ONE_TIME_KEY_TARGET), so no claim needs the fallback key


async def test_concurrent_claims_against_one_device_get_distinct_keys(server, tmp_path: Path) -> None:
    target = await register(server.url, tmp_path, "target")
    claimers = [await register(server.url, tmp_path, f"claimer{n}") for n in range(4)]
    request = ClaimKeysRequest(username=target.username, device_ids=[target.device_id])
    claims = await asyncio.gather(
        *(claimers[n % len(claimers)].transport.claim_keys(request) for n in range(CLAIMS))
    )
    keys = [device.one_time_key for claim in claims for device in claim.devices]
    assert all(key is not None for key in keys) and len(keys) == CLAIMS
    assert not any(device.is_fallback for claim in claims for device in claim.devices)
    assert len({key.key_id for key in keys if key is not None}) == CLAIMS  # no key handed out twice
    for claimer in [target, *claimers]:
        await claimer.close()


async def test_concurrent_first_messages_to_one_device_all_decrypt(server, tmp_path: Path) -> None:
    bob = await register(server.url, tmp_path, "bob")
    senders = [await register(server.url, tmp_path, f"sender{n}") for n in range(SENDERS)]
    await asyncio.gather(*(s.send_text(bob.username, f"first from {s.username}") for s in senders))
    events = await bob.fetch()
    assert not [e for e in events if isinstance(e, RejectedDelivery)]
    assert sorted(texts(events)) == sorted(f"first from {s.username}" for s in senders)
    for client in [bob, *senders]:
        await client.close()
