"""The NCMEC and ThreatExchange fetchers against local stand-ins that speak their wire formats: NCMEC's XML
hash-sharing API (`/v2/entries`, namespaced `queryResult`, `paging/next` relative to the base URL, Basic
auth) and the Graph API JSON of `/<privacy group>/threat_updates` (`data`, absolute `paging.next`, the
`{"error": {...}}` body). The fixtures follow python-threatexchange's own (`clients/ncmec/tests/data.py`).

Each fetch is paged; an error page must raise a clear ExchangeError and leave the bank as it was.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from vigil.errors import ValidationError
from vigil.server.context import ServerContext
from vigil.server.db.audit import AuditRow
from vigil.server.exchanges import Exchange, ExchangeError, sync_exchange
from vigil.server.offline import offline_context
from vigil.server.services import hashlist
from vigil.server.settings import Settings

Reply = tuple[int, str, str]  # status, content type, body
Route = Callable[[str, dict[str, list[str]], dict[str, str]], Reply]

H = [secrets.token_hex(32) for _ in range(8)]  # PDQ hashes the exchanges share


class StandIn:
    """A loopback HTTP server whose answers the test sets per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                outer.requests.append(self.path)
                route = outer.routes.get(parts.path)
                status, ctype, body = (
                    (404, "text/plain", "no such path")
                    if route is None
                    else route(parts.path, parse_qs(parts.query), dict(self.headers.items()))
                )
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServerContext]:
    async with offline_context(Settings(data_dir=tmp_path / "data")) as context:
        yield context


async def _bank_hashes(ctx: ServerContext, name: str) -> dict[str, tuple[str, ...]]:
    banks = await hashlist.enabled_banks(ctx)
    (bank,) = [b for b in banks if b.name == name]
    return {e.hash.hex(): e.labels for e in bank.entries}


async def _audit_actions(ctx: ServerContext) -> list[str]:
    async with ctx.sessions() as session:
        return list((await session.scalars(select(AuditRow.action).order_by(AuditRow.id))).all())


# --- NCMEC -------------------------------------------------------------------------------------------

NS = "https://hashsharing.ncmec.org/hashsharing/v2"
NEXT = (
    "/v2/entries?from=2017-10-20T00%3A00%3A00.000Z&amp;to=2017-10-30T00%3A00%3A00.000Z"
    "&amp;start=2001&amp;size=1000&amp;max=3000"
)


def _image(entry_id: str, member: int, pdq: str, classification: str = "A1") -> str:
    return f"""
        <image>
            <member id="{member}">Member {member}</member>
            <timestamp>2017-10-24T15:00:00Z</timestamp>
            <id>{entry_id}</id>
            <classification>{classification}</classification>
            <fingerprints>
                <md5>a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1</md5>
                <pdq>{pdq}</pdq>
            </fingerprints>
            <feedback />
        </image>"""


def _ncmec_page(images: str, next_: str | None, videos: str = "") -> str:
    paging = f"<paging><next>{next_}</next></paging>" if next_ else ""
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<queryResult xmlns="{NS}">
    <images count="3" maxTimestamp="2017-10-24T15:10:00Z">{images}
    </images>{videos}
    {paging}
