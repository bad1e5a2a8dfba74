"""What the app's session does with client events, without a server: key-change warnings and withheld
images land in the right timeline, SAS steps in the verification view, and a minor always gets the blur."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vigil.app.session import COULD_NOT_SHOW, AppSession
from vigil.client.events import ImageWithheld, KeyChangeWarning, SasShowCode
from vigil.protocol.ids import DeviceId, MessageId, UserId
from vigil.protocol.verification import SasEmoji
from vigil.protocol.wire import AgeBand


def _session(tmp_path: Path) -> AppSession:
    return AppSession(tmp_path / "p.db", None, None)


async def test_key_change_warnings_go_to_the_contacts_timeline_loud_when_verified(tmp_path: Path) -> None:
    session = _session(tmp_path)
    client: Any = None
    quiet = KeyChangeWarning(UserId("sam"), ("D2",), (), (), False)
    loud = KeyChangeWarning(UserId("sam"), (), (), ("D1",), True)
    await session._apply(client, quiet)
    await session._apply(client, loud)
    kinds = [(kind, text) for _ms, kind, text in session.view.notices["sam"]]
    assert kinds[0] == ("key-change", "sam's devices or keys changed (a new phone or a reinstall).")
    assert kinds[1][0] == "key-change" and "Security warning" in kinds[1][1]


async def test_a_withheld_image_is_a_neutral_notice_and_never_shown(tmp_path: Path) -> None:
    session = _session(tmp_path)
    withheld = ImageWithheld(MessageId("m1"), "sam", UserId("sam"), DeviceId("D"), "", "matched", "v1", 1, 2)
    await session._apply(None, withheld)  # type: ignore[arg-type]
    assert "m1" in session.view.withheld
    assert session.view.last["sam"] == (2, COULD_NOT_SHOW) and session.view.unread["sam"] == 1
    assert "known" not in COULD_NOT_SHOW and "abuse" not in COULD_NOT_SHOW


async def test_sas_codes_are_kept_for_the_contact_page(tmp_path: Path) -> None:
    session = _session(tmp_path)
    emoji = tuple(SasEmoji(i, "🐶", f"Dog{i}") for i in range(7))
    await session._apply(None, SasShowCode("t1", UserId("sam"), DeviceId("D"), emoji, (1, 2, 3)))  # type: ignore[arg-type]
    flow = session.sas["sam"]
    assert flow.state == "compare" and len(flow.emoji) == 7 and flow.decimals == (1, 2, 3)


def test_minors_always_get_the_blur_adults_by_choice(tmp_path: Path) -> None:
    session = _session(tmp_path)
    session.age_band = AgeBand.TEEN_13_15
    session.view.settings.blur_for_adult = False
    assert session.blur
    session.age_band = AgeBand.ADULT
    assert not session.blur
    session.view.settings.blur_for_adult = True
    assert session.blur
