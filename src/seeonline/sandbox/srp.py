"""The server half of Telegram's SRP-2048 password check, verified against Telethon's ``compute_check``."""

from __future__ import annotations

import hmac
import os
import struct
from dataclasses import dataclass
from typing import Any

from telethon import password as tl_password
from telethon.tl import types

from seeonline.sandbox.crypto import DH_G, DH_PRIME, int_to_bytes

_P_BYTES = int_to_bytes(DH_PRIME)
_SAFETY_BITS = 2048 - 64


def _h(*parts: bytes) -> bytes:
    digest: bytes = tl_password.sha256(*parts)
    return digest


def _pad(value: int) -> bytes:
    padded: bytes = tl_password.big_num_for_hash(value)
    return padded


@dataclass(frozen=True)
class PasswordSecret:
    """What the server stores for a 2FA password: the KDF salts and the verifier v = g^x mod p."""

    algo: Any
    verifier: int

    @classmethod
    def create(cls, password: str) -> PasswordSecret:
        """Derive the verifier the way clients derive x (SHA256/PBKDF2-SHA512 100000 rounds)."""
        algo = types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=os.urandom(40), salt2=os.urandom(16), g=DH_G, p=_P_BYTES
        )
        x = int.from_bytes(tl_password.compute_hash(algo, password), "big")
        return cls(algo=algo, verifier=pow(DH_G, x, DH_PRIME))


@dataclass(frozen=True)
class SrpChallenge:
    """One ``account.getPassword`` answer's ephemeral values, kept until ``auth.checkPassword``."""

    srp_id: int
    b: int
    big_b: int
    secret: PasswordSecret

    @classmethod
    def start(cls, secret: PasswordSecret) -> SrpChallenge:
        """Pick b and compute B = k*v + g^b (mod p), with g^b in the range clients accept."""
        k = int.from_bytes(_h(_P_BYTES, _pad(DH_G)), "big")
        while True:
            b = int.from_bytes(os.urandom(256), "big")
            g_b = pow(DH_G, b, DH_PRIME)
            if g_b.bit_length() >= _SAFETY_BITS and (DH_PRIME - g_b).bit_length() >= _SAFETY_BITS:
                break
        big_b = (k * secret.verifier + g_b) % DH_PRIME
        srp_id = struct.unpack("<q", os.urandom(8))[0]
        return cls(srp_id=srp_id, b=b, big_b=big_b, secret=secret)

    def password_info(self, hint: str | None = None) -> Any:
        """The ``account.password`` object Telethon feeds into ``compute_check``."""
        return types.account.Password(
            new_algo=types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
                salt1=os.urandom(8), salt2=os.urandom(16), g=DH_G, p=_P_BYTES
            ),
            new_secure_algo=types.SecurePasswordKdfAlgoSHA512(salt=os.urandom(8)),
            secure_random=os.urandom(32),
            has_password=True,
            current_algo=self.secret.algo,
            srp_B=_pad(self.big_b),
            srp_id=self.srp_id,
            hint=hint,
        )

    def verify(self, a_bytes: bytes, m1: bytes) -> bool:
        """Check the client's proof M1 for its public value A."""
        big_a = int.from_bytes(a_bytes, "big")
        if not 0 < big_a < DH_PRIME:
            return False
        a_pad, b_pad = _pad(big_a), _pad(self.big_b)
        u = int.from_bytes(_h(a_pad, b_pad), "big")
        # S = (A * v^u)^b equals the client's (B - k*g^x)^(a + u*x) when both know the same x.
        s = pow(big_a * pow(self.secret.verifier, u, DH_PRIME) % DH_PRIME, self.b, DH_PRIME)
        algo = self.secret.algo
        expected = _h(
            tl_password.xor(_h(_P_BYTES), _h(_pad(DH_G))),
            _h(algo.salt1),
            _h(algo.salt2),
            a_pad,
            b_pad,
            _h(_pad(s)),
        )
        return hmac.compare_digest(expected, m1)


def no_password_info() -> Any:
    """The ``account.password`` answer for an account without 2FA."""
    return types.account.Password(
        new_algo=types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=os.urandom(8), salt2=os.urandom(16), g=DH_G, p=_P_BYTES
        ),
        new_secure_algo=types.SecurePasswordKdfAlgoSHA512(salt=os.urandom(8)),
        secure_random=os.urandom(32),
        has_password=False,
    )