</queryResult>"""


PAGE_1 = _ncmec_page(
    _image("image1", 42, H[0])
    + _image("image2", 42, H[1])
    + """
        <deletedImage>
            <member id="43">Member 43</member>
            <id>image4</id>
            <timestamp>2017-10-24T15:10:00Z</timestamp>
        </deletedImage>""",
    NEXT,
    videos="""
    <videos count="1" maxTimestamp="2017-10-24T15:20:00Z">
        <video>
            <member id="42">Member 42</member>
            <timestamp>2017-10-24T15:00:00Z</timestamp>
            <id>video1</id>
            <fingerprints><md5>b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1</md5></fingerprints>
        </video>
    </videos>""",
)
PAGE_2 = _ncmec_page(
    _image("image1", 42, H[0], classification="A2")  # an update of image1
    + """
        <deletedImage>
            <member id="42">Member 42</member>
            <id>image2</id>
            <timestamp>2017-10-24T15:10:00Z</timestamp>
        </deletedImage>"""
    + _image("image3", 43, H[2], classification="B1"),
    None,
)
AUTH = "Basic " + base64.b64encode(b"vigil-esp:hunter2hunter2").decode()


def _ncmec_routes(stand_in: StandIn, second_page: Reply) -> None:
    def entries(_path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if headers.get("Authorization") != AUTH:
            return 401, "text/html", "<html><body>Unauthorized</body></html>"
        if "start" in query:  # the paging cursor
            return second_page
        assert "from" in query and "to" in query
        return 200, "application/xml", PAGE_1

    stand_in.routes["/hashsharing/v2/entries"] = entries


@pytest.fixture
def ncmec_env(monkeypatch: pytest.MonkeyPatch, stand_in: StandIn) -> None:
    monkeypatch.setenv("VIGIL_NCMEC_USERNAME", "vigil-esp")
    monkeypatch.setenv("VIGIL_NCMEC_PASSWORD", "hunter2hunter2")
    monkeypatch.setenv("VIGIL_NCMEC_BASE_URL", f"{stand_in.url}/hashsharing")
    monkeypatch.setenv("VIGIL_NCMEC_BANK", "ncmec-csam")


async def test_ncmec_paged_fetch_fills_the_bank_with_live_pdq_hashes(
    ctx: ServerContext, stand_in: StandIn, ncmec_env: None
) -> None:
    _ncmec_routes(stand_in, (200, "application/xml", PAGE_2))
    result = await sync_exchange(ctx, Exchange.NCMEC, actor="test")
    assert (result.added, result.removed, result.total) == (2, 0, 2)
    held = await _bank_hashes(ctx, "ncmec-csam")
    # image2 was deleted on page 2, image1 updated, the video (md5 only) and the tombstone carry no PDQ
    assert set(held) == {H[0], H[2]}
    assert held[H[0]] == ("A2", "ncmec:esp:42")
    assert held[H[2]] == ("B1", "ncmec:esp:43")
    assert len(stand_in.requests) == 2 and "start=2001" in stand_in.requests[1]
    assert await _audit_actions(ctx) == ["bank.created", "bank.synced"]

    # the exchange drops image3 and lists image2 again: the next sync follows
    second = _ncmec_page(_image("image2", 42, H[1]), None)
    _ncmec_routes(stand_in, (200, "application/xml", second))
    # page 1 still lists image1 and image2; page 2 re-adds image2 -> image3 is gone
    result = await sync_exchange(ctx, Exchange.NCMEC, actor="test")
    assert (result.added, result.removed) == (1, 1)
    assert set(await _bank_hashes(ctx, "ncmec-csam")) == {H[0], H[1]}


@pytest.mark.parametrize(
    ("second_page", "message"),
    [
        ((401, "text/html", "<html><body>Unauthorized</body></html>"), "ncmec answered HTTP 401"),
        ((200, "application/xml", "<queryResult><images"), "ncmec sent a response Vigil cannot read"),
    ],
)
async def test_ncmec_error_page_raises_and_leaves_the_bank_untouched(
    ctx: ServerContext,
    stand_in: StandIn,
    ncmec_env: None,
    second_page: Reply,
    message: str,
) -> None:
    _ncmec_routes(stand_in, (200, "application/xml", PAGE_2))
    await sync_exchange(ctx, Exchange.NCMEC, actor="test")
    before, audit_before = await _bank_hashes(ctx, "ncmec-csam"), await _audit_actions(ctx)

    _ncmec_routes(stand_in, second_page)
    with pytest.raises(ExchangeError, match=message):
        await sync_exchange(ctx, Exchange.NCMEC, actor="test")
    assert await _bank_hashes(ctx, "ncmec-csam") == before  # page 1 alone would have removed H[2]
    assert await _audit_actions(ctx) == audit_before


async def test_ncmec_wrong_credentials_are_a_clear_error(
    ctx: ServerContext, stand_in: StandIn, ncmec_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ncmec_routes(stand_in, (200, "application/xml", PAGE_2))
    monkeypatch.setenv("VIGIL_NCMEC_PASSWORD", "not the password")
    with pytest.raises(ExchangeError, match="HTTP 401 Unauthorized"):
        await sync_exchange(ctx, Exchange.NCMEC, actor="test")
    assert [b.name for b in await hashlist.list_banks(ctx)] == []


# --- ThreatExchange ----------------------------------------------------------------------------------

GROUP = 1012185296055235
TOKEN = "1234567890|abcdefghijklmnopqrstuvwxyz"


def _update(
    update_id: int, indicator: str, *, kind: str = "HASH_PDQ", status: str = "MALICIOUS", delete: bool = False
) -> dict[str, object]:
    record: dict[str, object] = {
        "id": str(update_id),
        "indicator": indicator,
        "type": kind,
        "last_updated": 1_700_000_000 + update_id,
        "should_delete": delete,
    }
    if not delete:
        record["descriptors"] = {
            "data": [
                {
                    "id": str(9000 + update_id),
                    "owner": {"id": "494491891138576"},
                    "status": status,
                    "tags": ["csam"] if status == "MALICIOUS" else [],
                    "reactions": [],
                }
            ]
        }
    return record


@pytest.fixture
def te_env(monkeypatch: pytest.MonkeyPatch, stand_in: StandIn) -> None:
    monkeypatch.setenv("VIGIL_THREATEXCHANGE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("VIGIL_THREATEXCHANGE_PRIVACY_GROUP", str(GROUP))
    monkeypatch.setenv("VIGIL_THREATEXCHANGE_BASE_URL", f"{stand_in.url}/v26.0")


def _te_routes(stand_in: StandIn, second_page: Reply) -> None:
    first = {
        "data": [
            _update(1, H[3]),
            _update(2, H[4]),
            _update(3, H[5], status="NON_MALICIOUS"),  # a known false positive: not banked
            _update(4, "d41d8cd98f00b204e9800998ecf8427e", kind="HASH_MD5"),
        ],
        "paging": {
            "cursors": {"before": "QVFIU", "after": "QVFIUm"},
            "next": f"{stand_in.url}/v26.0/{GROUP}/threat_updates/?access_token={TOKEN}&after=QVFIUm",
        },
    }

    def updates(_path: str, query: dict[str, list[str]], _headers: dict[str, str]) -> Reply:
        if query.get("access_token") != [TOKEN]:
            return (
                400,
                "application/json",
                json.dumps(
                    {
                        "error": {
                            "message": "Invalid OAuth access token.",
                            "type": "OAuthException",
                            "code": 190,
                        }
                    }
                ),
            )
        if "after" in query:
            return second_page
        assert "descriptors" in query["fields"][0]
        return 200, "application/json", json.dumps(first)

    stand_in.routes[f"/v26.0/{GROUP}/threat_updates/"] = updates


TE_PAGE_2 = json.dumps(
    {"data": [_update(5, H[4], delete=True), _update(6, H[6])], "paging": {"cursors": {"before": "a"}}}
)


async def test_threatexchange_paged_fetch_fills_the_bank(
    ctx: ServerContext, stand_in: StandIn, te_env: None
) -> None:
    _te_routes(stand_in, (200, "application/json", TE_PAGE_2))
    result = await sync_exchange(ctx, Exchange.THREATEXCHANGE, actor="test")
    held = await _bank_hashes(ctx, "threatexchange")
    assert set(held) == {H[3], H[6]}  # H[4] deleted on page 2, H[5] non-malicious, the MD5 ignored
    assert held[H[3]] == ("csam", "te:owner:494491891138576")
    assert (result.added, result.removed, result.total) == (2, 0, 2)
    assert len(stand_in.requests) == 2


async def test_threatexchange_error_page_raises_and_leaves_the_bank_untouched(
    ctx: ServerContext, stand_in: StandIn, te_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _te_routes(stand_in, (200, "application/json", TE_PAGE_2))
    await sync_exchange(ctx, Exchange.THREATEXCHANGE, actor="test")
    before = await _bank_hashes(ctx, "threatexchange")
    error_body = json.dumps(
        {
            "error": {
                "message": "(#100) Invalid cursor",
                "type": "OAuthException",
                "code": 100,
                "fbtrace_id": "A1b2C3",
            }
        }
    )
    _te_routes(stand_in, (400, "application/json", error_body))
    with pytest.raises(
        ExchangeError, match=r"threatexchange answered HTTP 400 .*OAuthException: \(#100\) Invalid cursor"
    ):
        await sync_exchange(ctx, Exchange.THREATEXCHANGE, actor="test")
    assert await _bank_hashes(ctx, "threatexchange") == before

    monkeypatch.setenv("VIGIL_THREATEXCHANGE_ACCESS_TOKEN", "1234567890|zyxwvutsrqponmlkjihgfedcba")
    with pytest.raises(ExchangeError, match="Invalid OAuth access token"):
        await sync_exchange(ctx, Exchange.THREATEXCHANGE, actor="test")
    assert await _bank_hashes(ctx, "threatexchange") == before


async def test_unconfigured_exchanges_say_what_to_set(
    ctx: ServerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VIGIL_NCMEC_USERNAME", "VIGIL_NCMEC_PASSWORD", "VIGIL_THREATEXCHANGE_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="VIGIL_NCMEC_USERNAME"):
        await sync_exchange(ctx, Exchange.NCMEC, actor="test")
    with pytest.raises(ValidationError, match="VIGIL_THREATEXCHANGE_ACCESS_TOKEN"):
        await sync_exchange(ctx, Exchange.THREATEXCHANGE, actor="test")
