"""How banks travel inside a signed hash list, and back.

A `HashListEntry` names its bank but not the bank's kind; a negative (allow) bank's entries are published
under the bank name prefixed with `NEGATIVE_PREFIX`, so the kind is covered by the authority's signature
(a breached server cannot turn a normal bank into an allow list without breaking it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from vigil.errors import ValidationError
from vigil.safety.hashing.banks import Bank, BankKind, BankName
from vigil.safety.hashing.hashlist import HashListEntry, HashListState

__all__ = ["NEGATIVE_PREFIX", "banks_from_state", "check_bank_name", "list_entries"]

NEGATIVE_PREFIX: Final = "allow:"


def check_bank_name(name: str) -> None:
    """Raises `ValidationError` for a name that could not travel in a list (empty, too long, reserved)."""
    if not name or len(name.encode()) > 200 or name.startswith(NEGATIVE_PREFIX) or name != name.strip():
        raise ValidationError(
            f"a bank name is 1..200 bytes, without surrounding spaces or {NEGATIVE_PREFIX!r}"
        )


def list_entries(banks: Iterable[Bank]) -> list[HashListEntry]:
    """The entries of the enabled banks, as published; each keeps its effective threshold."""
    out: list[HashListEntry] = []
    for bank in banks:
        if not bank.enabled:
            continue
        name = bank.name if bank.kind is BankKind.NORMAL else NEGATIVE_PREFIX + bank.name
        out.extend(HashListEntry(BankName(name), e.hash, bank.threshold_for(e)) for e in bank.entries)
    return out


def banks_from_state(state: HashListState) -> list[Bank]:
    """The banks a client matches against, kinds restored from the signed names."""
    kinds = {
        e.bank: BankKind.NEGATIVE if e.bank.startswith(NEGATIVE_PREFIX) else BankKind.NORMAL
        for e in state.entries
    }
    return state.to_banks(kinds)
