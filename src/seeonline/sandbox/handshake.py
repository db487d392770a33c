"""The unencrypted auth-key handshake: req_pq_multi, req_DH_params, set_client_DH_params."""

from __future__ import annotations

import os
import time
from typing import Any

from telethon import helpers
from telethon.crypto import AES, AuthKey
from telethon.extensions import BinaryReader
from telethon.tl import functions, types

from seeonline.sandbox.crypto import DH_G, DH_PRIME, ServerKey, int_to_bytes, sha1

# pq must be the product of two primes the client can factor quickly; these are Telegram's documented example.
_P, _Q = 1229739323, 1402015859
_SAFETY = 2 ** (2048 - 64)
AUTH_KEY_BYTES = 256


class HandshakeError(Exception):
    """The client broke the handshake protocol; the connection should be closed."""


def _random_int(size: int) -> int:
    return int.from_bytes(os.urandom(size), "little", signed=True)


class Handshake:
    """One connection's handshake state; ``handle`` answers each plain message in turn."""

    def __init__(self, server_key: ServerKey) -> None:
        self.server_key = server_key
        self.nonce: int | None = None
        self.server_nonce = _random_int(16)
        self.new_nonce: int | None = None
        self._a = 0
        self._aes: tuple[bytes, bytes] | None = None

    def handle(self, request: Any) -> tuple[Any, AuthKey | None]:
        """The answer to one plain request, and the new auth key once the exchange completes."""
        if isinstance(request, functions.ReqPqMultiRequest | functions.ReqPqRequest):
            return self._res_pq(request), None
        if isinstance(request, functions.ReqDHParamsRequest):
            return self._server_dh_params(request), None
        if isinstance(request, functions.SetClientDHParamsRequest):
            return self._dh_gen(request)
        raise HandshakeError(f"unexpected plain message {type(request).__name__}")

    def _check_nonces(self, request: Any) -> None:
        if request.nonce != self.nonce or request.server_nonce != self.server_nonce:
            raise HandshakeError("nonce mismatch")

    def _res_pq(self, request: Any) -> Any:
        self.nonce = request.nonce
        return types.ResPQ(
            nonce=request.nonce,
            server_nonce=self.server_nonce,
            pq=int_to_bytes(_P * _Q),
            server_public_key_fingerprints=[self.server_key.fingerprint],
        )

    def _server_dh_params(self, request: Any) -> Any:
        self._check_nonces(request)
        if request.public_key_fingerprint != self.server_key.fingerprint:
            raise HandshakeError("unknown RSA key fingerprint")
        # Telethon pads without RSA-OAEP: sha1(data) + data + random, raised to e mod n.
        plain = self.server_key.decrypt_raw(request.encrypted_data)
        with BinaryReader(plain[20:]) as reader:
            inner = reader.tgread_object()
        if not isinstance(inner, types.PQInnerData | types.PQInnerDataDc | types.PQInnerDataTempDc):
            raise HandshakeError(f"unexpected inner data {type(inner).__name__}")
        if sha1(bytes(inner)) != plain[:20]:
            raise HandshakeError("inner data SHA-1 mismatch")
        if inner.nonce != self.nonce or inner.server_nonce != self.server_nonce:
            raise HandshakeError("inner data nonce mismatch")
        self.new_nonce = inner.new_nonce
        while True:
            self._a = int.from_bytes(os.urandom(256), "big")
            g_a = pow(DH_G, self._a, DH_PRIME)
            if _SAFETY <= g_a <= DH_PRIME - _SAFETY:
                break
        answer = bytes(
            types.ServerDHInnerData(
                nonce=self.nonce,
                server_nonce=self.server_nonce,
                g=DH_G,
                dh_prime=int_to_bytes(DH_PRIME),
                g_a=int_to_bytes(g_a),
                server_time=int(time.time()),
            )
        )
        with_hash = sha1(answer) + answer
        with_hash += os.urandom(-len(with_hash) % 16)
        self._aes = helpers.generate_key_data_from_nonce(self.server_nonce, self.new_nonce)
        return types.ServerDHParamsOk(
            nonce=self.nonce,
            server_nonce=self.server_nonce,
            encrypted_answer=AES.encrypt_ige(with_hash, *self._aes),
        )

    def _dh_gen(self, request: Any) -> tuple[Any, AuthKey]:
        self._check_nonces(request)
        if self._aes is None or self.new_nonce is None:
            raise HandshakeError("set_client_DH_params before req_DH_params")
        plain = AES.decrypt_ige(request.encrypted_data, *self._aes)
        with BinaryReader(plain[20:]) as reader:
            inner = reader.tgread_object()
        if not isinstance(inner, types.ClientDHInnerData) or sha1(bytes(inner)) != plain[:20]:
            raise HandshakeError("bad client DH inner data")
        g_b = int.from_bytes(inner.g_b, "big")
        if not _SAFETY <= g_b <= DH_PRIME - _SAFETY:
            raise HandshakeError("g_b out of range")
        # 2048 bits, as Telegram keeps it: with a leading zero byte Telethon derives a 255-byte key, which
        # its StringSession would save padded at the end (another key, AUTH_KEY unknown on the next
        # connection). Telegram's 256-byte key makes Telethon reject this handshake (new_nonce_hash1) and
        # redo it, so a saved session always holds the key both sides use.
        auth_key = AuthKey(pow(g_b, self._a, DH_PRIME).to_bytes(AUTH_KEY_BYTES, "big"))
        answer = types.DhGenOk(
            nonce=self.nonce,
            server_nonce=self.server_nonce,
            new_nonce_hash1=auth_key.calc_new_nonce_hash(self.new_nonce, 1),
        )
        return answer, auth_key
