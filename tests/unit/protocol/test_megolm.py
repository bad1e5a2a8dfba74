from __future__ import annotations

import base64

import pytest

from vigil.errors import DecryptionError, ProtocolError, StorageError, TamperError, ValidationError
from vigil.protocol.megolm import (
    GroupKeyKind,
    GroupSessionKey,
    GroupSessionStats,
    InboundGroupSession,
    MegolmCiphertext,
    OutboundGroupSession,
    RoomKeyShare,
    RotationPolicy,
    RotationReason,
    accept_room_key,
    forward_room_key,
    new_room_key_share,
    rotation_reason,
    should_rotate,
)
from vigil.protocol.olm import DeviceAccount

PICKLE_KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _flip_b64(text: str, byte: int, bit: int = 0) -> str:
    raw = bytearray(base64.b64decode(text + "=" * (-len(text) % 4)))
    raw[byte] ^= 1 << bit
    return base64.b64encode(bytes(raw)).decode().rstrip("=")


def _flip(data: bytes, byte: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[byte] ^= 1 << bit
    return bytes(out)


@pytest.fixture
def pair() -> tuple[OutboundGroupSession, InboundGroupSession]:
    outbound = OutboundGroupSession()
    return outbound, InboundGroupSession.from_key(outbound.session_key())


# --- sessions ---------------------------------------------------------------------------------------------


def test_round_trip_and_indices(pair: tuple[OutboundGroupSession, InboundGroupSession]) -> None:
    outbound, inbound = pair
    assert inbound.session_id == outbound.session_id
    assert inbound.first_known_index == 0
    for index in range(3):
        assert outbound.message_index == index
        ciphertext = outbound.encrypt(f"hello {index}".encode())
        assert ciphertext.session_id == outbound.session_id
        assert ciphertext.claimed_index == index
        decrypted = inbound.decrypt(ciphertext)
        assert decrypted.plaintext == f"hello {index}".encode()
        assert decrypted.message_index == index
    assert outbound.message_index == 3


def test_out_of_order_decrypt(pair: tuple[OutboundGroupSession, InboundGroupSession]) -> None:
    outbound, inbound = pair
    messages = [outbound.encrypt(bytes([i]) * 300) for i in range(5)]
    for i in (4, 0, 2, 1, 3):
        assert inbound.decrypt(messages[i]).message_index == i


def test_session_key_is_not_in_repr(pair: tuple[OutboundGroupSession, InboundGroupSession]) -> None:
    outbound, _ = pair
    key = outbound.session_key()
    assert key.value not in repr(key)


def test_every_bit_flip_is_rejected_and_state_is_unchanged(
    pair: tuple[OutboundGroupSession, InboundGroupSession],
) -> None:
    outbound, inbound = pair
    genuine = outbound.encrypt(b"x" * 300)
    for position in range(len(genuine.body)):
        tampered = MegolmCiphertext(genuine.session_id, _flip(genuine.body, position))
        with pytest.raises(ProtocolError):
            inbound.decrypt(tampered)
    assert inbound.decrypt(genuine).plaintext == b"x" * 300


def test_flip_in_ciphertext_or_signature_is_tamper(
    pair: tuple[OutboundGroupSession, InboundGroupSession],
) -> None:
    outbound, inbound = pair
    genuine = outbound.encrypt(b"payload" * 40)
    for position in (10, len(genuine.body) // 2, len(genuine.body) - 70, len(genuine.body) - 1):
        with pytest.raises(TamperError):
            inbound.decrypt(MegolmCiphertext(genuine.session_id, _flip(genuine.body, position, 3)))
    assert inbound.decrypt(genuine).plaintext == b"payload" * 40


def test_message_from_other_session_relabelled_is_tamper(
    pair: tuple[OutboundGroupSession, InboundGroupSession],
) -> None:
    outbound, inbound = pair
    intruder = OutboundGroupSession()
    forged = intruder.encrypt(b"forged")
    with pytest.raises(DecryptionError):
        inbound.decrypt(forged)  # labelled honestly: another session
    with pytest.raises(TamperError):
        inbound.decrypt(MegolmCiphertext(outbound.session_id, forged.body))
    assert inbound.decrypt(outbound.encrypt(b"real")).plaintext == b"real"


def test_malformed_message(pair: tuple[OutboundGroupSession, InboundGroupSession]) -> None:
    outbound, inbound = pair
    with pytest.raises(DecryptionError):
        inbound.decrypt(MegolmCiphertext(outbound.session_id, b"not megolm"))
    with pytest.raises(DecryptionError):
        inbound.decrypt(MegolmCiphertext(outbound.session_id, b""))
    with pytest.raises(DecryptionError):
        _ = MegolmCiphertext(outbound.session_id, b"\x00").claimed_index


def test_late_joiner_cannot_read_earlier_messages() -> None:
    outbound = OutboundGroupSession()
    early = [outbound.encrypt(f"early {i}".encode()) for i in range(3)]
    joiner = InboundGroupSession.from_key(outbound.session_key())
    assert joiner.first_known_index == 3
    later = outbound.encrypt(b"later")
    for message in early:
        with pytest.raises(DecryptionError) as caught:
            joiner.decrypt(message)
        assert not isinstance(caught.value, TamperError)
    assert joiner.decrypt(later).message_index == 3


def test_export_at_index_for_history_sharing(pair: tuple[OutboundGroupSession, InboundGroupSession]) -> None:
    outbound, inbound = pair
    messages = [outbound.encrypt(bytes([i])) for i in range(4)]
    exported = inbound.export_at(2)
    assert exported.kind is GroupKeyKind.EXPORTED
    imported = InboundGroupSession.from_key(exported)
    assert imported.first_known_index == 2
    assert imported.session_id == outbound.session_id
    with pytest.raises(DecryptionError):
        imported.decrypt(messages[1])
    assert imported.decrypt(messages[2]).plaintext == b"\x02"
    assert imported.decrypt(messages[3]).plaintext == b"\x03"
    with pytest.raises(ValidationError):
        imported.export_at(1)
    with pytest.raises(ValidationError):
        inbound.export_at(-1)


def test_malformed_and_tampered_session_keys(pair: tuple[OutboundGroupSession, InboundGroupSession]) -> None:
    outbound, inbound = pair
    key = outbound.session_key()
    for bad in ("", "not base64!", key.value + "=="):
        with pytest.raises(ValidationError):
            InboundGroupSession.from_key(GroupSessionKey(GroupKeyKind.SESSION, bad))
    raw_len = len(base64.b64decode(key.value + "=" * (-len(key.value) % 4)))
    for position in range(raw_len):
        with pytest.raises(TamperError):
            InboundGroupSession.from_key(
                GroupSessionKey(GroupKeyKind.SESSION, _flip_b64(key.value, position))
            )
    # A signed session key is not an exported key and vice versa.
    with pytest.raises(ValidationError):
        InboundGroupSession.from_key(GroupSessionKey(GroupKeyKind.EXPORTED, key.value))
    with pytest.raises(TamperError):
        InboundGroupSession.from_key(GroupSessionKey(GroupKeyKind.SESSION, inbound.export_at(0).value))


def test_outbound_pickle_round_trip_continues_ratchet(
    pair: tuple[OutboundGroupSession, InboundGroupSession],
) -> None:
    outbound, inbound = pair
    outbound.encrypt(b"one")
    restored = OutboundGroupSession.from_pickle(outbound.pickle(PICKLE_KEY), PICKLE_KEY)
    assert restored.session_id == outbound.session_id
    assert restored.message_index == 1
    assert inbound.decrypt(restored.encrypt(b"two")).message_index == 1


def test_inbound_pickle_round_trip(pair: tuple[OutboundGroupSession, InboundGroupSession]) -> None:
    outbound, inbound = pair
    message = outbound.encrypt(b"kept")
    restored = InboundGroupSession.from_pickle(inbound.pickle(PICKLE_KEY), PICKLE_KEY)
    assert restored.session_id == inbound.session_id
    assert restored.first_known_index == 0
    assert restored.decrypt(message).plaintext == b"kept"


@pytest.mark.parametrize("kind", ["outbound", "inbound"])
def test_pickle_wrong_key_and_corruption(
    kind: str, pair: tuple[OutboundGroupSession, InboundGroupSession]
) -> None:
    outbound, inbound = pair
    cls: type[OutboundGroupSession] | type[InboundGroupSession]
    if kind == "outbound":
        pickled, cls = outbound.pickle(PICKLE_KEY), OutboundGroupSession
    else:
        pickled, cls = inbound.pickle(PICKLE_KEY), InboundGroupSession
    with pytest.raises(StorageError):
        cls.from_pickle(pickled, OTHER_KEY)
    with pytest.raises(StorageError):
        cls.from_pickle(pickled[:-4] + ("AAAA" if pickled[-4:] != "AAAA" else "BBBB"), PICKLE_KEY)
    with pytest.raises(StorageError):
        cls.from_pickle("garbage", PICKLE_KEY)
    with pytest.raises(ValidationError):
        cls.from_pickle(pickled, PICKLE_KEY[:31])
    with pytest.raises(ValidationError):
        (outbound if kind == "outbound" else inbound).pickle(b"")


# --- room-key share ---------------------------------------------------------------------------------------


class _Group:
    def __init__(self) -> None:
        self.alice = DeviceAccount()
        self.bob = DeviceAccount()
        self.carol = DeviceAccount()
        self.session = OutboundGroupSession()

    def share_to_bob(self) -> RoomKeyShare:
        return new_room_key_share(
            self.alice,
            self.session,
            group_id="group:1",
            creator="alice",
            creator_device="ALICEPHONE",
            recipient="bob",
            recipient_device="BOBLAPTOP",
            recipient_ed25519=self.bob.ed25519,
        )

    def accept_as_bob(self, share: RoomKeyShare, *, olm_sender: str | None = None) -> InboundGroupSession:
        return accept_room_key(
            share,
            olm_sender_curve25519=olm_sender or self.alice.curve25519,
            creator_keys=self.alice.device_keys(),
            own_ed25519=self.bob.ed25519,
        )


def test_room_key_share_round_trip_over_json() -> None:
    group = _Group()
    share = RoomKeyShare.model_validate_json(group.share_to_bob().model_dump_json())
    inbound = group.accept_as_bob(share)
    assert inbound.decrypt(group.session.encrypt(b"hi group")).plaintext == b"hi group"
    assert share.session_key not in repr(share)


def test_room_key_share_forbids_unknown_fields() -> None:
    group = _Group()
    data = group.share_to_bob().model_dump() | {"extra": 1}
    with pytest.raises(ValueError):
        RoomKeyShare.model_validate(data)


def test_room_key_creator_signature_bit_flips() -> None:
    group = _Group()
    share = group.share_to_bob()
    for position in range(64):
        tampered = share.model_copy(
            update={"creator_signature": _flip_b64(share.creator_signature, position)}
        )
        with pytest.raises(TamperError):
            group.accept_as_bob(tampered)


@pytest.mark.parametrize("field", ["group_id", "creator", "creator_device"])
def test_room_key_signed_fields_cannot_change(field: str) -> None:
    group = _Group()
    share = group.share_to_bob()
    replacement = {"group_id": "group:2", "creator": "mallory", "creator_device": "OTHER"}[field]
    with pytest.raises(TamperError):
        group.accept_as_bob(share.model_copy(update={field: replacement}))


def test_room_key_session_swapped_for_another() -> None:
    group = _Group()
    share = group.share_to_bob()
    other_key = OutboundGroupSession().session_key().value
    with pytest.raises(TamperError):
        group.accept_as_bob(share.model_copy(update={"session_key": other_key}))


def test_room_key_must_come_from_its_creator_over_olm() -> None:
    group = _Group()
    with pytest.raises(TamperError):
        group.accept_as_bob(group.share_to_bob(), olm_sender=group.carol.curve25519)


def test_room_key_for_another_recipient() -> None:
    group = _Group()
    share = group.share_to_bob()
    with pytest.raises(TamperError):
        accept_room_key(
            share,
            olm_sender_curve25519=group.alice.curve25519,
            creator_keys=group.alice.device_keys(),
            own_ed25519=group.carol.ed25519,
        )


def test_room_key_creator_keys_substituted() -> None:
    group = _Group()
    share = group.share_to_bob()
    with pytest.raises(TamperError):
        accept_room_key(
            share,
            olm_sender_curve25519=group.alice.curve25519,
            creator_keys=group.carol.device_keys(),
            own_ed25519=group.bob.ed25519,
        )
    keys = group.alice.device_keys()
    forged = keys.model_copy(update={"signature": _flip_b64(keys.signature, 5)})
    with pytest.raises(TamperError):
        accept_room_key(
            share,
            olm_sender_curve25519=group.alice.curve25519,
            creator_keys=forged,
            own_ed25519=group.bob.ed25519,
        )


def test_forwarded_history_key_keeps_origin() -> None:
    group = _Group()
    share = group.share_to_bob()
    bob_session = group.accept_as_bob(share)
    history = [group.session.encrypt(f"m{i}".encode()) for i in range(3)]
    forwarded = forward_room_key(
        share,
        bob_session.export_at(1),
        recipient="carol",
        recipient_device="CAROLPAD",
        recipient_ed25519=group.carol.ed25519,
    )
    carol_session = accept_room_key(
        forwarded,
        olm_sender_curve25519=group.bob.curve25519,  # the forwarder, not the creator
        creator_keys=group.alice.device_keys(),
        own_ed25519=group.carol.ed25519,
    )
    assert carol_session.first_known_index == 1
    with pytest.raises(DecryptionError):
        carol_session.decrypt(history[0])
    assert carol_session.decrypt(history[2]).plaintext == b"m2"
    # A forwarder cannot swap in another session under the creator's signature.
    with pytest.raises(TamperError):
        accept_room_key(
            forwarded.model_copy(
                update={
                    "session_key": InboundGroupSession.from_key(OutboundGroupSession().session_key())
                    .export_at(0)
                    .value
                }
            ),
            olm_sender_curve25519=group.bob.curve25519,
            creator_keys=group.alice.device_keys(),
            own_ed25519=group.carol.ed25519,
        )


def test_new_room_key_share_validates_identifiers() -> None:
    group = _Group()
    with pytest.raises(ValidationError):
        new_room_key_share(
            group.alice,
            group.session,
            group_id="g",
            creator="Not Valid",
            creator_device="D",
            recipient="bob",
            recipient_device="B",
            recipient_ed25519=group.bob.ed25519,
        )


# --- rotation ---------------------------------------------------------------------------------------------

DEVICES = frozenset({"alice/A", "bob/B"})


def _stats(created: int = 1_000, sent: int = 0, shared: frozenset[str] = DEVICES) -> GroupSessionStats:
    return GroupSessionStats(created_at_ms=created, messages_sent=sent, shared_with=shared)


@pytest.mark.parametrize(
    ("stats", "now", "devices", "expected"),
    [
        (_stats(), 2_000, DEVICES, None),
        (_stats(sent=99), 2_000, DEVICES, None),
        (_stats(sent=100), 2_000, DEVICES, RotationReason.MESSAGE_LIMIT),
        (_stats(), 1_000 + 3_600_000 - 1, DEVICES, None),
        (_stats(), 1_000 + 3_600_000, DEVICES, RotationReason.AGE_LIMIT),
        (_stats(), 999, DEVICES, RotationReason.CLOCK_WENT_BACK),
        (_stats(), 2_000, frozenset({"alice/A"}), RotationReason.DEVICE_REMOVED),
        (_stats(), 2_000, DEVICES | {"carol/C"}, None),
        (_stats(), 2_000, frozenset({"alice/A", "carol/C"}), RotationReason.DEVICE_REMOVED),
    ],
)
def test_rotation_reason(
    stats: GroupSessionStats, now: int, devices: frozenset[str], expected: RotationReason | None
) -> None:
    policy = RotationPolicy(max_messages=100, max_age_ms=3_600_000)
    assert rotation_reason(policy, stats, now_ms=now, current_devices=devices) is expected
    assert should_rotate(policy, stats, now_ms=now, current_devices=devices) is (expected is not None)


def test_rotation_on_device_added_when_asked() -> None:
    policy = RotationPolicy(rotate_on_device_added=True)
    added = DEVICES | {"carol/C"}
    assert (
        rotation_reason(policy, _stats(), now_ms=2_000, current_devices=added) is RotationReason.DEVICE_ADDED
    )


def test_rotation_policy_rejects_nonsense_limits() -> None:
    with pytest.raises(ValidationError):
        RotationPolicy(max_messages=0)
    with pytest.raises(ValidationError):
        RotationPolicy(max_age_ms=-1)


def test_rotation_with_a_real_session() -> None:
    policy = RotationPolicy(max_messages=2)
    session = OutboundGroupSession()
    for _ in range(2):
        stats = _stats(sent=session.message_index)
        assert not should_rotate(policy, stats, now_ms=1_500, current_devices=DEVICES)
        session.encrypt(b"m")
    stats = _stats(sent=session.message_index)
    assert (
        rotation_reason(policy, stats, now_ms=1_500, current_devices=DEVICES) is RotationReason.MESSAGE_LIMIT
    )
