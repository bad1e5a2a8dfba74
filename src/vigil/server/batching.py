"""Group commit and write serialisation.

`Batcher` collects concurrent calls and hands them to one coroutine at a time as a batch: while one
batch is in its transaction, new arrivals queue up and go together in the next one. Each caller awaits
its own result or exception. There is no long-lived task: the first caller to find the batcher idle
starts a drain task that ends when nothing is left. `Batchers` keeps one batcher per kind of batch for
the lifetime of a server context.

`write_lock` serialises writers in this process *before* they take a pooled connection, on SQLite
only (one writer at a time there anyway; without the lock, waiting writers hold pool connections and
starve the readers that push messages). On PostgreSQL it is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["Batcher", "Batchers", "write_lock"]

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """`run_batch(items)` returns one result or exception per item, in order."""

    def __init__(
        self, run_batch: Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]], *, max_batch: int = 256
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): nothing of the old one can be pending
            self._loop, self._pending, self._task = loop, [], None
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            try:
                results = await self._run_batch([item for item, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch + self._pending:
                    future.cancel()
                self._pending = []
                raise
            except Exception as error:  # handed to every caller of the batch
                results = [error] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # the caller went away; the work was done anyway
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


class Batchers:
    """The batchers of one server context, by name: concurrent calls share a batch only when they
    share a context (and so a database)."""

    def __init__(self) -> None:
        self._by_name: dict[str, Batcher[Any, Any]] = {}

    def get(
        self, name: str, run_batch: Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]]
    ) -> Batcher[T, R]:
        """The batcher called `name`, made with `run_batch` on first use (later `run_batch`es are
        ignored: a name stands for one kind of batch)."""
        found: Batcher[T, R] | None = self._by_name.get(name)
        if found is None:
            found = self._by_name[name] = Batcher(run_batch)
        return found


_Lock = tuple[asyncio.AbstractEventLoop, asyncio.Lock]
_locks: weakref.WeakKeyDictionary[object, _Lock] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def write_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    if engine.dialect.name != "sqlite":
        yield
        return
    loop = asyncio.get_running_loop()
    found = _locks.get(engine.sync_engine)
    if found is None or found[0] is not loop:
        found = (loop, asyncio.Lock())
        _locks[engine.sync_engine] = found
    async with found[1]:
        yield
