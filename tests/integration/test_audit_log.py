"""The audit chain and `vigil audit verify`: an edited, removed or truncated entry is detected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import Ran, vigil_in_thread
from live_server import create_postgres_database, drop_postgres_database
from safety_helpers import server_context
from sqlalchemy import text

from vigil.server.offline import offline_context
from vigil.server.services.audit import append_audit, verify_chain
from vigil.server.settings import Settings


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    if backend == "sqlite":
        yield tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
        return
    name, url = create_postgres_database()
    try:
        yield tmp_path, url
    finally:
        drop_postgres_database(name)


async def _verify_cli(data_dir: Path, url: str) -> Ran:
    env = {"VIGIL_DATA_DIR": str(data_dir), "VIGIL_DATABASE_URL": url}
    return await vigil_in_thread("audit", "verify", env=env)


async def _fill(data_dir: Path, url: str, n: int = 5) -> None:
    async with offline_context(Settings(data_dir=data_dir, database_url=url)) as ctx:
        for i in range(n):
            async with ctx.sessions() as session, session.begin():
                await append_audit(
                    session,
                    now_ms=1000 + i,
                    actor="reviewer:ann",
                    action="case.viewed",
                    target=f"case:{i}",
                    details={"items": [i]},
                )


async def _tamper_and_check(data_dir: Path, url: str, *statements: str) -> tuple[bool, str, int | None]:
    async with server_context(data_dir, url) as ctx:
        async with ctx.engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
        async with ctx.sessions() as session:
            check = await verify_chain(session)
    return check.ok, check.problem, check.entry_id


async def test_audit_verify_command_passes_then_fails_after_an_edit(database: tuple[Path, str]) -> None:
    data_dir, url = database
    await _fill(data_dir, url)
    result = await _verify_cli(data_dir, url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit log intact: 5 entries verified" in result.stdout
    await _tamper_and_check(data_dir, url, "UPDATE audit_log SET details = '{\"items\":[99]}' WHERE id = 3")
    result = await _verify_cli(data_dir, url)
    assert result.returncode == 1
    assert "entry 3 was edited" in result.stdout


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (["UPDATE audit_log SET actor = 'reviewer:bob' WHERE id = 1"], "entry 1 was edited"),
        (["DELETE FROM audit_log WHERE id = 2"], "entry 2 is missing"),
        (["DELETE FROM audit_log WHERE id = 5"], "entries were removed"),
        # renumbering after a removal breaks the link of the moved entry
        (
            ["DELETE FROM audit_log WHERE id = 4", "UPDATE audit_log SET id = 4 WHERE id = 5"],
            "entry 4 does not link",
        ),
    ],
    ids=["edited-actor", "removed-middle", "removed-last", "removed-and-renumbered"],
)
async def test_chain_detects_edited_and_removed_entries(
    database: tuple[Path, str], statements: list[str], expected: str
) -> None:
    data_dir, url = database
    await _fill(data_dir, url)
    ok, problem, _entry = await _tamper_and_check(data_dir, url)
    assert ok
    ok, problem, _entry = await _tamper_and_check(data_dir, url, *statements)
    assert not ok and expected in problem
