"""What a device or account deletion removed and what it kept (and why): the server tells the user."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["DeletionReport", "KeptRecord"]


class KeptRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    what: str
    why: str
    until: str


class DeletionReport(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    deleted: list[str]
    kept: list[KeptRecord]
