"""Migration 0027 (image-match records name their reviewers' case) on SQLite: no path closed an image-match
record before it, so the upgrade links each record to the case it joined and closes the records whose
case was since decided, which the image_matches retention sweep can then delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from sqlalchemy import Connection, text

from vigil.server.db.engine import alembic_config, create_engine


def _to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection, pseudonym_key=None), revision)

    return run


async def test_records_are_linked_to_their_case_and_closed_with_a_decided_one(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_to("0026_shared_group_bodies"))
            for user_id, name in ((1, "alice"), (2, "bob")):
                await connection.execute(
                    text(
                        "INSERT INTO users (id, username, age_band, created_at_ms)"
                        " VALUES (:id, :name, 'adult', 0)"
                    ),
                    {"id": user_id, "name": name},
                )
            # alice: case 1 decided at 50 (its record made at 10), case 2 opened at 60 and open (record
            # at 70); bob: case 3 open (record at 10).
            for case_id, subject, state, created, decided in (
                (1, 1, "dismissed", 0, 50),
                (2, 1, "open", 60, None),
                (3, 2, "in_review", 0, None),
            ):
                await connection.execute(
                    text(
                        "INSERT INTO cases (id, subject_user_id, state, priority, top_reason, verified,"
                        " created_at_ms, updated_at_ms, queue, decided_at_ms)"
                        " VALUES (:id, :subject, :state, 100, 'csam', 1, :created, :created, 'general',"
                        " :decided)"
                    ),
                    {
                        "id": case_id,
                        "subject": subject,
                        "state": state,
                        "created": created,
                        "decided": decided,
                    },
                )
            for match_id, subject, created in ((1, 1, 10), (2, 1, 70), (3, 2, 10)):
                await connection.execute(
                    text(
                        "INSERT INTO image_match_cases (id, source, subject_user_id, priority, state,"
                        " direction, bank, entry_hash, pdq, distance, verified, verification, mime,"
                        " image_ciphertext, image_mac, image_ephemeral_key, created_at_ms)"
                        " VALUES (:id, 'voucher', :subject, 100, 'open', 'outgoing', 'b', 'h', 'p', 0, 1,"
                        " 'v', 'image/png', x'00', x'00', x'00', :created)"
                    ),
                    {"id": match_id, "subject": subject, "created": created},
                )
            await connection.run_sync(_to("heads"))
            rows = await connection.execute(
                text("SELECT id, case_id, state FROM image_match_cases ORDER BY id")
            )
            assert [tuple(r) for r in rows.all()] == [(1, 1, "dismissed"), (2, 2, "open"), (3, 3, "open")]
    finally:
        await engine.dispose()
