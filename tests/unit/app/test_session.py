"""What the app's session does with client events, without a server: key-change warnings and withheld
images land in the right timeline, SAS steps in the verification view, a minor always gets the blur, and a
suspended account's catch-up reads only its notices, whose state drives the account page's appeal."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from vigil.app.session import COULD_NOT_SHOW, AppSession, is_suspension
from vigil.client.contacts import SafetyNotice
from vigil.client.events import ImageWithheld, KeyChangeWarning, SasShowCode
from vigil.errors import PermissionDenied, PolicyViolation
from vigil.protocol.contacts import ContactRequestList
from vigil.protocol.ids import DeviceId, MessageId, UserId
from vigil.protocol.reports import AppealAccepted
from vigil.protocol.verification import SasEmoji
from vigil.protocol.wire import AgeBand
from vigil.safety.policy import NEUTRAL_REFUSAL, Refusal


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


class _Store:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}

    def get_secret(self, name: str) -> str | None:
        return self.secrets.get(name)

    def set_secret(self, name: str, value: str) -> None:
        self.secrets[name] = value


class _SuspendedClient:
    """The SDK surface the poller uses, answering as the server does for a suspended account."""

    def __init__(self, notices: list[SafetyNotice]) -> None:
        self.username, self.store, self.pending = "mal", _Store(), notices
        self.suspended = True

    async def fetch(self) -> list[Any]:
        if self.suspended:
            raise PolicyViolation(Refusal.SUSPENDED.value)
        return []

    async def safety_notices(self, after: int = 0) -> list[SafetyNotice]:
        return [n for n in self.pending if n.id > after]

    async def notices(self, after: int = 0) -> list[Any]:
        return []

    async def appeal(self, reason: str) -> AppealAccepted:
        return AppealAccepted(appeal_id=7, action="suspend")

    async def contacts(self) -> list[str]:
        return []

    async def contact_requests(self) -> ContactRequestList:
        return ContactRequestList(incoming=[], outgoing=[])

    @property
    def groups(self) -> Any:
        async def list_groups() -> Any:
            return SimpleNamespace(groups=[])

        return SimpleNamespace(list_groups=list_groups)

    @property
    def verification(self) -> Any:
        return SimpleNamespace(take_warnings=list)


def _notice(notice_id: int, kind: str, subject: str = "mal") -> SafetyNotice:
    return SafetyNotice(notice_id, subject, kind, f"text of {kind}", (), notice_id * 1000)


async def test_a_suspension_shows_its_notice_then_the_appeal_and_its_outcome(tmp_path: Path) -> None:
    session = _session(tmp_path)
    client = _SuspendedClient([_notice(1, "elevated_risk", subject="sam"), _notice(2, "action_suspend")])
    session.client = client  # type: ignore[assignment]
    assert session.standing().appeal == "none"

    await session.poll(slow=False)  # refused as suspended: only the notices are read
    assert session.suspended
    assert [n.kind for n in session.account_notices()] == ["action_suspend"]
    assert [n.subject for n in session.notices_about_others()] == ["sam"]
    standing = session.standing()
    assert standing.appeal == "open" and standing.action is not None and standing.action.id == 2

    told = await session.appeal("a joke between friends")
    assert "suspend decision" in told and session.standing().appeal == "pending"

    client.pending.append(_notice(3, "appeal_overturned"))
    client.suspended = False
    await session.poll(slow=False)
    assert not session.suspended  # the next catch-up succeeded, and read the outcome at once
    standing = session.standing()
    assert standing.appeal == "overturned" and standing.outcome is not None and standing.outcome.id == 3

    client.pending.append(_notice(4, "action_warn"))  # a later action can be appealed again
    await session._refresh_notices(client)  # type: ignore[arg-type]
    assert session.standing().appeal == "open"


async def test_a_non_suspension_refusal_is_not_taken_for_a_suspension(tmp_path: Path) -> None:
    assert is_suspension(PolicyViolation(Refusal.SUSPENDED.value))
    assert not is_suspension(PolicyViolation(NEUTRAL_REFUSAL))
    assert not is_suspension(PermissionDenied(Refusal.SUSPENDED.value))


async def test_one_event_that_cannot_be_shown_does_not_lose_the_rest_of_its_batch(tmp_path: Path) -> None:
    """The next fetch consumes the whole batch, so the poller applies each event on its own."""
    session = _session(tmp_path)
    emoji = tuple(SasEmoji(i, "🐶", f"Dog{i}") for i in range(7))
    code = SasShowCode("t1", UserId("sam"), DeviceId("D"), emoji, (1, 2, 3))
    client = _SuspendedClient([])
    client.suspended = False
    consumed: list[bool] = []

    async def fetch() -> list[Any]:
        return [object(), code]  # something the app cannot show, then an emoji code

    client.fetch = fetch  # type: ignore[method-assign]
    client.consume = lambda: consumed.append(True)  # type: ignore[attr-defined]
    session.client = client  # type: ignore[assignment]
    applied = session._apply

    async def apply(client: Any, event: Any) -> None:
        if not isinstance(event, SasShowCode):
            raise RuntimeError("cannot show this")
        await applied(client, event)

    session._apply = apply  # type: ignore[method-assign]
    session.view.save = lambda store: None  # type: ignore[method-assign]
    await session.poll(slow=False)
    assert session.sas["sam"].state == "compare" and consumed == [True]
