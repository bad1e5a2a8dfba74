"""The push path builds deliveries as dicts without the pydantic model; they must be exactly what the
model would send."""

from __future__ import annotations

import pytest

from vigil.errors import ValidationError
from vigil.protocol.wire import Delivery
from vigil.server.db.messaging import PendingEntry
from vigil.server.services.messaging import to_delivery, wire_delivery

ENTRY = PendingEntry(
    id=42,
    device_id="dev",
    message_type=2,
    body=b"\x00ciphertext\xff",
    client_id="c0ffee",
    sender_device_id="sdev",
    conversation="group:abc",
    kind="image",
    commitment=b"c" * 32,
    franking_tag=b"t" * 32,
    server_ts_ms=1_700_000_000_123,
    sender="alice",
)


def test_a_wire_delivery_is_what_the_model_dumps() -> None:
    wire = wire_delivery(ENTRY)
    assert wire == to_delivery(ENTRY).model_dump(mode="json")
    assert Delivery.model_validate(wire).model_dump(mode="json") == wire


def test_a_corrupt_entry_type_is_refused() -> None:
    with pytest.raises(ValidationError):
        wire_delivery(ENTRY._replace(message_type=7))
