"""Building the timeline and the conversation list from history records and the app's view state."""

from __future__ import annotations

from typing import Any

from vigil.app.view import ViewState, build_timeline, conversation_rows


def _record(message_id: str, sender: str, body: str, at: int, *, image: bool = False) -> dict[str, Any]:
    attachment = (
        {"blob_id": "b", "key": "k", "sha256": "h", "size": 1, "mime": "image/png"} if image else None
    )
    return {
        "payload": {
            "message_id": message_id,
            "sender": sender,
            "body": body,
            "sent_at_ms": at,
            "attachment": attachment,
        },
        "server_ts_ms": at + 1,
    }


def test_flagged_image_is_blurred_only_with_blur_and_until_revealed() -> None:
    view = ViewState()
    view.settings.threshold = 0.5
    view.mimes["m2"] = "image/png"
    view.scores["m2"] = 0.6
    records = [_record("m1", "sam", "hi", 10), _record("m2", "sam", "", 20, image=True)]
    blurred = build_timeline(records, view, "sam", "mia", blur=True)
    assert [i.message_id for i in blurred] == ["m1", "m2"]
    assert blurred[1].image and blurred[1].blurred
    plain = build_timeline(records, view, "sam", "mia", blur=False)
    assert plain[1].image and not plain[1].blurred
    view.settings.threshold = 0.61  # just above the score: not flagged
    assert not build_timeline(records, view, "sam", "mia", blur=True)[1].blurred
    view.settings.threshold = 0.5
    view.revealed.add("m2")
    assert not build_timeline(records, view, "sam", "mia", blur=True)[1].blurred


def test_notices_merge_by_time_and_withheld_images_are_never_shown() -> None:
    view = ViewState()
    view.mimes["m2"] = "image/png"
    view.withheld.add("m2")
    view.notice("sam", 15, "key-change", "sam's devices or keys changed")
    records = [_record("m1", "mia", "hi", 10), _record("m2", "sam", "", 20, image=True)]
    items = build_timeline(records, view, "sam", "mia", blur=True)
    assert [i.kind for i in items] == ["message", "notice:key-change", "image"]
    assert items[0].mine and not items[2].mine
    assert items[2].withheld and not items[2].image


def test_conversation_rows_name_groups_count_unread_and_sort_newest_first() -> None:
    view = ViewState()
    view.touch("sam", 100, "sam: hi", unread=True)
    view.touch("sam", 200, "sam: there?", unread=True)
    view.touch("group:abc", 300, "deal", unread=False)
    rows = conversation_rows(view, ["sam", "zoe"], {"abc": "Book club"})
    assert [(r.name, r.unread, r.is_group) for r in rows] == [
        ("Book club", 0, True),
        ("sam", 2, False),
        ("zoe", 0, False),
    ]
    assert rows[1].last_line == "sam: there?"


def test_view_state_round_trips_through_json() -> None:
    class Store:
        def __init__(self) -> None:
            self.values: dict[str, str] = {}

        def get_secret(self, name: str) -> str | None:
            return self.values.get(name)

        def set_secret(self, name: str, value: str) -> None:
            self.values[name] = value

    store = Store()
    view = ViewState()
    view.touch("sam", 5, "hi", unread=True)
    view.notice("sam", 6, "withheld", "This image could not be sent.")
    view.scores["m"] = 0.25
    view.revealed.add("m")
    view.settings.blur_for_adult = True
    view.settings.threshold = 0.3
    view.save(store)  # type: ignore[arg-type]
    again = ViewState.load(store)  # type: ignore[arg-type]
    assert again == view
