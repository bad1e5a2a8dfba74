"""The two keys of known-image matching, kept apart from the server's other secrets.

- The hash-list authority's Ed25519 signing key (`VIGIL_HASHLIST_SIGNING_KEY_FILE`): signs every list
  manifest and the voucher key. Only publishing needs it; `vigil serve` loads it only when the console
  may publish (below).
- The safety team's Curve25519 voucher key (`VIGIL_HASHLIST_VOUCHER_KEY_FILE`, secret): opens vouchers,
  so it belongs on the safety team's machine. Publishing needs only its public half
  (`VIGIL_HASHLIST_VOUCHER_PUBLIC_KEY`, base64, or derived from the secret file when present).

Clients pin the authority's public key. The server tells them which one its lists are signed with
(`GET /v1/hashlist/authority`): `VIGIL_HASHLIST_AUTHORITY_KEY` (base64), else in dev the public half of
the dev signing key; outside dev without the setting it serves none (clients then need the key from their
own configuration).

The console publishes only when `VIGIL_HASHLIST_CONSOLE_PUBLISH=true`; it then loads the signing key for
that one request, never at startup. In dev both are generated once into the data dir (its own files, mode
0600); outside dev a missing key is refused. Key files hold the raw key as hex.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.errors import ValidationError
from vigil.protocol.encoding import b64decode
from vigil.protocol.vouchers import VoucherKeyPair, decode_authority_key, encode_authority_key
from vigil.server.settings import Environment, Settings

__all__ = [
    "HashListKeySettings",
    "load_authority_public_key",
    "load_signing_key",
    "load_voucher_keypair",
    "load_voucher_public_key",
]

_DEV_SIGNING_FILE = "hashlist-signing.key"
_DEV_VOUCHER_FILE = "voucher.key"


class HashListKeySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_HASHLIST_", extra="ignore")

    signing_key_file: Path | None = None
    authority_key: str | None = None  # the signing key's public half, base64: what clients are told to pin
    voucher_key_file: Path | None = None
    voucher_public_key: str | None = None
    # Lets the review console publish (leads and admins): only for deployments where the authority key
    # may live with the server process. Off by default; then the console shows the CLI command instead.
    console_publish: bool = False


def _read_hex_key(path: Path, what: str) -> bytes:
    try:
        raw = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as error:
        raise ValidationError(f"cannot read the {what} from {path}: {type(error).__name__}") from error
    if len(raw) != 32:
        raise ValidationError(f"the {what} in {path} must be 32 bytes of hex")
    return raw


def _dev_key(settings: Settings, name: str) -> bytes:
    path = settings.data_dir / name
    if path.exists():
        return _read_hex_key(path, name)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    path.write_text(key.hex())
    path.chmod(0o600)
    return key


def load_signing_key(settings: Settings, keys: HashListKeySettings | None = None) -> Ed25519PrivateKey:
    """The authority's signing key. Raises ValidationError outside dev when no key file is configured."""
    keys = keys or HashListKeySettings()
    if keys.signing_key_file is not None:
        raw = _read_hex_key(keys.signing_key_file, "hash-list signing key")
    elif settings.environment is not Environment.DEV:
        raise ValidationError("VIGIL_HASHLIST_SIGNING_KEY_FILE must be set outside dev")
    else:
        raw = _dev_key(settings, _DEV_SIGNING_FILE)
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_authority_public_key(settings: Settings, keys: HashListKeySettings | None = None) -> str | None:
    """The authority public key (base64) clients are told to pin: configured, else in dev the dev signing
    key's public half; None outside dev without the setting (the server process need not hold the signing
    key). Raises ValidationError on a malformed `VIGIL_HASHLIST_AUTHORITY_KEY`."""
    keys = keys or HashListKeySettings()
    if keys.authority_key is not None:
        decode_authority_key(keys.authority_key)
        return keys.authority_key.strip()
    if settings.environment is not Environment.DEV:
        return None
    return encode_authority_key(load_signing_key(settings, keys).public_key())


def load_voucher_keypair(settings: Settings, keys: HashListKeySettings | None = None) -> VoucherKeyPair:
    """The safety team's voucher secret. Raises ValidationError outside dev when no key file is configured."""
    keys = keys or HashListKeySettings()
    if keys.voucher_key_file is not None:
        return VoucherKeyPair(_read_hex_key(keys.voucher_key_file, "voucher key"))
    if settings.environment is not Environment.DEV:
        raise ValidationError("VIGIL_HASHLIST_VOUCHER_KEY_FILE must be set outside dev")
    return VoucherKeyPair(_dev_key(settings, _DEV_VOUCHER_FILE))


def load_voucher_public_key(settings: Settings, keys: HashListKeySettings | None = None) -> bytes:
    """The voucher public key to publish: configured, else derived from the secret (file or dev)."""
    keys = keys or HashListKeySettings()
    if keys.voucher_public_key is not None:
        public = b64decode(keys.voucher_public_key, field="VIGIL_HASHLIST_VOUCHER_PUBLIC_KEY")
        if len(public) != 32:
            raise ValidationError("VIGIL_HASHLIST_VOUCHER_PUBLIC_KEY must be 32 bytes")
        return public
    return load_voucher_keypair(settings, keys).public
