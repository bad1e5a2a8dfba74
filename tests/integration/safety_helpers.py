"""Helpers for the trust & safety tests: the server's own services, run against the live server's
database (the same code the console runs), and report helpers."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
from live_server import ServerProcess
from PIL import Image, ImageDraw

from vigil.client.client import Client
from vigil.safety.hashing.pdq import hash_image
from vigil.safety.policy import Standing
from vigil.server.context import ServerContext
from vigil.server.db.accounts import StandingRepository, UserRepository
from vigil.server.settings import Settings


@contextlib.asynccontextmanager
async def server_context(data_dir: Path, database_url: str) -> AsyncIterator[ServerContext]:
    async with ServerContext.open(Settings(data_dir=data_dir, database_url=database_url)) as ctx:
        yield ctx


async def set_standing(server: ServerProcess, client: Client, standing: Standing) -> None:
    """Puts the client's account in `standing` as a reviewer's decision would (active lifts it)."""
    async with (
        server_context(server.data_dir, server.database_url) as ctx,
        ctx.sessions() as session,
        session.begin(),
    ):
        user = await UserRepository(session).by_username(client.username)
        assert user is not None
        lifted = standing is Standing.ACTIVE
        await StandingRepository(session).set(user.id, None if lifted else standing.value, ctx.clock_ms())


def matchable_pictures(count: int, seed: int) -> list[bytes]:
    """PNG shapes on a background, kept only when PDQ quality is high enough for them to be matched."""
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
