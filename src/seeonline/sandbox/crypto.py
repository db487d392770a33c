"""Server-side MTProto cryptography: the RSA key, the DH prime, and MTProto 2.0 message encryption."""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from telethon.crypto import AES, AuthKey
from telethon.tl.tlobject import TLObject

# Telegram's published 2048-bit safe prime (the one Telethon's password code also trusts), used with g = 3.
DH_PRIME = int(
    "C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F"
    "48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37"
    "20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64"
    "2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4"
    "A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754"
    "FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4"
    "E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F"
    "0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B",
    16,
)
DH_G = 3


def sha1(data: bytes) -> bytes:
    """SHA-1 digest: MTProto's handshake and key fingerprints are defined with it, so no choice here."""
    return hashlib.sha1(data).digest()  # noqa: S324


def int_to_bytes(value: int) -> bytes:
    """Big-endian bytes of minimal length, exactly as Telethon's ``rsa.get_byte_array`` builds them."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@dataclass(frozen=True)
class ServerKey:
    """The sandbox's RSA key pair; clients doing a fresh handshake must trust its public half."""

    n: int
    e: int
    d: int

    @classmethod
    def generate(cls) -> ServerKey:
        """A fresh 2048-bit key pair."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = private.private_numbers()
        return cls(n=numbers.public_numbers.n, e=numbers.public_numbers.e, d=numbers.d)

    @classmethod
    def load(cls, path: Path) -> ServerKey:
        """Load a PEM private key (PKCS#1 or PKCS#8, unencrypted)."""
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError(f"{path} is not an RSA private key")
        numbers = private.private_numbers()
        return cls(n=numbers.public_numbers.n, e=numbers.public_numbers.e, d=numbers.d)

    @property
    def fingerprint(self) -> int:
        """Telegram's key fingerprint: the low 64 bits of SHA-1 over the TL-serialized n and e."""
        data = TLObject.serialize_bytes(int_to_bytes(self.n)) + TLObject.serialize_bytes(int_to_bytes(self.e))
        value: int = struct.unpack("<q", sha1(data)[-8:])[0]
        return value

    def public_pem(self) -> str:
        """The public key as a PKCS#1 PEM, the format ``telethon.crypto.rsa.add_key`` reads."""
        public = rsa.RSAPublicNumbers(self.e, self.n).public_key()
        return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()

    def decrypt_raw(self, cipher: bytes) -> bytes:
        """Undo Telethon's unpadded RSA (``pow(m, e, n)``) into its 255-byte plaintext."""
        return pow(int.from_bytes(cipher, "big"), self.d, self.n).to_bytes(255, "big")


@functools.cache
def default_server_key() -> ServerKey:
    """One generated key per process: key generation is slow enough to matter across many test servers."""
    return ServerKey.generate()


def _aes_key_iv(auth_key: bytes, msg_key: bytes, x: int) -> tuple[bytes, bytes]:
    """MTProto 2.0 AES key and IV; x = 0 for client-to-server messages, 8 for server-to-client."""
    sha_a = sha256(msg_key + auth_key[x : x + 36]).digest()
    sha_b = sha256(auth_key[x + 40 : x + 76] + msg_key).digest()
    return sha_a[:8] + sha_b[8:24] + sha_a[24:32], sha_b[:8] + sha_a[8:24] + sha_b[24:32]


class DecryptError(Exception):
    """An encrypted packet failed its integrity check."""


def decrypt_from_client(auth_key: AuthKey, packet: bytes) -> bytes:
    """Decrypt a client packet (after the 8-byte key id) and verify its msg_key; returns the plaintext."""
    key: bytes = auth_key.key
    msg_key = packet[8:24]
    aes_key, aes_iv = _aes_key_iv(key, msg_key, 0)
    plain: bytes = AES.decrypt_ige(packet[24:], aes_key, aes_iv)
    if sha256(key[88:120] + plain).digest()[8:24] != msg_key:
        raise DecryptError("msg_key mismatch")
    return plain


def encrypt_for_client(auth_key: AuthKey, plain: bytes) -> bytes:
    """Encrypt a server message (salt + session id + message) into a full packet with key id and msg_key."""
    key: bytes = auth_key.key
    # MTProto 2.0 wants 12..1024 bytes of padding and a multiple of 16 in total.
    padding = os.urandom(-(len(plain) + 12) % 16 + 12)
    msg_key = sha256(key[96:128] + plain + padding).digest()[8:24]
    aes_key, aes_iv = _aes_key_iv(key, msg_key, 8)
    encrypted: bytes = AES.encrypt_ige(plain + padding, aes_key, aes_iv)
    return struct.pack("<Q", auth_key.key_id) + msg_key + encrypted
