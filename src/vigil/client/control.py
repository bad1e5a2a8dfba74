"""Receiving control messages (`MessageKind.CONTROL`): room keys, group metadata and SAS, each an Olm
message for this device. Like every delivery, the Olm ratchet advances only if the content checked out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil.client.engine import PeerDevice
from vigil.client.groups import GroupUpdated
from vigil.client.verification import VerificationEvent
from vigil.errors import DecryptionError, ProtocolError, TamperError, ValidationError
from vigil.protocol.group_wire import GroupMeta, parse_control_payload
from vigil.protocol.megolm import RoomKeyShare
from vigil.protocol.wire import Delivery

if TYPE_CHECKING:
    from vigil.client.client import Client, RejectedDelivery

__all__ = ["open_control"]


async def open_control(
    client: Client, delivery: Delivery, sender: PeerDevice
) -> GroupUpdated | VerificationEvent | RejectedDelivery | None:
    """Handles one control delivery; returns the event for the app, if any."""
    from vigil.client.client import _rejected

    try:
        decrypted = client.engine.decrypt_olm(delivery, sender, client.store.pickle_key)
        message = parse_control_payload(decrypted.plaintext)
        event: GroupUpdated | None = None
        match message:
            case RoomKeyShare():
                client.groups.accept_room_key(message, delivery, sender)
            case GroupMeta():
                event = client.groups.accept_meta(message, delivery)
            case _:
                pass
    except (DecryptionError, TamperError, ProtocolError, ValidationError) as error:
        return _rejected(delivery, error.detail)
    # The ratchet state is swapped in before a SAS step runs: that step may answer over the same session.
    client.engine.accept_olm(delivery.sender_device, decrypted)
    with client.store.transaction():
        client._persist()
        client.store.mark_processed(delivery.sender, delivery.message_id)
    if isinstance(message, RoomKeyShare | GroupMeta):
        return event
    try:
        return await client.verification.handle(sender, message)
    except (TamperError, ProtocolError, ValidationError) as error:
        return _rejected(delivery, error.detail)
