"""The whole schema: importing this registers every concept's row models on `Base.metadata` (what the
migrations and the schema test compare against)."""

from __future__ import annotations

from vigil.server.db import (  # noqa: F401 - imported to register their tables
    accounts,
    appeals,
    audit,
    blobs,
    case_evidence,
    cases,
    contacts,
    cybertip,
    groups,
    hashlists,
    labels,
    leases,
    messaging,
    notices,
    policies,
    preservation,
    reporters,
    reviewers,
)
from vigil.server.db import metadata as metadata_events  # noqa: F401 - the event log and risk state
from vigil.server.db.base import Base

__all__ = ["metadata"]

metadata = Base.metadata
