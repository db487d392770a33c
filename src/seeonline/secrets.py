"""Encryption at rest for tracker credentials, and keyed hashes for their uniqueness checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_KEY_LENGTH = 32
_NONCE_BYTES = 12
_VERSION = b"\x01"


class SecretKeyError(ValueError):
    """The secret key is unusable, or a ciphertext was not made with it."""


def validate_secret_key(secret_key: str) -> None:
    """Refuse keys too short to be secret; the message names the variable."""
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        msg = f"SEEONLINE_SECRET_KEY: must be at least {MIN_SECRET_KEY_LENGTH} characters (try `openssl rand -hex 32`)"
        raise SecretKeyError(msg)


def generate_secret_key() -> str:
    """A fresh random key in the form SEEONLINE_SECRET_KEY expects."""
    return os.urandom(32).hex()


@lru_cache(maxsize=8)
def _derive(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"seeonline", info=purpose).derive(secret_key.encode())


def encrypt(secret_key: str, plaintext: str) -> str:
    """AES-256-GCM encrypt ``plaintext``; the result is printable and safe to store."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_derive(secret_key, b"encrypt")).encrypt(nonce, plaintext.encode(), None)
    return base64.urlsafe_b64encode(_VERSION + nonce + sealed).decode()


def decrypt(secret_key: str, token: str) -> str:
    """Reverse :func:`encrypt`; raises ``SecretKeyError`` when the key does not match."""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        nonce, sealed = raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :]
        return AESGCM(_derive(secret_key, b"encrypt")).decrypt(nonce, sealed, None).decode()
    except (InvalidTag, ValueError) as exc:
        msg = "ciphertext was not made with this SEEONLINE_SECRET_KEY"
        raise SecretKeyError(msg) from exc


def lookup_hash(secret_key: str, plaintext: str) -> str:
    """A keyed hash for unique indexes: equal secrets collide without storing the plaintext."""
    return hmac.new(_derive(secret_key, b"lookup"), plaintext.encode(), hashlib.sha256).hexdigest()


def mask(plaintext: str) -> str:
    """What responses show of a credential: its last four characters."""
    return "****" + plaintext[-4:] if len(plaintext) > 8 else "****"
