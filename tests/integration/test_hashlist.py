"""Known-image matching end to end on a real server with real encryption (SQLite and PostgreSQL):
banks -> signed list -> client verification -> on-device match -> withheld image + voucher -> case."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from helpers import register
from PIL import Image, ImageDraw, ImageOps
from sqlalchemy import delete, func, select

from vigil.client.client import Client
from vigil.client.events import ImageWithheld, MessageEvent
from vigil.client.safety import HashListRefusedError, ImageWithheldError
from vigil.protocol.group_wire import group_conversation
from vigil.protocol.vouchers import encode_authority_key
from vigil.safety.hashing.hashlist import (
    NotInLogError,
    RollbackError,
    SignatureError,
    SignedManifest,
    UnsignedListError,
)
from vigil.safety.hashing.pdq import hash_image
from vigil.server.context import ServerContext
from vigil.server.db.cases import QueueFilter
from vigil.server.db.hashlists import ImageMatchCaseRow, ManifestRow, VoucherRow
from vigil.server.hashlist_keys import load_signing_key, load_voucher_keypair, load_voucher_public_key
from vigil.server.offline import offline_context
from vigil.server.services import hashlist, vouchers
from vigil.server.services.cases import queue
from vigil.server.settings import Settings

# Every test sets up the same bank, publishes version 1 and counts vouchers and cases in the database.
pytestmark = pytest.mark.fresh_server

_REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pdq_data() -> Path:
    configured = os.environ.get("VIGIL_PDQ_TESTDATA")
    root = Path(configured) if configured else _REPO_ROOT.parent / "shared" / "testdata" / "pdq"
    if not (root / "bridge-mods" / "aaa-orig.jpg").is_file():
        if os.environ.get("VIGIL_REQUIRE_TESTDATA") == "1":
            pytest.fail(f"VIGIL_REQUIRE_TESTDATA=1 but the PDQ reference data is not at {root}")
        pytest.skip(f"PDQ reference data not found at {root} (set VIGIL_PDQ_TESTDATA)")
    return root


@contextlib.asynccontextmanager
async def safety_team(server, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ServerContext]:  # type: ignore[no-untyped-def]
    """The safety team's tools (what `vigil hashlist ...` runs) on the test server's database and keys."""
    monkeypatch.setenv("VIGIL_DATA_DIR", str(server.data_dir))
    monkeypatch.setenv("VIGIL_DATABASE_URL", server.database_url)
    async with offline_context(Settings()) as ctx:
        yield ctx


async def publish(ctx: ServerContext, issued_at: int | None = None) -> hashlist.Published:
    """Signs the next version, by default now (clients refuse a list signed too long ago)."""
    return await hashlist.publish(
        ctx,
        load_signing_key(ctx.settings),
        load_voucher_public_key(ctx.settings),
        issued_at=int(time.time()) if issued_at is None else issued_at,
    )


async def bank_with(ctx: ServerContext, name: str, *images: bytes) -> None:
    await hashlist.create_bank(ctx, name)
    lines = "\n".join(f"pdq {hash_image(data).hash.hex()}" for data in images)
    assert await hashlist.import_entries(ctx, name, lines, "threatexchange") == len(images)


async def pinned(client: Client, ctx: ServerContext) -> Client:
    client.safety.pin_authority(encode_authority_key(load_signing_key(ctx.settings).public_key()))
    await client.safety.sync()
    return client


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def unrelated_images(count: int, seed: int = 7) -> list[bytes]:
    """Random shapes on random backgrounds, kept only when PDQ quality >= 50 (so they are really matched)."""
    rng = np.random.default_rng(seed)
    out: list[bytes] = []
    while len(out) < count:
        image = Image.new("RGB", (96, 96), tuple(int(x) for x in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(8):
            x0, y0 = (int(v) for v in rng.integers(0, 80, 2))
            box = [x0, y0, x0 + int(rng.integers(8, 60)), y0 + int(rng.integers(8, 60))]
            colour = tuple(int(x) for x in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        if hash_image(buffer.getvalue()).quality >= 50:
            out.append(buffer.getvalue())
    return out


async def count(ctx: ServerContext, row: type) -> int:
    async with ctx.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(row)) or 0)


async def test_known_image_is_withheld_both_ways_and_opened_into_verified_cases(
    server, tmp_path: Path, pdq_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = (pdq_data / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    async with safety_team(server, monkeypatch) as team:
        await bank_with(team, "known-abuse", known)
        published = await publish(team)
        assert published.version == 1
        alice = await pinned(await register(server.url, tmp_path, "alice"), team)
        bob = await pinned(await register(server.url, tmp_path, "bob"), team)
        carol = await register(server.url, tmp_path, "carol")  # a modified client: no list at all
        assert alice.safety.state is not None and alice.safety.state.version == 1

        blobs_before = sorted(p.name for p in server.data_dir.joinpath("blobs").rglob("*") if p.is_file())
        with pytest.raises(ImageWithheldError) as withheld:
            await alice.send_attachment(bob.username, known, "image/jpeg", caption="look")
        assert withheld.value.voucher_id is not None
        assert (
            sorted(p.name for p in server.data_dir.joinpath("blobs").rglob("*") if p.is_file())
            == blobs_before
        )
        assert await bob.fetch() == []  # nothing was sent

        await carol.send_attachment(bob.username, known, "image/jpeg", caption="hi")
        events = await bob.fetch()
        assert len(events) == 1 and isinstance(events[0], ImageWithheld)
        notice = events[0]
        assert (
            notice.sender == carol.username and notice.voucher_id is not None and "not shown" in notice.notice
        )
        assert not any(isinstance(e, MessageEvent) and e.attachment is not None for e in events)

        assert await count(team, VoucherRow) == 2
        assert await count(team, ImageMatchCaseRow) == 0  # the server cannot open vouchers
        opened = await vouchers.open_pending_vouchers(team, load_voucher_keypair(team.settings))
        assert opened.failed == [] and len(opened.cases) == 2
        cases = {c.direction: c for c in await vouchers.list_image_cases(team)}
        assert cases["outgoing"].subject == alice.username and cases["outgoing"].verified
        assert cases["incoming"].subject == carol.username and cases["incoming"].reporter == bob.username
        assert cases["incoming"].verified and "server tag verified" in cases["incoming"].verification
        # Both accounts now have an urgent, verified CSAM case in the reviewers' queue.
        queued = {c.subject: c for c in await queue(team, QueueFilter())}
        for name in (alice.username, carol.username):
            assert queued[name].reason == "csam" and queued[name].verified
            assert queued[name].priority == vouchers.IMAGE_MATCH_PRIORITY
        assert all(
            c.priority == vouchers.IMAGE_MATCH_PRIORITY and c.bank == "known-abuse" for c in cases.values()
        )
        image, mime = await vouchers.case_image(
            team, cases["incoming"].id, load_voucher_keypair(team.settings)
        )
        assert (image, mime) == (known, "image/jpeg")

        # `vigil hashlist verify`: bob's list is the log's version 1; a different root is not.
        state = bob.safety.state
        assert state is not None
        key = load_signing_key(team.settings).public_key()
        head = await hashlist.verify_client_list(team, key, version=state.version, root=state.root.hex())
        assert head.size == 1
        with pytest.raises(NotInLogError):
            await hashlist.verify_client_list(team, key, version=1, root="00" * 32)
        for client in (alice, bob, carol):
            await client.close()


async def test_edited_rotated_and_flipped_copies_are_caught(
    server, tmp_path: Path, pdq_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original_path = pdq_data / "bridge-mods" / "aaa-orig.jpg"
    original = Image.open(original_path)
    w, h = original.size
    variants = {p.name: p.read_bytes() for p in sorted((pdq_data / "bridge-mods").glob("*.jpg"))}
    variants |= {p.name: p.read_bytes() for p in sorted((pdq_data / "dih").glob("*.jpg"))}
    variants |= {
        "resized-40%": jpeg(original.resize((w * 2 // 5, h * 2 // 5))),
        "recompressed-q30": jpeg(original, quality=30),
        "cropped-1%": jpeg(
            original.crop((w // 100, h // 100, w - w // 100, h - h // 100))
        ),  # PDQ: ~2% is too much
        "rotated-90": jpeg(original.rotate(90, expand=True)),
        "rotated-270": jpeg(original.rotate(270, expand=True)),
        "flipped-lr": jpeg(ImageOps.mirror(original)),
        "flipped-tb": jpeg(ImageOps.flip(original)),
        "small-rotated-png": _png(original.resize((w // 4, h // 4)).rotate(180)),
    }
    async with safety_team(server, monkeypatch) as team:
        await bank_with(team, "known-abuse", original_path.read_bytes())
        await publish(team)
        alice = await pinned(await register(server.url, tmp_path, "alice"), team)
        bob = await register(server.url, tmp_path, "bob")
        missed = []
        for name, data in variants.items():
            mime = "image/png" if name.endswith("png") else "image/jpeg"
            try:
                await alice.send_attachment(bob.username, data, mime)
            except ImageWithheldError:
                continue
            missed.append(name)
        assert missed == []
        assert await bob.fetch() == []
        assert await count(team, VoucherRow) == len(variants)
        await alice.close()
        await bob.close()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def test_unrelated_images_produce_no_signal(
    server, tmp_path: Path, pdq_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = unrelated_images(200)
    async with safety_team(server, monkeypatch) as team:
        await bank_with(team, "known-abuse", (pdq_data / "bridge-mods" / "aaa-orig.jpg").read_bytes())
        await publish(team)
        alice = await pinned(await register(server.url, tmp_path, "alice"), team)
        bob = await pinned(await register(server.url, tmp_path, "bob"), team)
        plain = await register(server.url, tmp_path, "plain")  # no list: the baseline traffic

        requests: list[tuple[str, str]] = []

        async def record(request: httpx.Request) -> None:
            requests.append((request.method, request.url.path))

        for client in (alice, plain):
            client.transport._http.event_hooks["request"].append(record)
        await plain.send_attachment(bob.username, images[0], "image/png")
        baseline = list(requests)
        requests.clear()
        for data in images:
            await alice.send_attachment(bob.username, data, "image/png")
        assert not any("voucher" in path or "hashlist" in path for _, path in requests)
        per_image = [r for r in requests if r[1] in {"/v1/blobs", "/v1/messages"}]
        assert per_image == [r for r in baseline if r[1] in {"/v1/blobs", "/v1/messages"}] * len(images)
        events = await bob.fetch()
        received = [e for e in events if isinstance(e, MessageEvent) and e.attachment is not None]
        assert len(received) == len(images) + 1 and not any(isinstance(e, ImageWithheld) for e in events)
        assert [e.attachment.data for e in received[1:]] == images  # type: ignore[union-attr]
        assert await count(team, VoucherRow) == 0
        assert await count(team, ImageMatchCaseRow) == 0
        for client in (alice, bob, plain):
            await client.close()


async def test_tampered_unsigned_rolled_back_or_foreign_lists_are_refused(
    server, tmp_path: Path, pdq_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = (pdq_data / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    extra = unrelated_images(1, seed=99)[0]
    async with safety_team(server, monkeypatch) as team:
        await bank_with(team, "known-abuse", known)
        await publish(team, int(time.time()))
        bob = await pinned(await register(server.url, tmp_path, "bob"), team)
        assert bob.safety.state is not None and bob.safety.state.version == 1
        await hashlist.import_entries(
            team, "known-abuse", f"pdq {hash_image(extra).hash.hex()}", "threatexchange"
        )
        await publish(team, int(time.time()) + 100)

        async def rewrite_v2(transform) -> bytes:  # type: ignore[no-untyped-def]
            async with team.sessions() as session, session.begin():
                row = await session.get(ManifestRow, 2)
                assert row is not None
                original, row.signed = row.signed, transform(row.signed)
            return original

        async def restore_v2(data: bytes) -> None:
            await rewrite_v2(lambda _old: data)

        # A flipped bit in an entry: the signature no longer verifies.
        good = await rewrite_v2(lambda data: data[:60] + bytes([data[60] ^ 1]) + data[61:])
        with pytest.raises(HashListRefusedError) as refused:
            await bob.safety.sync()
        assert isinstance(refused.value.cause, SignatureError)
        assert bob.safety.state.version == 1  # type: ignore[union-attr]
        assert bob.safety.match(known) is not None  # the old list still works

        # The signature stripped.
        signed = SignedManifest.from_bytes(good)
        await rewrite_v2(lambda _old: SignedManifest(signed.manifest, b"").to_bytes())
        with pytest.raises(HashListRefusedError) as refused:
            await bob.safety.sync()
        assert isinstance(refused.value.cause, UnsignedListError)

        await restore_v2(good)
        assert (await bob.safety.sync()).version == 2  # type: ignore[union-attr]
        assert bob.safety.match(extra) is not None

        # Rolled back: the server drops version 2 and serves version 1 as the newest.
        async with team.sessions() as session, session.begin():
            await session.execute(delete(ManifestRow).where(ManifestRow.version == 2))
        with pytest.raises(HashListRefusedError) as refused:
            await bob.safety.sync()
        assert isinstance(refused.value.cause, RollbackError)
        assert bob.safety.state.version == 2  # type: ignore[union-attr]

        # A restarted client keeps its verified list (persisted in its encrypted store).
        path = bob.store.path
        await bob.close()
        reopened = await Client.open(path, "correct horse battery staple")
        assert reopened.safety.state is not None and reopened.safety.state.version == 2
        assert reopened.safety.match(extra) is not None

        # A list signed by another key than the pinned one.
        stranger = await register(server.url, tmp_path, "stranger")
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        stranger.safety.pin_authority(encode_authority_key(Ed25519PrivateKey.generate().public_key()))
        with pytest.raises(HashListRefusedError) as refused:
            await stranger.safety.sync()
        assert isinstance(refused.value.cause, SignatureError)
        assert stranger.safety.state is None
        await reopened.close()
        await stranger.close()


async def test_profile_photo_is_matched_on_the_server(
    server, tmp_path: Path, pdq_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = (pdq_data / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    async with safety_team(server, monkeypatch) as team:
        await bank_with(team, "known-abuse", known)
        await publish(team)
        alice = await register(server.url, tmp_path, "alice")
        headers = {**alice.transport._headers(), "Content-Type": "image/png"}
        async with httpx.AsyncClient(base_url=server.url) as http:
            ok = await http.put("/v1/profile/photo", content=unrelated_images(1)[0], headers=headers)
            assert ok.status_code == 204
            shown = await http.get(f"/v1/users/{alice.username}/photo", headers=headers)
            assert shown.status_code == 200
            refused = await http.put(
                "/v1/profile/photo",
                content=jpeg(Image.open(io.BytesIO(known)), 70),
                headers={**headers, "Content-Type": "image/jpeg"},
            )
            assert refused.status_code == 403 and refused.json()["error"] == "policy_violation"
            garbage = await http.put("/v1/profile/photo", content=b"not an image", headers=headers)
            assert garbage.status_code == 400 and set(garbage.json()) == {"error", "detail"}
            bad_since = await http.get("/v1/hashlist/manifests", params={"since": "-1"})
            assert bad_since.status_code == 422 and set(bad_since.json()) == {"error", "detail"}
            bad_voucher = await http.post(
                "/v1/vouchers", json={"voucher_id": "x"}, headers=alice.transport._headers()
            )
            assert bad_voucher.status_code == 422
        cases = await vouchers.list_image_cases(team)
        assert [(c.source, c.subject, c.verified) for c in cases] == [("profile_photo", alice.username, True)]
        image, _ = await vouchers.case_image(team, cases[0].id, load_voucher_keypair(team.settings))
        assert hash_image(image).hash.distance(hash_image(known).hash) <= 31
        await alice.close()


async def test_known_image_in_a_group_is_withheld_on_send_and_on_receipt(
    server, tmp_path: Path, pdq_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = (pdq_data / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    async with safety_team(server, monkeypatch) as team:
        await bank_with(team, "known-abuse", known)
        await publish(team)
        alice = await pinned(await register(server.url, tmp_path, "alice"), team)
        bob = await pinned(await register(server.url, tmp_path, "bob"), team)
        carol = await pinned(await register(server.url, tmp_path, "carol"), team)
        mallory = await register(server.url, tmp_path, "mallory")  # a modified client: no list at all
        group = (await alice.groups.create([bob.username, carol.username, mallory.username])).group_id
        conversation = group_conversation(group)
        for member in (bob, carol, mallory):
            await member.fetch()  # room keys and the group's metadata

        blobs_before = sorted(p.name for p in server.data_dir.joinpath("blobs").rglob("*") if p.is_file())
        with pytest.raises(ImageWithheldError) as withheld:
            await alice.groups.send_attachment(group, known, "image/jpeg", caption="look")
        assert withheld.value.voucher_id is not None
        assert (
            sorted(p.name for p in server.data_dir.joinpath("blobs").rglob("*") if p.is_file())
            == blobs_before
        )
        for member in (bob, carol, mallory):
            assert await member.fetch() == []  # nothing was sent

        await mallory.groups.send_attachment(group, known, "image/jpeg", caption="hi")
        for member in (alice, bob, carol):
            events = await member.fetch()
            assert len(events) == 1 and isinstance(events[0], ImageWithheld), events
            notice = events[0]
            assert notice.conversation == conversation and notice.sender == mallory.username
            assert notice.voucher_id is not None and "not shown" in notice.notice
        # An unrelated image in the same group is delivered as usual.
        await mallory.groups.send_attachment(group, unrelated_images(1)[0], "image/png")
        events = await bob.fetch()
        assert len(events) == 1 and isinstance(events[0], MessageEvent) and events[0].attachment is not None

        assert await count(team, VoucherRow) == 4  # alice's outgoing + three incoming
        opened = await vouchers.open_pending_vouchers(team, load_voucher_keypair(team.settings))
        assert opened.failed == [] and len(opened.cases) == 4
        cases = await vouchers.list_image_cases(team)
        outgoing = [c for c in cases if c.direction == "outgoing"]
        incoming = [c for c in cases if c.direction == "incoming"]
        assert [(c.subject, c.verified) for c in outgoing] == [(alice.username, True)]
        assert {c.reporter for c in incoming} == {alice.username, bob.username, carol.username}
        for case in incoming:
            assert case.subject == mallory.username and case.verified
            assert "server tag verified" in case.verification
        queued = {c.subject: c for c in await queue(team, QueueFilter())}
        assert queued[mallory.username].reason == "csam" and queued[mallory.username].verified
        for client in (alice, bob, carol, mallory):
            await client.close()
