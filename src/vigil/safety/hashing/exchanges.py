"""PDQ hashes from the hash-sharing exchanges, as bank entries: NCMEC's hash-sharing API and Meta's
ThreatExchange. No I/O: the HTTP is done by python-threatexchange's own clients at the server's edge
(`vigil.server.exchanges`); this module folds what they fetched into the current set of live PDQ hashes,
with python-threatexchange's own merge and conversion rules (`NCMECSignalExchangeAPI.fetch_value_merge`
and `naive_convert_to_signal_type`, the same for ThreatExchange), so tombstones and deleted entries drop
out and only valid PDQ signals remain.

Labels carry the provenance: `ncmec:esp:<member id>` and NCMEC's classification (e.g. `A1`), or
`te:owner:<app id>` and the descriptor tags on ThreatExchange.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEntryUpdate, NCMECEnvironment
from threatexchange.exchanges.fetch_state import SignalOpinionCategory
from threatexchange.exchanges.impl.fb_threatexchange_api import (
    FBThreatExchangeCollabConfig,
    FBThreatExchangeIndicatorRecord,
    FBThreatExchangeSignalExchangeAPI,
)
from threatexchange.exchanges.impl.ncmec_api import NCMECCollabConfig, NCMECSignalExchangeAPI
from threatexchange.signal_type.pdq.signal import PdqSignal

from vigil.safety.hashing.banks import BankEntry, EntryId
from vigil.safety.hashing.pdq import PdqHash

__all__ = ["MAX_LABELS", "ncmec_bank_entries", "threatexchange_bank_entries"]

MAX_LABELS = 12
"""Labels kept per entry (the bank stores them in a bounded column)."""

TeKey = tuple[str, str]


def _entry(hex_hash: str, labels: Iterable[str]) -> BankEntry:
    pdq = PdqHash.from_hex(hex_hash)
    kept = tuple(sorted({label[:60] for label in labels if label}))[:MAX_LABELS]
    return BankEntry(EntryId(pdq.hex()), pdq, kept)


def ncmec_bank_entries(
    pages: Iterable[Iterable[NCMECEntryUpdate]], *, only_esp_ids: frozenset[int] = frozenset()
) -> list[BankEntry]:
    """The live PDQ hashes of a complete NCMEC fetch (pages of entry updates, oldest page first).

    A later update of an entry replaces the earlier one; a deleted entry (a tombstone) removes it. With
    `only_esp_ids`, only entries uploaded by those members count."""
    merged: dict[str, NCMECEntryUpdate | None] = {}
    for page in pages:
        for update in page:
            key = f"{update.member_id}-{update.id}"
            merged[key] = NCMECSignalExchangeAPI.fetch_value_merge(merged.get(key), update)
    live = {key: update for key, update in merged.items() if update is not None}
    collab = NCMECCollabConfig(
        name="vigil", environment=NCMECEnvironment.Industry, only_esp_ids=set(only_esp_ids)
    )
    converted = NCMECSignalExchangeAPI.naive_convert_to_signal_type([PdqSignal], collab, live)
    return [
        _entry(
            signal,
            [f"ncmec:esp:{member}" for member in metadata.member_entries]
            + [tag for tags in metadata.member_entries.values() for tag in tags],
        )
        for signal, metadata in sorted(converted.get(PdqSignal, {}).items())
    ]


def threatexchange_bank_entries(
    pages: Iterable[Mapping[TeKey, FBThreatExchangeIndicatorRecord | None]], *, privacy_group: int
) -> list[BankEntry]:
    """The live PDQ hashes of a complete ThreatExchange /threat_updates fetch (pages of
    `(indicator type, indicator) -> record or None` as `FBThreatExchangeSignalExchangeAPI.fetch_iter`
    yields them, oldest first).

    None (a deletion, or a record with no visible descriptor) removes the indicator. An indicator whose
    every opinion is a false-positive one (NON_MALICIOUS, or a DISAGREE_WITH_TAGS reaction) is not
    banked: it belongs in a negative bank, decided by a person, not fetched into a normal one."""
    merged: dict[TeKey, FBThreatExchangeIndicatorRecord | None] = {}
    for page in pages:
        merged.update(page)
    collab = FBThreatExchangeCollabConfig(name="vigil", privacy_group=privacy_group)
    converted = FBThreatExchangeSignalExchangeAPI.naive_convert_to_signal_type([PdqSignal], collab, merged)
    out: list[BankEntry] = []
    for signal, record in sorted(converted.get(PdqSignal, {}).items()):
        opinions = record.opinions
        if all(o.category is SignalOpinionCategory.NEGATIVE_CLASS for o in opinions):
            continue
        labels = [f"te:owner:{o.owner_app_id}" for o in opinions] + [t for o in opinions for t in o.tags]
        out.append(_entry(signal, labels))
    return out
