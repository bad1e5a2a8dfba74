"""Building abuse reports from this device's history (DESIGN.md §3 "Report").

For the reported message and up to `context` earlier messages of the conversation, the report reveals
what this device holds: the payload with its franking key, the commitment, the server's tag and
timestamp, and the attachment's plaintext when there is one (kept by this device when it received it,
since the server deletes a blob once it was fetched), so the server can check it against the committed
hash and size. For a message this device sent itself the history keeps the tag and timestamp from the
send's answer, and the commitment is recomputed from the payload; only a sent record without a tag (from
a server that gave none) leaves the server to check it against its own record while it still has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vigil.client.device import DeviceCore
from vigil.client.engine import commitment_of
from vigil.errors import NotFoundError, ValidationError, VigilError
from vigil.protocol.encoding import b64encode
from vigil.protocol.reports import (
    MAX_CONTEXT_MESSAGES,
    ReportAccepted,
    ReportedMessage,
    ReportReason,
    ReportRequest,
)
from vigil.protocol.wire import InnerPayload

__all__ = ["DEFAULT_CONTEXT", "build_report", "report_message", "reported_message", "select_records"]

DEFAULT_CONTEXT = 5  # as WhatsApp: the reported message and the five before it
HISTORY_SCAN = 5000


def reported_message(record: Mapping[str, Any], attachment: bytes | None) -> ReportedMessage:
    """One history record as a report item. Raises ValidationError on a record without a payload."""
    raw = record.get("payload")
    if not isinstance(raw, dict):
        raise ValidationError("history record has no payload")
    commitment = record.get("commitment")
    if not isinstance(commitment, str):
        payload = InnerPayload.model_validate(raw)
        commitment = b64encode(commitment_of(payload))
    tag = record.get("franking_tag")
    server_ts = record.get("server_ts_ms")
    return ReportedMessage(
        payload=raw,
        commitment=commitment,
        franking_tag=tag if isinstance(tag, str) else None,
        server_ts_ms=server_ts if isinstance(server_ts, int) else None,
        attachment=None if attachment is None else b64encode(attachment),
    )


def select_records(history: list[dict[str, Any]], message_id: str, context: int) -> list[dict[str, Any]]:
    """The reported record first, then up to `context` earlier ones, nearest first. `history` is the
    conversation oldest first. Raises NotFoundError if the message is not there, ValidationError for a
    context outside 0..MAX_CONTEXT_MESSAGES."""
    if not 0 <= context <= MAX_CONTEXT_MESSAGES:
        raise ValidationError(f"context must be between 0 and {MAX_CONTEXT_MESSAGES}")
    ids = [r.get("payload", {}).get("message_id") for r in history]
    if message_id not in ids:
        raise NotFoundError("that message is not in this device's history")
    index = ids.index(message_id)
    return [history[index], *reversed(history[max(0, index - context) : index])]


def build_report(
    records: list[dict[str, Any]],
    reason: ReportReason,
    *,
    note: str | None = None,
    attachments: Mapping[str, bytes] | None = None,
    block: bool = False,
) -> ReportRequest:
    """`records` as `select_records` returns them; attachment plaintexts by message id."""
    items = []
    for record in records:
        message_id = record["payload"].get("message_id")
        items.append(reported_message(record, (attachments or {}).get(message_id)))
    return ReportRequest(reason=reason, note=note or None, messages=items, block=block)


async def report_message(
    core: DeviceCore,
    message_id: str,
    conversation: str,
    reason: ReportReason,
    *,
    note: str | None = None,
    context: int = DEFAULT_CONTEXT,
    attachments: Mapping[str, bytes] | None = None,
    block: bool = False,
) -> ReportAccepted:
    """Builds the report from this device's history and sends it. An attachment not given in
    `attachments` comes from this device's store (where received attachments are kept), else is
    downloaded and decrypted again if the server still holds its blob; otherwise the item goes without
    it (and will not verify). Raises NotFoundError, ValidationError, and the transport's errors."""
    records = select_records(core.store.history(conversation, HISTORY_SCAN), message_id, context)
    found = dict(attachments or {})
    for record in records:
        payload = InnerPayload.model_validate(record["payload"])
        if payload.attachment is None or payload.message_id in found:
            continue
        kept = core.store.attachment(payload.sender, payload.message_id)
        if kept is not None:
            found[payload.message_id] = kept
            continue
        try:
            received = await core.fetch_attachment(payload.attachment)
        except VigilError:
            continue
        if received is not None:
            found[payload.message_id] = received.data
    return await core.transport.report(
        build_report(records, reason, note=note, attachments=found, block=block)
    )
