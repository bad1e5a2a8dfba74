"""Thin typed wrappers over vodozemac's Olm: a device account and its pairwise sessions.

vodozemac's exceptions have no common root; every call here turns them into `vigil.errors` types.
Pickles are always encrypted with a caller-supplied 32-byte key.
"""

from __future__ import annotations

from dataclasses import dataclass

import vodozemac

from vigil.errors import DecryptionError, StorageError, TamperError, ValidationError
from vigil.protocol.encoding import length_prefixed
from vigil.protocol.wire import DeviceKeys, SignedKey

__all__ = [
    "PICKLE_KEY_BYTES",
    "DeviceAccount",
    "OlmMessageParts",
    "PairwiseSession",
    "verify_device_keys",
    "verify_signed_key",
]

PICKLE_KEY_BYTES = 32
_DEVICE_KEYS_CONTEXT = b"vigil-device-keys-v1"
_SIGNED_KEY_CONTEXT = b"vigil-signed-key-v1"


@dataclass(frozen=True, slots=True)
class OlmMessageParts:
    message_type: int  # 0 pre-key, 1 normal
    ciphertext: bytes


def _device_keys_message(curve25519: str, ed25519: str) -> bytes:
    return length_prefixed(_DEVICE_KEYS_CONTEXT, curve25519.encode(), ed25519.encode())


def _signed_key_message(key_id: str, key: str) -> bytes:
    return length_prefixed(_SIGNED_KEY_CONTEXT, key_id.encode(), key.encode())


def _verify(ed25519: str, message: bytes, signature: str, what: str) -> None:
    try:
        public = vodozemac.Ed25519PublicKey.from_base64(ed25519)
        public.verify_signature(message, vodozemac.Ed25519Signature.from_base64(signature))
    except (vodozemac.KeyException, vodozemac.SignatureException, ValueError) as error:
        raise TamperError(f"{what} signature does not verify") from error


def verify_device_keys(keys: DeviceKeys) -> None:
    """Raises TamperError unless the device's Ed25519 key signed its Curve25519 key."""
    _verify(keys.ed25519, _device_keys_message(keys.curve25519, keys.ed25519), keys.signature, "device key")


def verify_signed_key(device_ed25519: str, key: SignedKey) -> None:
    """Raises TamperError unless the device signed this one-time or fallback key."""
    _verify(device_ed25519, _signed_key_message(key.key_id, key.key), key.signature, "one-time key")


def _check_pickle_key(pickle_key: bytes) -> None:
    if len(pickle_key) != PICKLE_KEY_BYTES:
        raise ValidationError(f"pickle key must be {PICKLE_KEY_BYTES} bytes")


class PairwiseSession:
    """An Olm session with one peer device. vodozemac only advances the ratchet after a message
    authenticates, so a failed decrypt leaves the session as it was."""

    __slots__ = ("_session",)

    def __init__(self, session: vodozemac.Session) -> None:
        self._session = session

    @property
    def session_id(self) -> str:
        return str(self._session.session_id)

    def encrypt(self, plaintext: bytes) -> OlmMessageParts:
        message_type, ciphertext = self._session.encrypt(plaintext).to_parts()
        return OlmMessageParts(int(message_type), bytes(ciphertext))

    def decrypt(self, message: OlmMessageParts) -> bytes:
        """Raises DecryptionError if the message does not authenticate under this session."""
        try:
            return bytes(self._session.decrypt(_any_message(message)))
        except (vodozemac.OlmDecryptionException, vodozemac.DecodeException, ValueError) as error:
            raise DecryptionError("message does not decrypt under this session") from error

    def matches(self, message: OlmMessageParts) -> bool:
        """Whether a pre-key message was made for this session."""
        if message.message_type != 0:
            return False
        try:
            pre_key = _any_message(message).to_pre_key()
            return pre_key is not None and bool(self._session.session_matches(pre_key))
        except (vodozemac.DecodeException, ValueError, TypeError):
            return False

    def pickle(self, pickle_key: bytes) -> str:
        _check_pickle_key(pickle_key)
        return str(self._session.pickle(pickle_key))

    @classmethod
    def from_pickle(cls, pickled: str, pickle_key: bytes) -> PairwiseSession:
        """Raises StorageError if the pickle is corrupt or the key is wrong."""
        _check_pickle_key(pickle_key)
        try:
            return cls(vodozemac.Session.from_pickle(pickled, pickle_key))
        except (vodozemac.PickleException, ValueError) as error:
            raise StorageError("session pickle does not open with this key") from error


