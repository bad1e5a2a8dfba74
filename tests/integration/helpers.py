"""Helpers for integration tests: register clients against a live server, connect them, read groups."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from vigil.client.client import Client
from vigil.client.events import Event, MessageEvent
from vigil.protocol.group_wire import group_conversation

ADULT = dt.date(1990, 5, 17)
PASSPHRASE = "correct horse battery staple"
TODAY = dt.date.today()
TEEN_14 = TODAY.replace(year=TODAY.year - 14)


def unique(name: str) -> str:
    return f"{name}_{secrets.token_hex(3)}"


async def register(url: str, tmp: Path, name: str, birth_date: dt.date = ADULT) -> Client:
    username = unique(name)
    return await Client.register(url, username, birth_date, tmp / f"{username}.db", PASSPHRASE)


def texts(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, MessageEvent)]


def group_texts(events: list[Event], group_id: str) -> list[str]:
    conversation = group_conversation(group_id)
    return [e.text for e in events if isinstance(e, MessageEvent) and e.conversation == conversation]


def auth_headers(client: Client) -> dict[str, str]:
    """The client's credential as raw HTTP requests present it."""
    return {"Authorization": f"Bearer {client.store.get_secret('credential')}"}


async def connect(adult: Client, minor: Client) -> None:
    """A contact request from `adult`, accepted by `minor` (the minor's consent)."""
    await minor.accept_request((await adult.request_contact(minor.username)).id)
