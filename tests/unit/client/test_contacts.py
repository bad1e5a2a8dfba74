"""Contacts and signed safety notices over a fake transport: the notice key is pinned on first use, and
only notices signed by it and addressed to this account are shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeServer, new_client, start

from vigil.client.contacts import NOTICE_KEY_SECRET
from vigil.errors import TamperError
from vigil.protocol.contacts import NoticeAction, SafetyNoticeBody
from vigil.protocol.notices import notice_public_key, sign_notice
from vigil.protocol.reports import ReportReason

SEED = b"s" * 32


def _notice(notice_id: int, recipient: str, seed: bytes = SEED) -> object:
    body = SafetyNoticeBody(
        id=notice_id,
        recipient=recipient,
        subject="stranger",
        kind="unconnected_adult",
        text="someone you do not know asked to connect",
        actions=[NoticeAction.BLOCK, NoticeAction.REPORT],
        created_at_ms=5,
    )
    return sign_notice(seed, body)


async def test_only_genuine_notices_for_this_account_are_shown(tmp_path: Path) -> None:
    server = FakeServer(notice_public_key=notice_public_key(SEED))
    teen = await start(new_client(server, tmp_path, "teen"))
    server.signed_notices = [_notice(1, "teen"), _notice(2, "other"), _notice(3, "teen", b"f" * 32)]  # type: ignore[list-item]
    shown = await teen.safety_notices()
    actions = (NoticeAction.BLOCK, NoticeAction.REPORT)
    assert [(n.id, n.subject, n.actions) for n in shown] == [(1, "stranger", actions)]
    assert len(teen.rejected_notices) == 2
    assert teen.store.get_secret(NOTICE_KEY_SECRET) == notice_public_key(SEED).hex()


async def test_a_changed_notice_key_is_refused(tmp_path: Path) -> None:
    server = FakeServer(notice_public_key=notice_public_key(SEED))
    teen = await start(new_client(server, tmp_path, "teen"))
    await teen.safety_notices()
    server.notice_public_key = notice_public_key(b"f" * 32)
    server.signed_notices = [_notice(1, "teen", b"f" * 32)]  # type: ignore[list-item]
    with pytest.raises(TamperError, match="key changed"):
        await teen.safety_notices()


async def test_contact_calls_go_through_the_typed_transport(tmp_path: Path) -> None:
    server = FakeServer()
    teen = await start(new_client(server, tmp_path, "teen"))
    assert (await teen.request_contact("adult")).recipient == "adult"
    assert (await teen.block_request(4)).state == "blocked"
    assert await teen.contacts() == ["bob"]
    accepted = await teen.report_account("adult", ReportReason.GROOMING)
    assert accepted.reported == "adult" and accepted.blocked
    assert [m for m, _ in server.calls if m != "key_counts" and m != "upload_keys"] == [
        "request_contact",
        "answer_contact_request",
        "contacts",
        "report_account",
    ]
    assert server.calls[-3][1] == (4, "block")
