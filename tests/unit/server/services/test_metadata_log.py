"""The metadata log's times: whole seconds, and nothing a risk feature reads changes (issue 16)."""

from __future__ import annotations

import pytest

from vigil.errors import ValidationError
from vigil.protocol.wire import MessageKind
from vigil.safety.behavior.events import event_from_record
from vigil.safety.behavior.features import DAY_MS, HOUR_MS
from vigil.server.db.metadata import MetadataEventRow
from vigil.server.services import metadata

LAST_MS_OF_A_NIGHT_HOUR = 1_800_000_000_000 // HOUR_MS * HOUR_MS + 23 * HOUR_MS - 1  # hh:59:59.999


def test_events_are_logged_in_whole_seconds_in_the_same_hour_and_day() -> None:
    event = metadata.message_event(
        LAST_MS_OF_A_NIGHT_HOUR, "alice", recipient="bob", group=None, size_bucket=256, kind=MessageKind.TEXT
    )
    values = metadata.values_of_event(event)
    logged = values["at_ms"]
    assert logged % metadata.LOG_RESOLUTION_MS == 0
    assert LAST_MS_OF_A_NIGHT_HOUR - logged == metadata.LOG_RESOLUTION_MS - 1
    assert logged // HOUR_MS == LAST_MS_OF_A_NIGHT_HOUR // HOUR_MS  # night-time features see the same hour
    assert logged // DAY_MS == LAST_MS_OF_A_NIGHT_HOUR // DAY_MS  # day buckets unchanged
    read_back = metadata.event_of_row(MetadataEventRow(**values))
    assert read_back.at_ms == logged and read_back.sender == "alice"


def _via_record(row: MetadataEventRow) -> object:
    """The general path `event_of_row` takes for every kind but messages."""
    rec: dict[str, object] = {
        "k": row.kind,
        "t": row.at_ms,
        "s": row.actor,
        "b": metadata.UNKNOWN_SIZE_BUCKET,
    }
    for key, value in (("r", row.target), ("g", row.group_id), ("c", row.content)):
        if value is not None:
            rec[key] = value
    return event_from_record(rec)


def test_a_message_row_reads_back_as_the_record_path_reads_it() -> None:
    direct = MetadataEventRow(at_ms=1000, kind="msg", actor="a", target="b", group_id=None, content="image")
    grouped = MetadataEventRow(at_ms=2000, kind="msg", actor="a", target=None, group_id="g1", content="text")
    for row in (direct, grouped):
        assert metadata.event_of_row(row) == _via_record(row)


def test_a_corrupt_message_row_is_refused_as_the_record_path_refuses_it() -> None:
    both = MetadataEventRow(at_ms=1000, kind="msg", actor="a", target="b", group_id="g1", content="text")
    neither = MetadataEventRow(at_ms=1000, kind="msg", actor="a", target=None, group_id=None, content="text")
    unknown_kind = MetadataEventRow(at_ms=1000, kind="msg", actor="a", target="b", group_id=None, content="?")
    no_kind = MetadataEventRow(at_ms=1000, kind="msg", actor="a", target="b", group_id=None, content=None)
    for row in (both, neither, unknown_kind, no_kind):
        with pytest.raises(ValidationError):
            metadata.event_of_row(row)
        with pytest.raises(ValidationError):
            _via_record(row)
