"""Profile photos are matched at upload, then shown only to the account itself, its connections and
its groups' co-members: an unconnected adult cannot fetch a minor's photo (404 JSON, the same answer as
for an account with no photo), nor can anyone the owner blocked."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import httpx
from helpers import register
from live_server import ServerProcess
from PIL import Image

from vigil.client.client import Client
from vigil.protocol.group_wire import CreateGroupRequest

TODAY = dt.date.today()
TEEN_15 = TODAY.replace(year=TODAY.year - 15)


def _photo() -> bytes:
    image = Image.new("RGB", (96, 96))
    image.putdata([((x * 3) % 256, (y * 5) % 256, ((x + y) * 7) % 256) for y in range(96) for x in range(96)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def _fetch(http: httpx.AsyncClient, viewer: Client, owner: Client) -> httpx.Response:
    return await http.get(f"/v1/users/{owner.username}/photo", headers=viewer.transport._headers())


async def test_a_minors_photo_is_never_shown_to_strangers(server: ServerProcess, tmp_path: Path) -> None:
    teen = await register(server.url, tmp_path, "teen", TEEN_15)
    stranger = await register(server.url, tmp_path, "stranger")
    friend = await register(server.url, tmp_path, "friend")
    classmate = await register(server.url, tmp_path, "classmate", TEEN_15)
    photo = _photo()
    async with httpx.AsyncClient(base_url=server.url) as http:
        put = await http.put(
            "/v1/profile/photo",
            content=photo,
            headers={**teen.transport._headers(), "Content-Type": "image/png"},
        )
        assert put.status_code == 204
        assert (await _fetch(http, teen, teen)).content == photo

        refused = await _fetch(http, stranger, teen)
        assert refused.status_code == 404 and refused.json()["error"] == "not_found"
        assert photo not in refused.content
        nobody = await _fetch(http, teen, stranger)  # no photo at all: the same answer
        assert (nobody.status_code, nobody.json()) == (refused.status_code, refused.json())

        await teen.accept_request((await friend.request_contact(teen.username)).id)
        assert (await _fetch(http, friend, teen)).content == photo
        assert (await _fetch(http, classmate, teen)).status_code == 404  # a minor, but a stranger too
        await teen.block(friend.username)
        assert (await _fetch(http, friend, teen)).status_code == 404  # blocked: hidden again
        assert (await _fetch(http, stranger, teen)).status_code == 404
    for client in (teen, stranger, friend, classmate):
        await client.close()


async def test_group_co_members_see_each_others_photo(server: ServerProcess, tmp_path: Path) -> None:
    host = await register(server.url, tmp_path, "host")
    member = await register(server.url, tmp_path, "member")
    outsider = await register(server.url, tmp_path, "outsider")
    photo = _photo()
    async with httpx.AsyncClient(base_url=server.url) as http:
        await http.put(
            "/v1/profile/photo",
            content=photo,
            headers={**member.transport._headers(), "Content-Type": "image/png"},
        )
        assert (await _fetch(http, host, member)).status_code == 404
        await host.transport.create_group(CreateGroupRequest(members=[member.username]))
        assert (await _fetch(http, host, member)).content == photo
        assert (await _fetch(http, outsider, member)).status_code == 404
    for client in (host, member, outsider):
        await client.close()
