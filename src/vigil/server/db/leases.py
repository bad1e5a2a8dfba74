"""Leases on periodic jobs: which process runs a job that must run in one place at a time (every worker of
every node starts the same loops), until when."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from vigil.server.db.base import Base

__all__ = ["JobLeaseRepository", "JobLeaseRow"]


class JobLeaseRow(Base):
    """The process running `job` (a random token it drew at start), until when. Renewed at each round; a
    lease that ran out means its holder stopped, and another process takes the job over."""

    __tablename__ = "job_leases"

    job: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    until_ms: Mapped[int] = mapped_column(BigInteger)


class JobLeaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def take(self, job: str, owner: str, now_ms: int, until_ms: int) -> bool:
        """Takes (or renews, for the same owner) the job's lease unless another owner holds one that has
        not run out; one atomic statement on every backend. Returns whether `owner` holds it now."""
        dialect = self._session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(JobLeaseRow)
            .values(job=job, owner=owner, until_ms=until_ms)
            .on_conflict_do_update(
                index_elements=[JobLeaseRow.job],
                set_={"owner": owner, "until_ms": until_ms},
                where=(JobLeaseRow.until_ms <= now_ms) | (JobLeaseRow.owner == owner),
            )
            .returning(JobLeaseRow.owner)
        )
        return (await self._session.execute(statement)).scalar_one_or_none() == owner
