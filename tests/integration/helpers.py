"""Helpers for integration tests: register clients against a live server."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from vigil.client.client import Client
from vigil.client.events import Event, MessageEvent

ADULT = dt.date(1990, 5, 17)
PASSPHRASE = "correct horse battery staple"


def unique(name: str) -> str:
    return f"{name}_{secrets.token_hex(3)}"


async def register(url: str, tmp: Path, name: str, birth_date: dt.date = ADULT) -> Client:
    username = unique(name)
    return await Client.register(url, username, birth_date, tmp / f"{username}.db", PASSPHRASE)


def texts(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, MessageEvent)]
