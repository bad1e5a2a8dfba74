"""What the app shows, kept on the device: per-conversation unread counts and last lines, the local
notices of a timeline (key changes, images that could not be sent or shown), nudity scores, decrypted
images and the user's settings. Everything is sealed in the profile's encrypted device store (never in
the browser); the timeline itself is the client's own message history.

Pure functions build the timeline and conversation list from those records, so they are unit-tested
without a server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from vigil.app.nudity import DEFAULT_THRESHOLD
from vigil.client.events import GROUP_PREFIX, group_id_of
from vigil.client.store import DeviceStore

__all__ = [
    "AGE_BAND_FIELD",
    "CONVERSATION_LIMIT",
    "ConversationRow",
    "Settings",
    "TimelineItem",
    "ViewState",
    "build_timeline",
    "conversation_rows",
]

AGE_BAND_FIELD: Final = "age_band"  # set at registration (by the app or `vigil chat register`)
_VIEW_FIELD: Final = "app_view"
CONVERSATION_LIMIT: Final = 200  # messages shown per timeline
MAX_NOTICES: Final = 200  # per conversation


@dataclass
class Settings:
    blur_for_adult: bool = False  # minors always get the blur; adults may turn it on
    threshold: float = DEFAULT_THRESHOLD


@dataclass
class ViewState:
    unread: dict[str, int] = field(default_factory=dict)
    last: dict[str, tuple[int, str]] = field(default_factory=dict)  # conversation -> (ms, line)
    notices: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)  # (ms, kind, text)
    scores: dict[str, float] = field(default_factory=dict)  # message id -> nudity score
    revealed: set[str] = field(default_factory=set)  # flagged images the user chose to view
    withheld: set[str] = field(default_factory=set)
    mimes: dict[str, str] = field(default_factory=dict)  # message id -> mime of a kept image
    settings: Settings = field(default_factory=Settings)

    @classmethod
    def load(cls, store: DeviceStore) -> ViewState:
        raw = store.get_secret(_VIEW_FIELD)
        if raw is None:
            return cls()
        data = json.loads(raw)
        return cls(
            unread={k: int(v) for k, v in data.get("unread", {}).items()},
            last={k: (int(v[0]), str(v[1])) for k, v in data.get("last", {}).items()},
            notices={
                k: [(int(n[0]), str(n[1]), str(n[2])) for n in v] for k, v in data.get("notices", {}).items()
            },
            scores={k: float(v) for k, v in data.get("scores", {}).items()},
            revealed=set(data.get("revealed", [])),
            withheld=set(data.get("withheld", [])),
            mimes=dict(data.get("mimes", {})),
            settings=Settings(**data.get("settings", {})),
        )

    def save(self, store: DeviceStore) -> None:
        store.set_secret(
            _VIEW_FIELD,
            json.dumps(
                {
                    "unread": self.unread,
                    "last": self.last,
                    "notices": self.notices,
                    "scores": self.scores,
                    "revealed": sorted(self.revealed),
                    "withheld": sorted(self.withheld),
                    "mimes": self.mimes,
                    "settings": {
                        "blur_for_adult": self.settings.blur_for_adult,
                        "threshold": self.settings.threshold,
                    },
                }
            ),
        )

    def touch(self, conversation: str, at_ms: int, line: str, *, unread: bool) -> None:
        self.last[conversation] = (at_ms, line)
        if unread:
            self.unread[conversation] = self.unread.get(conversation, 0) + 1

    def notice(self, conversation: str, at_ms: int, kind: str, text: str) -> None:
        kept = self.notices.setdefault(conversation, [])
        kept.append((at_ms, kind, text))
        del kept[:-MAX_NOTICES]
        self.touch(conversation, at_ms, text, unread=False)


def keep_image(
    store: DeviceStore, view: ViewState, sender: str, message_id: str, data: bytes, mime: str
) -> None:
    """The decrypted image, sealed in the device store's attachment table (where the SDK already keeps
    received attachments for reports) so the timeline shows it after a restart; sent ones are kept too."""
    store.keep_attachment(sender, message_id, data)
    view.mimes[message_id] = mime


def kept_image(store: DeviceStore, sender: str, message_id: str) -> bytes | None:
    return store.attachment(sender, message_id)


@dataclass(frozen=True, slots=True)
class TimelineItem:
    at_ms: int
    kind: str  # "message" | "image" | "notice:<kind>"
    sender: str
    mine: bool
    text: str
    message_id: str | None = None
    image: bool = False
    blurred: bool = False
    withheld: bool = False


def build_timeline(
    records: list[dict[str, Any]],
    view: ViewState,
    conversation: str,
    me: str,
    *,
    blur: bool,
) -> list[TimelineItem]:
    """The conversation's messages (history records, oldest first) merged with its local notices by time.
    An image whose score reached the threshold is blurred when `blur` holds, unless the user revealed it."""
    items: list[TimelineItem] = []
    for record in records:
        payload = record.get("payload")
        if not isinstance(payload, dict):
            continue
        message_id = str(payload.get("message_id", ""))
        at_ms = int(record.get("server_ts_ms") or payload.get("sent_at_ms") or 0)
        attachment = payload.get("attachment")
        image = isinstance(attachment, dict) and str(attachment.get("mime", "")).startswith("image/")
        withheld = message_id in view.withheld
        flagged = view.scores.get(message_id, 0.0) >= view.settings.threshold
        items.append(
            TimelineItem(
                at_ms=at_ms,
                kind="image" if image else "message",
                sender=str(payload.get("sender", "")),
                mine=payload.get("sender") == me,
                text=str(payload.get("body", "")),
                message_id=message_id,
                image=image and not withheld and message_id in view.mimes,
                blurred=image and blur and flagged and message_id not in view.revealed,
                withheld=withheld,
            )
        )
    for at_ms, kind, text in view.notices.get(conversation, []):
        items.append(TimelineItem(at_ms=at_ms, kind=f"notice:{kind}", sender="", mine=False, text=text))
    items.sort(key=lambda item: item.at_ms)
    return items[-CONVERSATION_LIMIT:]


@dataclass(frozen=True, slots=True)
class ConversationRow:
    conversation: str
    name: str
    is_group: bool
    unread: int
    last_line: str
    last_ms: int


def conversation_rows(
    view: ViewState, contacts: list[str], group_names: dict[str, str]
) -> list[ConversationRow]:
    """Every conversation with something in it, every contact and every group, newest first."""
    names: dict[str, str] = {c: c for c in contacts}
    for group_id, name in group_names.items():
        names[GROUP_PREFIX + group_id] = name
    for conversation in view.last:
        gid = group_id_of(conversation)
        names.setdefault(conversation, group_names.get(gid, "(unnamed group)") if gid else conversation)
    rows = [
        ConversationRow(
            conversation=c,
            name=name,
            is_group=group_id_of(c) is not None,
            unread=view.unread.get(c, 0),
            last_line=view.last.get(c, (0, ""))[1],
            last_ms=view.last.get(c, (0, ""))[0],
        )
        for c, name in names.items()
    ]
    rows.sort(key=lambda row: (-row.last_ms, row.name))
    return rows
