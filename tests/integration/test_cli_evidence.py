"""The shipped `vigil chat` as a user runs it (in-process, `cli_runner`) against a real server, on SQLite and
PostgreSQL: a reported image arrives with the report, verified, and blurred in the console; group messages
are reported with `--group`; and on-device matching runs with no manual pin step (the authority key the
server names is pinned at register, shown as a fingerprint)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from cli_runner import Ran, vigil_in_thread
from console_client import PASSWORD, Console
from helpers import unique
from safety_helpers import matchable_pictures
from sqlalchemy import func, select

from vigil.console.auth import Role, create_reviewer
from vigil.protocol.vouchers import authority_fingerprint, encode_authority_key
from vigil.safety.hashing.pdq import hash_image
from vigil.server.context import ServerContext
from vigil.server.db.accounts import UserRepository
from vigil.server.db.hashlists import VoucherRow
from vigil.server.hashlist_keys import load_signing_key, load_voucher_public_key
from vigil.server.offline import offline_context
from vigil.server.services import cases, hashlist
from vigil.server.settings import Settings


class Chat:
    """`vigil chat --profile NAME ...` for one user, with the home and passphrase every command needs."""

    def __init__(self, server_url: str, home: Path, name: str) -> None:
        self.url, self.name = server_url, unique(name)
        self.env = {"VIGIL_HOME": str(home), "VIGIL_PASSPHRASE": "cli evidence passphrase"}

    async def __call__(self, *args: str) -> Ran:
        return await vigil_in_thread("chat", "--profile", self.name, *args, env=self.env)

    async def ok(self, *args: str) -> str:
        ran = await self(*args)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        return ran.stdout

    async def register(self) -> str:
        return await self.ok("register", self.name, "--server", self.url, "--birth-date", "1990-02-03")


def _offline(server) -> ServerContext:  # type: ignore[no-untyped-def]
    return offline_context(Settings(data_dir=server.data_dir, database_url=server.database_url))  # type: ignore[return-value]


async def test_an_image_reported_from_the_cli_arrives_verified_and_blurred_in_the_console(
    server, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    mallory, bob = Chat(server.url, home, "mallory"), Chat(server.url, home, "bob")
    for user in (mallory, bob):
        await user.register()
    [picture] = matchable_pictures(1, seed=11)
    path = tmp_path / "holiday.png"
    path.write_bytes(picture)
    await mallory.ok("send", bob.name, "i have a photo for you")
    await mallory.ok("send-file", bob.name, str(path), "--caption", "dont show anyone")
    received = await bob.ok("receive")
    assert "attachment image/png" in received
    # The blob is gone from the server once bob's device fetched it; the report still carries the image.
    reported = await bob.ok("report", mallory.name, "--reason", "csam", "--context", "1")
    assert "2 of 2 messages verified" in reported, reported
    case_id = int(re.search(r"case (\d+)", reported)[1])  # type: ignore[index]

    reviewer = unique("rita")
    async with _offline(server) as ctx:
        await create_reviewer(ctx, reviewer, PASSWORD, Role.REVIEWER, "test")
        detail = await cases.case_detail(ctx, "reviewer:test", case_id, frozenset())
        [report] = detail.reports
        image_item = next(i for i in report.items if i.position == 0)
        assert image_item.verified and image_item.has_image and image_item.attachment_mime == "image/png"
        assert image_item.text == "dont show anyone"
    console = Console(server.url)
    try:
        await console.sign_in(reviewer)
        page = await console.request("GET", f"/cases/{case_id}")
        assert f"/items/{image_item.id}/image" in page.text and "evidence blurred" in page.text
        blurred = await console.request("GET", f"/items/{image_item.id}/image")
        assert blurred.status_code == 200 and blurred.content != picture
        revealed = await console.post(f"/items/{image_item.id}/reveal")
        assert revealed.status_code in (200, 302, 303)
        assert (await console.request("GET", f"/items/{image_item.id}/image")).content == picture
    finally:
        await console.http.aclose()

    # A group message, reported with --group.
    group_out = await mallory.ok("group", "create", bob.name, "--name", "club")
    group_id = re.search(r"created group ([0-9a-f]+)", group_out)[1]  # type: ignore[index]
    await mallory.ok("group", "send", group_id, "nobody in this group will believe you")
    await bob.ok("receive")
    reported = await bob.ok(
        "report", mallory.name, "--group", group_id, "--reason", "harassment", "--context", "0"
    )
    assert "1 of 1 messages verified" in reported, reported


async def test_the_cli_withholds_an_image_in_the_bank_with_no_manual_pin_step(server, tmp_path: Path) -> None:
    known, harmless = matchable_pictures(2, seed=23)
    async with _offline(server) as team:
        bank = unique("bank")
        await hashlist.create_bank(team, bank)
        assert (
            await hashlist.import_entries(team, bank, f"pdq {hash_image(known).hash.hex()}", "threatexchange")
            == 1
        )
        await hashlist.publish(
            team,
            load_signing_key(team.settings),
            load_voucher_public_key(team.settings),
            issued_at=int(time.time()),
        )
        expected = authority_fingerprint(encode_authority_key(load_signing_key(team.settings).public_key()))

    home = tmp_path / "home"
    alice, bob = Chat(server.url, home, "alice"), Chat(server.url, home, "bob")
    registered = await alice.register()
    assert "trusted on first use" in registered and expected in registered
    await bob.register()
    status = await alice.ok("safety")
    assert expected in status and "matching is on" in status

    (tmp_path / "known.png").write_bytes(known)
    (tmp_path / "harmless.png").write_bytes(harmless)
    withheld = await alice("send-file", bob.name, str(tmp_path / "known.png"))
    assert withheld.returncode == 1 and "image_withheld" in withheld.stdout, withheld.stdout
    async with _offline(server) as ctx, ctx.sessions() as session:
        user = await UserRepository(session).by_username(alice.name)
        assert user is not None
        vouchers = await session.scalar(
            select(func.count()).select_from(VoucherRow).where(VoucherRow.user_id == user.id)
        )
        assert vouchers == 1
    assert "no new messages" in await bob.ok("receive")
    await alice.ok("send-file", bob.name, str(tmp_path / "harmless.png"))
    assert "attachment image/png" in await bob.ok("receive")

    # A configured key that differs from the pinned one is refused, never swapped in silently.
    other = "A" * 43 + "="
    refused = await vigil_in_thread(
        "chat", "--profile", alice.name, "--hashlist-authority-key", other, "safety", env=alice.env
    )
    assert refused.returncode == 1 and "already pinned" in refused.stdout, refused.stdout
