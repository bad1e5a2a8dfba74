"""Receiving control messages (`MessageKind.CONTROL`): room keys, group metadata and SAS, each an Olm
message for this device. Like every delivery, the Olm ratchet advances only if the content checked out."""

from __future__ import annotations

from vigil.client.device import DeviceCore
from vigil.client.engine import Changes, PeerDevice
from vigil.client.events import GroupUpdated, RejectedDelivery, VerificationEvent, rejected
from vigil.client.groups import GroupManager
from vigil.client.verification import VerificationManager
from vigil.errors import DecryptionError, ProtocolError, TamperError, ValidationError
from vigil.protocol.group_wire import GroupMeta, parse_control_payload
from vigil.protocol.megolm import RoomKeyShare
from vigil.protocol.wire import Delivery

__all__ = ["open_control"]


async def open_control(
    core: DeviceCore,
    groups: GroupManager,
    verification: VerificationManager,
    delivery: Delivery,
    sender: PeerDevice,
) -> GroupUpdated | VerificationEvent | RejectedDelivery | None:
    """Handles one control delivery; returns the event for the app, if any."""
    try:
        decrypted = core.engine.decrypt_olm(delivery, sender, core.store.pickle_key)
        message = parse_control_payload(decrypted.plaintext)
        event: GroupUpdated | None = None
        room_key = Changes()
        match message:
            case RoomKeyShare():
                room_key = groups.accept_room_key(message, delivery, sender)
            case GroupMeta():
                event = groups.accept_meta(message, delivery)
            case _:
                pass
    except (DecryptionError, TamperError, ProtocolError, ValidationError) as error:
        return rejected(delivery, error.detail)
    # The ratchet state is swapped in before a SAS step runs: that step may answer over the same session.
    changes = core.engine.accept_olm(delivery.sender_device, decrypted).merge(room_key)
    core.commit(changes, processed=(delivery.sender, delivery.message_id), event=event)
    if isinstance(message, RoomKeyShare | GroupMeta):
        return event
    try:
        return await verification.handle(sender, message)
    except (TamperError, ProtocolError, ValidationError) as error:
        return rejected(delivery, error.detail)
