"""The data inventory lists exactly the columns the row models define, and the threat model carries the
inventory as generated (so the document states, table by table, what the server holds and for how long)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table

from vigil.server.db.inventory import INVENTORY, inventory_differences, render_markdown, rewrite_document
from vigil.server.db.schema import metadata

THREAT_MODEL = Path(__file__).resolve().parents[4] / "docs" / "threat-model.md"


def test_the_inventory_lists_every_stored_column_and_nothing_else() -> None:
    missing, stale = inventory_differences(metadata)
    assert missing == [], (
        f"columns with no purpose, retention or readers in vigil.server.db.inventory: {missing}"
    )
    assert stale == [], f"the inventory lists columns no model has: {stale}"


def test_a_new_column_or_a_dropped_one_is_caught() -> None:
    grown = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(grown)
    Table("users", grown, Column("birth_date", String(10)), extend_existing=True)
    Table("shadow_log", grown, Column("id", Integer, primary_key=True))
    missing, stale = inventory_differences(grown)
    assert missing == ["shadow_log.id", "users.birth_date"]
    assert stale == []
    shrunk = MetaData()
    for table in metadata.sorted_tables:
        if table.name != "blocks":
            table.to_metadata(shrunk)
    assert inventory_differences(shrunk)[1] == [
        "blocks.blocked_user_id",
        "blocks.blocker_user_id",
        "blocks.created_at_ms",
    ]


def test_each_table_is_listed_once_with_its_retention_and_readers() -> None:
    tables = [entry.table for entry in INVENTORY]
    assert len(tables) == len(set(tables))
    for entry in INVENTORY:
        assert entry.holds and entry.retention and entry.readers, entry.table
        assert all(purpose.strip() for purpose in entry.columns.values()), entry.table


def test_the_threat_model_carries_the_generated_inventory() -> None:
    text = THREAT_MODEL.read_text()
    assert rewrite_document(text) == text, (
        "docs/threat-model.md is out of date: "
        "run `python -m vigil.server.db.inventory --write docs/threat-model.md`"
    )
    rendered = render_markdown()
    for entry in INVENTORY:
        assert f"| `{entry.table}` |" in rendered
        assert entry.retention.replace("|", "\\|") in rendered
