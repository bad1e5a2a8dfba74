"""Reports built from this device's history over a fake transport: the franking proof the server relayed,
the recomputed commitment of own messages, context order, and attachments fetched again when needed."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fakes import TAG, FakeServer, new_client, start

from vigil.client.events import MessageEvent
from vigil.errors import NotFoundError
from vigil.protocol.reports import ReportReason, ReportRequest


async def test_report_carries_the_relayed_proof_context_and_attachment(tmp_path: Path) -> None:
    server = FakeServer()
    alice = await start(new_client(server, tmp_path, "alice"))
    bob = await start(new_client(server, tmp_path, "bob"))
    first = await alice.send_text("bob", "one")
    await bob.fetch()
    await bob.send_text("alice", "two")
    await alice.send_attachment("bob", b"a file" * 50, "application/pdf", name="f.pdf")
    events = [e for e in await bob.fetch() if isinstance(e, MessageEvent)]
    [attachment_event] = events
    sent_commitments = {r.id: r.commitment for m, r in server.calls if m == "send"}

    await bob.report(attachment_event.message_id, ReportReason.HARASSMENT, conversation="alice", context=5)
    [report] = server.reports
    assert isinstance(report, ReportRequest)
    reported, *context = report.messages
    assert reported.payload["message_id"] == attachment_event.message_id
    assert reported.commitment == sent_commitments[attachment_event.message_id]
    assert reported.franking_tag == TAG and reported.server_ts_ms == 7
    assert reported.attachment is not None and base64.b64decode(reported.attachment) == b"a file" * 50
    # nearest first: bob's own "two" (no tag; commitment recomputed), then alice's "one"
    assert [c.payload["body"] for c in context] == ["two", "one"]
    assert context[0].franking_tag is None
    [own] = [r for m, r in server.calls if m == "send" and r.to == "alice"]
    assert context[0].commitment == own.commitment
    assert context[1].commitment == sent_commitments[first.message_id]


async def test_reporting_a_message_not_in_history_fails_before_sending(tmp_path: Path) -> None:
    server = FakeServer()
    bob = await start(new_client(server, tmp_path, "bob"))
    with pytest.raises(NotFoundError):
        await bob.report("no-such-id", ReportReason.SPAM, conversation="alice")
    assert server.reports == []
