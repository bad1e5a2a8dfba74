"""Migration 0026 (group bodies stored once) on SQLite: it rebuilds the queue table, and must keep the
waiting entries and the AUTOINCREMENT counter (an entry id handed out and acknowledged before the
upgrade is never given to a new entry); its downgrade copies shared bodies back into the entries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from sqlalchemy import Connection, text

from vigil.server.db.engine import alembic_config, create_engine


def _to(revision: str, *, down: bool = False) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        config = alembic_config(connection, pseudonym_key=None)
        (command.downgrade if down else command.upgrade)(config, revision)

    return run


async def test_the_queue_keeps_its_entries_and_its_id_counter(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_to("0025_no_size_bucket_in_messages"))
            await connection.execute(
                text(
                    "INSERT INTO users (id, username, age_band, created_at_ms)"
                    " VALUES (1, 'alice', 'adult', 0)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO devices (id, user_id, curve25519, ed25519, signature, credential_sha256,"
                    " created_at_ms) VALUES ('d1', 1, 'k', 'k', 's', x'00', 0)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO messages (id, client_id, sender_user_id, sender_device_id, conversation,"
                    " kind, commitment, franking_tag, server_ts_ms, device_count)"
                    " VALUES (1, 'm', 1, 'd1', 'group:g', 'text', x'00', x'00', 0, 1)"
                )
            )
            for entry_id in (1, 2, 3):
                await connection.execute(
                    text(
                        "INSERT INTO queue (id, device_id, message_id, message_type, body)"
                        " VALUES (:id, 'd1', 1, 2, x'0102')"
                    ),
                    {"id": entry_id},
                )
            await connection.execute(text("DELETE FROM queue WHERE id = 3"))  # the highest id was acked
            await connection.run_sync(_to("heads"))
            await connection.execute(
                text("INSERT INTO queue (device_id, message_id, message_type) VALUES ('d1', 1, 2)")
            )
            ids = (await connection.execute(text("SELECT id, body FROM queue ORDER BY id"))).all()
            assert ids == [(1, b"\x01\x02"), (2, b"\x01\x02"), (4, None)]
            await connection.execute(text("UPDATE messages SET shared_body = x'0304'"))
            await connection.run_sync(_to("0025_no_size_bucket_in_messages", down=True))
            bodies = (await connection.execute(text("SELECT id, body FROM queue ORDER BY id"))).all()
            assert bodies == [(1, b"\x01\x02"), (2, b"\x01\x02"), (4, b"\x03\x04")]
    finally:
        await engine.dispose()
