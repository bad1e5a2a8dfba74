"""Device-to-device control messages: room keys, group metadata and SAS verification, each an Olm
ciphertext for one device (Matrix's to-device messages).

Who may send to-device traffic to whom (docs/minors.md, "Device-to-device messages"):
- to the sender's own other devices: always (device verification, key backup between one's devices);
- `group:<id>`: the sender and every target must be members of the group, and the sender's standing must
  allow a group send (`enforcement.check_group_send`: a restricted account puts nothing on a device in a
  group holding a minor). Membership already passed the group rules (a minor is only in a group with
  adults they are connected to), and co-members need each other's room keys to read the group, so no
  further rule applies here; a block between co-members hides messages on the blocker's devices (client
  side), it does not stop key sharing;
- otherwise `conversation` names one user, every target is a device of that user or of the sender, and
  the pair must pass exactly the send policy of `/v1/messages` (`enforcement.check_send`: suspension,
  restriction, block, minors only from connections), with the same neutral refusal. Key verification
  (SAS) between two accounts that may message each other therefore keeps working; nobody else can put
  anything on a device.
Control messages carry keys, never user content, so they are not franked: the commitment is 32 zero
bytes and no report can cite one.
"""

from __future__ import annotations

from vigil.errors import NotFoundError, ValidationError
from vigil.protocol.encoding import b64decode
from vigil.protocol.franking import FrankingContext, server_tag
from vigil.protocol.group_wire import ToDeviceAccepted, ToDeviceRequest
from vigil.protocol.wire import MessageKind
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository
from vigil.server.db.groups import GroupRepository
from vigil.server.db.messaging import MessageRepository, MessageRow, QueueRow
from vigil.server.services import enforcement
from vigil.server.services.accounts import AuthenticatedDevice

__all__ = ["NO_COMMITMENT", "send_to_device"]

NO_COMMITMENT = bytes(32)
_GROUP_PREFIX = "group:"


async def send_to_device(
    ctx: ServerContext, by: AuthenticatedDevice, request: ToDeviceRequest
) -> ToDeviceAccepted:
    """Queues each ciphertext for its device. Raises NotFoundError for an unknown user or group (or one
    the sender is not in), ValidationError for a target outside the conversation or listed twice,
    PolicyViolation when the send policy refuses a direct conversation (see the module docstring)."""
    targets = [m.device_id for m in request.messages]
    if len(set(targets)) != len(targets) or by.device_id in targets:
        raise ValidationError("list each target device once, and not the sending device")
    async with ctx.sessions() as session, session.begin():
        writer = MessageRepository(session)
        previous = await writer.by_client_id(by.user_id, request.id)
        if previous is not None:
            return ToDeviceAccepted(message_id=previous.client_id, devices=previous.device_count)
        groups = GroupRepository(session)
        owners = await groups.device_owners(targets)
        if request.conversation.startswith(_GROUP_PREFIX):
            group_id = request.conversation.removeprefix(_GROUP_PREFIX)
            await enforcement.check_group_send(session, by.user_id, group_id)
            allowed = {d.id: u for d, u in await groups.member_devices(group_id)}
        else:
            peer = await UserRepository(session).by_username(request.conversation)
            if peer is None:
                raise NotFoundError(f"no user named {request.conversation}")
            await enforcement.check_send(session, by.user_id, by.username, peer)
            allowed = {d: u for d, u in owners.items() if u in (peer.username, by.username)}
        for message in request.messages:
            if allowed.get(message.device_id) != message.username or owners.get(message.device_id) is None:
                raise ValidationError(
                    f"device {message.device_id} is not a device of {message.username} here"
                )
        now_ms = ctx.clock_ms()
        bodies = {m.device_id: (m.type, b64decode(m.body, field="ciphertext body")) for m in request.messages}
        message_row = MessageRow(
            client_id=request.id,
            sender_user_id=by.user_id,
            sender_device_id=by.device_id,
            conversation=request.conversation,
            kind=MessageKind.CONTROL.value,
            commitment=NO_COMMITMENT,
            franking_tag=server_tag(
                ctx.franking_key,
                FrankingContext(NO_COMMITMENT, by.username, request.conversation, now_ms, request.id),
            ),
            server_ts_ms=now_ms,
            device_count=len(bodies),
        )
        entries = [QueueRow(device_id=d, message_type=kind, body=body) for d, (kind, body) in bodies.items()]
        await writer.add(message_row, entries)
    await ctx.delivery.notify(bodies)
    return ToDeviceAccepted(message_id=request.id, devices=len(bodies))
