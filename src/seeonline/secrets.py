"""Encryption at rest for tracker credentials, and keyed hashes for their uniqueness checks.

``SEEONLINE_SECRET_KEY`` is a keyring: one or more keys, comma-separated. The first encrypts and keys the
lookup hashes; any listed key decrypts, so a new key can be put in front of the old one and the stored
secrets re-encrypted at leisure (``seeonline secrets rotate``).

A ciphertext names the key that made it (a key id derived from the key, never the key) and is bound by
associated data to where it is stored (table, column, row): copied into another row or column, it no
longer decrypts. Ciphertexts of format 1 (written before key ids existed) carry neither; they stay
readable with any listed key until ``seeonline secrets rotate`` rewrites them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VARIABLE = "SEEONLINE_SECRET_KEY"
KEY_BYTES = 32
# Thirty-two random bytes hold about thirty distinct values; fewer than this is a pattern, not a key.
MIN_DISTINCT_BYTES = 16
_NONCE_BYTES = 12
_KEY_ID_BYTES = 4
_LEGACY = 1  # version byte, nonce, sealed; no key id, no associated data
_CURRENT = 2  # version byte, key id, nonce, sealed; the header and the location are associated data
_HEADER_BYTES = 1 + _KEY_ID_BYTES
KEY_ADVICE = "64 hex characters or the base64 of 32 random bytes (try `openssl rand -hex 32`)"


class SecretKeyError(ValueError):
    """The secret key is unusable, or a ciphertext was not made with any listed key for this place."""


class Where(NamedTuple):
    """Where a ciphertext is stored: it decrypts only there."""

    table: str
    column: str
    row_id: int

    def associated_data(self, header: bytes) -> bytes:
        return header + f"|{self.table}.{self.column}.{self.row_id}".encode()


def tracker_api_hash(account_id: int) -> Where:
    """``tracker_accounts.api_hash_encrypted`` of one account."""
    return Where("tracker_accounts", "api_hash_encrypted", account_id)


def tracker_session(tracker_account_id: int) -> Where:
    """``tracker_settings.session_encrypted``; a setting is keyed by its tracker account (unique, immutable)."""
    return Where("tracker_settings", "session_encrypted", tracker_account_id)


def login_secret(column: str, login_id: int) -> Where:
    """``tracker_logins.api_hash_encrypted`` or ``.session_encrypted`` of one login."""
    return Where("tracker_logins", column, login_id)


def webhook_secret(webhook_id: int) -> Where:
    """``webhooks.secret_encrypted``: the signing secret of one webhook."""
    return Where("webhooks", "secret_encrypted", webhook_id)


def _derive(key_text: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"seeonline", info=purpose).derive(key_text.encode())


def _decode_key(text: str) -> bytes | None:
    """The 32 bytes a key spells (hex or base64), or None."""
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == KEY_BYTES else None


@dataclass(frozen=True)
class _Key:
    text: str

    @cached_property
    def id(self) -> bytes:
        return _derive(self.text, b"key-id")[:_KEY_ID_BYTES]

    @cached_property
    def aead(self) -> AESGCM:
        # Derived from the key's text, as format 1 did: old ciphertexts and lookup hashes stay valid.
        return AESGCM(_derive(self.text, b"encrypt"))

    @cached_property
    def lookup(self) -> bytes:
        return _derive(self.text, b"lookup")


class Keyring:
    """The keys of ``SEEONLINE_SECRET_KEY``: the first encrypts, any decrypts."""

    def __init__(self, keys: tuple[_Key, ...]) -> None:
        self.keys = keys
        self._by_id = {key.id: key for key in keys}

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Parse a comma-separated list of keys; ``SecretKeyError`` names the variable and the bad key."""
        parts = [part.strip() for part in text.split(",")]
        if not any(parts):
            msg = f"{VARIABLE}: no key given; it must be {KEY_ADVICE}"
            raise SecretKeyError(msg)
        keys: list[_Key] = []
        for number, part in enumerate(parts, start=1):
            which = "" if len(parts) == 1 else f" key {number} of {len(parts)}"
            raw = _decode_key(part)
            if raw is None:
                msg = f"{VARIABLE}:{which} must be {KEY_ADVICE}"
                raise SecretKeyError(msg)
            if len(set(raw)) < MIN_DISTINCT_BYTES:
                msg = f"{VARIABLE}:{which} is a pattern, not random bytes; it must be {KEY_ADVICE}"
                raise SecretKeyError(msg)
            key = _Key(part)
            if any(other.id == key.id for other in keys):
                msg = f"{VARIABLE}:{which} is listed twice"
                raise SecretKeyError(msg)
            keys.append(key)
        return cls(tuple(keys))

    @property
    def current(self) -> _Key:
        return self.keys[0]

    def encrypt(self, plaintext: str, where: Where) -> str:
        """AES-256-GCM under the first key, bound to ``where``; the result is printable and safe to store."""
        header = bytes([_CURRENT]) + self.current.id
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self.current.aead.encrypt(nonce, plaintext.encode(), where.associated_data(header))
        return base64.urlsafe_b64encode(header + nonce + sealed).decode()

    def decrypt(self, token: str, where: Where) -> str:
        """Reverse :meth:`encrypt`; ``SecretKeyError`` when no listed key made ``token`` for ``where``."""
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except (binascii.Error, ValueError) as exc:
            msg = "ciphertext is not base64"
            raise SecretKeyError(msg) from exc
        version = raw[0] if raw else None
        try:
            if version == _CURRENT:
                key = self._by_id.get(raw[1:_HEADER_BYTES])
                if key is None:
                    msg = f"ciphertext was made with a key that is not in {VARIABLE}"
                    raise SecretKeyError(msg)
                nonce, sealed = raw[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES], raw[_HEADER_BYTES + _NONCE_BYTES :]
                return key.aead.decrypt(nonce, sealed, where.associated_data(raw[:_HEADER_BYTES])).decode()
            if version == _LEGACY:
                return self._decrypt_legacy(raw)
        except (InvalidTag, ValueError) as exc:
            if isinstance(exc, SecretKeyError):
                raise
            msg = f"ciphertext was not made for {where.table}.{where.column} of this row with a key in {VARIABLE}"
            raise SecretKeyError(msg) from exc
        msg = f"ciphertext has an unknown format ({version})"
        raise SecretKeyError(msg)

    def _decrypt_legacy(self, raw: bytes) -> str:
        nonce, sealed = raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :]
        for key in self.keys:
            try:
                return key.aead.decrypt(nonce, sealed, None).decode()
            except InvalidTag:
                continue
        raise InvalidTag

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is already in the current format under the first key (rotation skips it)."""
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except (binascii.Error, ValueError):
            return False
        return raw[:_HEADER_BYTES] == bytes([_CURRENT]) + self.current.id

    def lookup_hash(self, plaintext: str) -> str:
        """A keyed hash for unique indexes (first key): equal secrets collide without storing the plaintext."""
        return _lookup(self.current, plaintext)

    def older_lookup_hashes(self, plaintext: str) -> list[str]:
        """The hashes the other listed keys give: rows not yet rotated carry one of these."""
        return [_lookup(key, plaintext) for key in self.keys[1:]]


def _lookup(key: _Key, plaintext: str) -> str:
    return hmac.new(key.lookup, plaintext.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=8)
def keyring(secret_key: str) -> Keyring:
    """The keyring ``secret_key`` (the value of ``SEEONLINE_SECRET_KEY``) spells, parsed once."""
    return Keyring.parse(secret_key)


def validate_secret_key(secret_key: str) -> None:
    """Refuse a value that is not a list of 32-byte random keys; the message names the variable."""
    keyring(secret_key)


def generate_secret_key() -> str:
    """A fresh random key in the form SEEONLINE_SECRET_KEY expects."""
    return os.urandom(KEY_BYTES).hex()


def encrypt(secret_key: str, plaintext: str, where: Where) -> str:
    """Encrypt ``plaintext`` for storage at ``where`` under the first key of ``secret_key``."""
    return keyring(secret_key).encrypt(plaintext, where)


def decrypt(secret_key: str, token: str, where: Where) -> str:
    """Decrypt a ciphertext stored at ``where`` with any key of ``secret_key``."""
    return keyring(secret_key).decrypt(token, where)


def lookup_hash(secret_key: str, plaintext: str) -> str:
    """The lookup hash under the first key of ``secret_key``."""
    return keyring(secret_key).lookup_hash(plaintext)


def mask(plaintext: str) -> str:
    """What responses show of a credential: its last four characters."""
    return "****" + plaintext[-4:] if len(plaintext) > 8 else "****"
