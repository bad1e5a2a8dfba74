"""Calls to the stand-in the way a CyberTipline client makes them, and its answers parsed."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree

import httpx

XML = {"Content-Type": "text/xml; charset=utf-8"}


@dataclass
class Answer:
    http_status: int
    root: str
    code: int
    fields: dict[str, str]
    file_ids: list[str]
    request_id: str


def parse(response: httpx.Response) -> Answer:
    root = ElementTree.fromstring(response.content)
    assert response.headers["content-type"].startswith("text/xml")
    return Answer(
        http_status=response.status_code,
        root=root.tag,
        code=int(root.findtext("responseCode") or "-1"),
        fields={child.tag: child.text or "" for child in root if child.tag != "files"},
        file_ids=[element.text or "" for element in root.iterfind("files/fileId")],
        request_id=response.headers["Request-ID"],
    )


async def submit(client: httpx.AsyncClient, document: str) -> Answer:
    return parse(await client.post("/submit", content=document.encode(), headers=XML))


async def upload(
    client: httpx.AsyncClient, report_id: int | str, content: bytes, name: str = "a.jpg"
) -> Answer:
    return parse(
        await client.post(
            "/upload", data={"id": str(report_id)}, files={"file": (name, content, "image/jpeg")}
        )
    )


async def fileinfo(client: httpx.AsyncClient, document: str) -> Answer:
    return parse(await client.post("/fileinfo", content=document.encode(), headers=XML))


async def finish(client: httpx.AsyncClient, report_id: int | str) -> Answer:
    return parse(await client.post("/finish", files={"id": (None, str(report_id))}))


async def retract(client: httpx.AsyncClient, report_id: int | str) -> Answer:
    return parse(await client.post("/retract", files={"id": (None, str(report_id))}))
