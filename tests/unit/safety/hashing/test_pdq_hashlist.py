"""Signed hash lists: signing, chain, deltas, rollback/fork refusal, tamper detection, log checks."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vigil.errors import TamperError, ValidationError, VigilError
from vigil.safety.hashing.banks import BankKind, BankName, Matcher
from vigil.safety.hashing.hashlist import (
    ForkError,
    HashListAuthority,
    HashListEntry,
    HashListPublisher,
    HashListVerifier,
    InconsistentDeltaError,
    LogHead,
    Manifest,
    ManifestKind,
    NotInLogError,
    RollbackError,
    RootMismatchError,
    Sha256Digest,
    SignatureError,
    SignedManifest,
    StaleListError,
    UnsignedListError,
    VersionGapError,
    check_client_list,
    root_hash,
)
from vigil.safety.hashing.pdq import PdqHash

T0 = 1_700_000_000


def _entry(n: int, bank: str = "csam", threshold: int = 31) -> HashListEntry:
    return HashListEntry(BankName(bank), PdqHash(bytes([n]) * 32), threshold)


@pytest.fixture
def authority() -> HashListAuthority:
    return HashListAuthority(Ed25519PrivateKey.generate())


@pytest.fixture
def history(authority: HashListAuthority) -> list[SignedManifest]:
    """v1 full {1,2,3}; v2 delta +4 -2; v3 delta threshold change of 1 (remove+add); v4 full."""
    publisher = HashListPublisher(authority)
    return [
        publisher.publish([_entry(1), _entry(2), _entry(3, "allow", 10)], issued_at=T0),
        publisher.publish([_entry(1), _entry(3, "allow", 10), _entry(4)], issued_at=T0 + 60),
        publisher.publish([_entry(1, threshold=20), _entry(3, "allow", 10), _entry(4)], issued_at=T0 + 120),
        publisher.publish([_entry(1, threshold=20), _entry(4), _entry(5)], issued_at=T0 + 180, full=True),
    ]


def test_publish_and_verify_history(authority: HashListAuthority, history: list[SignedManifest]) -> None:
    assert [m.manifest.kind for m in history] == [
        ManifestKind.FULL,
        ManifestKind.DELTA,
        ManifestKind.DELTA,
        ManifestKind.FULL,
    ]
    assert history[1].manifest.entries == (_entry(4),) and history[1].manifest.removed == (_entry(2),)
    verifier = HashListVerifier(authority.public_key)
    expected = [
        {_entry(1), _entry(2), _entry(3, "allow", 10)},
        {_entry(1), _entry(3, "allow", 10), _entry(4)},
        {_entry(1, threshold=20), _entry(3, "allow", 10), _entry(4)},
        {_entry(1, threshold=20), _entry(4), _entry(5)},
    ]
    for signed, entries in zip(history, expected, strict=True):
        state = verifier.apply(signed)
        assert state.entries == entries
        assert state.root == root_hash(entries) == signed.manifest.root
        assert state.version == signed.manifest.version
    # Every manifest survives a round trip through its wire bytes.
    for signed in history:
        assert SignedManifest.from_bytes(signed.to_bytes()) == signed


def test_state_to_banks_feeds_the_matcher(
    authority: HashListAuthority, history: list[SignedManifest]
) -> None:
    state = HashListVerifier(authority.public_key).apply_all(history[:3])
    assert state is not None
    banks = state.to_banks({BankName("allow"): BankKind.NEGATIVE})
    assert {(b.name, b.kind) for b in banks} == {("csam", BankKind.NORMAL), ("allow", BankKind.NEGATIVE)}
    hit = Matcher(banks).match_hashes([PdqHash(bytes([1]) * 32)])
    assert [m.entry.threshold for m in hit.matches] == [20]
    suppressed = Matcher(banks).match_hashes([PdqHash(bytes([3]) * 32)])
    assert not suppressed.is_match and suppressed.suppressed_by


def test_canonical_bytes_are_deterministic(authority: HashListAuthority) -> None:
    entries = [_entry(3), _entry(1, "b"), _entry(2, "a")]
    a = HashListPublisher(authority).publish(entries, issued_at=T0)
    b = HashListPublisher(authority).publish(reversed(entries), issued_at=T0)
    assert a.manifest.canonical_bytes() == b.manifest.canonical_bytes()
    assert a.signature == b.signature  # Ed25519 is deterministic
    assert root_hash(entries) == root_hash(reversed(entries))
    # Out-of-order or duplicate entries cannot be built into a manifest (one manifest, one encoding).
    with pytest.raises(ValidationError):
        dataclasses.replace(a.manifest, entries=tuple(reversed(a.manifest.entries)))
    with pytest.raises(ValidationError):
        root_hash([_entry(1), _entry(1, threshold=5)])


def test_unsigned_list_is_refused(authority: HashListAuthority, history: list[SignedManifest]) -> None:
    verifier = HashListVerifier(authority.public_key)
    with pytest.raises(UnsignedListError):
        verifier.apply(dataclasses.replace(history[0], signature=b""))
    assert verifier.state is None


def test_other_signer_is_refused(history: list[SignedManifest]) -> None:
    impostor = HashListAuthority(Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError):
        HashListVerifier(impostor.public_key).apply(history[0])


def _mutations(manifest: Manifest) -> dict[str, Manifest]:
    """One changed value per signed field (each still a well-formed manifest)."""
    m = manifest
    other = Sha256Digest(bytes(31) + b"\x01")
    return {
        "version": dataclasses.replace(m, version=m.version + 1),
        "previous": dataclasses.replace(m, previous=other),
        "issued_at": dataclasses.replace(m, issued_at=m.issued_at + 1),
        "kind": dataclasses.replace(m, kind=ManifestKind.FULL, removed=()),
        "root": dataclasses.replace(m, root=other),
        "entries": dataclasses.replace(m, entries=(*m.entries, _entry(99))),
        "entry threshold": dataclasses.replace(
            m, entries=tuple(dataclasses.replace(e, threshold=e.threshold - 1) for e in m.entries)
        ),
        "entry bank": dataclasses.replace(
            m, entries=tuple(dataclasses.replace(e, bank=BankName("zz")) for e in m.entries)
        ),
        "removed": dataclasses.replace(m, removed=()),
    }


def test_every_signed_field_is_covered(authority: HashListAuthority, history: list[SignedManifest]) -> None:
    verifier = HashListVerifier(authority.public_key)
    verifier.apply(history[0])
    delta = history[1]
    for field_name, forged in _mutations(delta.manifest).items():
        with pytest.raises(SignatureError):
            verifier.apply(SignedManifest(forged, delta.signature))
        assert forged.canonical_bytes() != delta.manifest.canonical_bytes(), field_name
    assert verifier.state is not None and verifier.state.version == 1
    verifier.apply(delta)


def test_bit_flips_anywhere_are_refused(authority: HashListAuthority, history: list[SignedManifest]) -> None:
    wire = history[1].to_bytes()
    base_state = HashListVerifier(authority.public_key).apply(history[0])
    refusals: dict[type[VigilError], int] = {}
    for bit in range(len(wire) * 8):
        flipped = bytearray(wire)
        flipped[bit // 8] ^= 1 << (bit % 8)
        verifier = HashListVerifier(authority.public_key, state=base_state)
        with pytest.raises(VigilError) as excinfo:
            verifier.apply(SignedManifest.from_bytes(bytes(flipped)))
        assert isinstance(excinfo.value, TamperError | ValidationError), bit
        refusals[type(excinfo.value)] = refusals.get(type(excinfo.value), 0) + 1
        assert verifier.state == base_state
    assert refusals.get(SignatureError, 0) > 0


def test_rollback_replay_and_fork(authority: HashListAuthority, history: list[SignedManifest]) -> None:
    verifier = HashListVerifier(authority.public_key)
    verifier.apply_all(history[:3])
    with pytest.raises(RollbackError):
        verifier.apply(history[1])  # older
    with pytest.raises(RollbackError):
        verifier.apply(history[2])  # same version, same content: not newer
    # The authority (or a thief of its key) signs a different version 3: a fork.
    m3 = history[2].manifest
    other_v3 = Manifest(3, m3.previous, m3.issued_at, ManifestKind.FULL, root_hash([_entry(7)]), (_entry(7),))
    with pytest.raises(ForkError):
        verifier.apply(authority.sign(other_v3))
    # A version 4 that links to something other than the held version 3.
    m4 = history[3].manifest
    unlinked = dataclasses.replace(m4, previous=history[1].manifest.digest())
    with pytest.raises(ForkError):
        verifier.apply(authority.sign(unlinked))
    # Time going backwards is a rollback even with a higher version.
    with pytest.raises(RollbackError):
        verifier.apply(authority.sign(dataclasses.replace(m4, issued_at=T0)))
    assert verifier.state is not None and verifier.state.version == 3
    verifier.apply(history[3])


def test_gaps_and_deltas_without_base(authority: HashListAuthority, history: list[SignedManifest]) -> None:
    with pytest.raises(VersionGapError):
        HashListVerifier(authority.public_key).apply(history[1])
    verifier = HashListVerifier(authority.public_key)
    verifier.apply(history[0])
    with pytest.raises(VersionGapError):
        verifier.apply(history[2])
    # A fresh client may bootstrap from any full manifest.
    assert HashListVerifier(authority.public_key).apply(history[3]).version == 4


def test_inconsistent_delta_and_lying_root(
    authority: HashListAuthority, history: list[SignedManifest]
) -> None:
    m1 = history[0].manifest
    base = HashListVerifier(authority.public_key).apply(history[0])
    new_root = root_hash([_entry(1), _entry(2), _entry(3, "allow", 10), _entry(4)])
    remove_absent = Manifest(2, m1.digest(), T0, ManifestKind.DELTA, new_root, (), (_entry(9),))
    add_present = Manifest(2, m1.digest(), T0, ManifestKind.DELTA, new_root, (_entry(1),))
    remove_wrong_threshold = Manifest(
        2, m1.digest(), T0, ManifestKind.DELTA, new_root, (), (_entry(2, threshold=5),)
    )
    for bad in (remove_absent, add_present, remove_wrong_threshold):
        with pytest.raises(InconsistentDeltaError):
            HashListVerifier(authority.public_key, state=base).apply(authority.sign(bad))
    lying = Manifest(2, m1.digest(), T0, ManifestKind.DELTA, root_hash([_entry(1)]), (_entry(4),))
    with pytest.raises(RootMismatchError):
        HashListVerifier(authority.public_key, state=base).apply(authority.sign(lying))


def test_stale_list(authority: HashListAuthority, history: list[SignedManifest]) -> None:
    verifier = HashListVerifier(authority.public_key, max_age_seconds=3600)
    with pytest.raises(StaleListError):
        verifier.apply(history[0], now=T0 + 3601)
    assert verifier.state is None
    assert verifier.apply(history[0], now=T0 + 3600).version == 1


def test_log_and_client_check(authority: HashListAuthority, history: list[SignedManifest]) -> None:
    publisher = HashListPublisher(authority)
    for signed in history:
        publisher.log.append(signed)
    head = publisher.log.head()
    assert head.size == 4
    state = HashListVerifier(authority.public_key).apply_all(history[:2])
    assert state is not None
    assert (
        check_client_list(
            authority.public_key, history, version=state.version, root=state.root, published_head=head
        )
        == head
    )
    # A client still on version 2 checks against a published head of size 2 too.
    check_client_list(
        authority.public_key, history, version=2, root=state.root, published_head=publisher.log.head_at(2)
    )
    with pytest.raises(NotInLogError):
        check_client_list(authority.public_key, history, version=2, root=history[0].manifest.root)
    with pytest.raises(NotInLogError):
        check_client_list(authority.public_key, history, version=5, root=state.root)
    forged_head = LogHead(4, Sha256Digest(bytes(32)))
    with pytest.raises(NotInLogError):
        check_client_list(
            authority.public_key, history, version=2, root=state.root, published_head=forged_head
        )
    # A log with a record removed, or reordered, does not replay.
    with pytest.raises(VersionGapError):
        check_client_list(
            authority.public_key, [history[0], history[2]], version=1, root=history[0].manifest.root
        )
    with pytest.raises(VersionGapError):
        check_client_list(authority.public_key, history[1:], version=2, root=state.root)


def test_log_heads_differ_for_forks(authority: HashListAuthority) -> None:
    a, b = HashListPublisher(authority), HashListPublisher(authority)
    a.publish([_entry(1)], issued_at=T0)
    b.publish([_entry(1)], issued_at=T0)
    assert a.log.head() == b.log.head()
    a.publish([_entry(1), _entry(2)], issued_at=T0 + 1)
    b.publish([_entry(1), _entry(3)], issued_at=T0 + 1)  # a targeted list for someone
    assert a.log.head() != b.log.head()


def test_decoder_refuses_noncanonical_bytes(history: list[SignedManifest]) -> None:
    wire = history[1].to_bytes()
    for bad in (wire[:-1], wire + b"\x00", b"x" + wire[1:], wire[:40]):
        with pytest.raises(ValidationError):
            SignedManifest.from_bytes(bad)
