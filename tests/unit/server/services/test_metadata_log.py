"""The metadata log's times: whole seconds, and nothing a risk feature reads changes (issue 16)."""

from __future__ import annotations

from vigil.protocol.wire import MessageKind
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