def _any_message(message: OlmMessageParts) -> vodozemac.AnyOlmMessage:
    if message.message_type not in (0, 1):
        raise DecryptionError("unknown Olm message type")
    try:
        return vodozemac.AnyOlmMessage.from_parts(message.message_type, message.ciphertext)
    except (vodozemac.DecodeException, ValueError) as error:
        raise DecryptionError("malformed Olm message") from error


class DeviceAccount:
    """A device's long-term Olm identity: Curve25519 + Ed25519 keys, one-time and fallback keys."""

    __slots__ = ("_account",)

    def __init__(self, account: vodozemac.Account | None = None) -> None:
        self._account = account if account is not None else vodozemac.Account()

    @property
    def curve25519(self) -> str:
        return str(self._account.curve25519_key.to_base64())

    @property
    def ed25519(self) -> str:
        return str(self._account.ed25519_key.to_base64())

    def sign(self, message: bytes) -> str:
        return str(self._account.sign(message).to_base64())

    def device_keys(self) -> DeviceKeys:
        curve, ed = self.curve25519, self.ed25519
        return DeviceKeys(curve25519=curve, ed25519=ed, signature=self.sign(_device_keys_message(curve, ed)))

    def _signed(self, keys: dict[str, vodozemac.Curve25519PublicKey]) -> list[SignedKey]:
        signed = []
        for key_id, key in keys.items():
            text = str(key.to_base64())
            signed.append(
                SignedKey(key_id=key_id, key=text, signature=self.sign(_signed_key_message(key_id, text)))
            )
        return signed

    def new_one_time_keys(self, count: int) -> list[SignedKey]:
        """Generates `count` keys and returns every unpublished one, signed. Call `mark_published` once
        the server has them."""
        self._account.generate_one_time_keys(count)
        return self._signed(self._account.one_time_keys)

    def new_fallback_key(self) -> SignedKey:
        # Present in vodozemac 0.10 at run time, missing from its type stubs.
        self._account.generate_fallback_key()  # type: ignore[attr-defined]
        return self._signed(self._account.fallback_key)[0]  # type: ignore[attr-defined]

    def mark_published(self) -> None:
        self._account.mark_keys_as_published()

    @property
    def max_one_time_keys(self) -> int:
        return int(self._account.max_number_of_one_time_keys)

    def outbound_session(self, peer_curve25519: str, peer_one_time_key: str) -> PairwiseSession:
        """Raises ValidationError if either key is malformed."""
        try:
            session = self._account.create_outbound_session(
                vodozemac.Curve25519PublicKey.from_base64(peer_curve25519),
                vodozemac.Curve25519PublicKey.from_base64(peer_one_time_key),
            )
        except (vodozemac.KeyException, ValueError) as error:
            raise ValidationError("peer key is malformed") from error
        return PairwiseSession(session)

    def inbound_session(
        self, peer_curve25519: str, message: OlmMessageParts
    ) -> tuple[PairwiseSession, bytes]:
        """Creates a session from a peer's pre-key message and decrypts it. The one-time key it used is
        consumed only on success. Raises DecryptionError otherwise."""
        if message.message_type != 0:
            raise DecryptionError("only a pre-key message can start a session")
        pre_key = _any_message(message).to_pre_key()
        if pre_key is None:
            raise DecryptionError("not a pre-key message")
        try:
            session, plaintext = self._account.create_inbound_session(
                vodozemac.Curve25519PublicKey.from_base64(peer_curve25519), pre_key
            )
        except (
            vodozemac.SessionCreationException,
            vodozemac.KeyException,
            vodozemac.DecodeException,
            vodozemac.OlmDecryptionException,
            ValueError,
        ) as error:
            raise DecryptionError("pre-key message does not start a session") from error
        return PairwiseSession(session), bytes(plaintext)

    def pickle(self, pickle_key: bytes) -> str:
        _check_pickle_key(pickle_key)
        return str(self._account.pickle(pickle_key))

    @classmethod
    def from_pickle(cls, pickled: str, pickle_key: bytes) -> DeviceAccount:
        """Raises StorageError if the pickle is corrupt or the key is wrong."""
        _check_pickle_key(pickle_key)
        try:
            return cls(vodozemac.Account.from_pickle(pickled, pickle_key))
        except (vodozemac.PickleException, ValueError) as error:
            raise StorageError("account pickle does not open with this key") from error
