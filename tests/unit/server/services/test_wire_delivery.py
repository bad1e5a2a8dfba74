"""The push path builds deliveries as dicts without the pydantic model; they must be exactly what the
model would send."""

from __future__ import annotations

import json

import pytest

from vigil.errors import ValidationError
from vigil.protocol.wire import Delivery
from vigil.server.db.messaging import PendingEntry
from vigil.server.delivery import Push, frame_of, pushes_of_one_message
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


def test_pushes_of_one_message_are_each_entry_as_the_model_dumps_it() -> None:
    # One message's entries (a group message: one shared body) serialised once, differing only in id.
    ids = [7, 8, 1_000_000_000_123]
    pushes = pushes_of_one_message(wire_delivery(ENTRY), ids)
    assert [p.delivery_id for p in pushes] == ids
    for push, entry_id in zip(pushes, ids, strict=True):
        assert json.loads(push.json) == to_delivery(ENTRY._replace(id=entry_id)).model_dump(mode="json")
    assert Push.of(wire_delivery(ENTRY)) == Push(
        42, pushes_of_one_message(wire_delivery(ENTRY), [42])[0].json
    )


def test_a_frame_of_pushes_is_the_deliveries_frame_clients_read() -> None:
    pushes = [*pushes_of_one_message(wire_delivery(ENTRY), [1, 2]), Push.of(wire_delivery(ENTRY))]
    frame = json.loads(frame_of(pushes))
    assert frame["type"] == "deliveries"
    assert [Delivery.model_validate(m).delivery_id for m in frame["messages"]] == [1, 2, 42]
    assert json.loads(frame_of([])) == {"type": "deliveries", "messages": []}
