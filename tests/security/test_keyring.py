"""Key rotation: a keyring in SEEONLINE_SECRET_KEY, ciphertexts bound to their row, ``seeonline secrets rotate``.

Also the key policy: every key is 32 random bytes (64 hex characters or base64).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from seeonline.secrets import Keyring, SecretKeyError, Where, keyring, login_secret, tracker_api_hash, tracker_session
from seeonline.settings import Settings, SettingsError, load_settings
from seeonline_supervisor.credentials import open_credentials
from tests.support.http import same_loop_client
from tests.support.keys import SECRET_KEY
from tests.support.sessions import session_string

# Session strings the API accepts (Telethon loads them), one per tracker the rotation test makes.
SESSIONS = {1: session_string(), 2: session_string()}

OLD = SECRET_KEY
NEW = "9f1c2b7d4e6a8c0b3d5f7a9c1e3b5d7f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b"
ROOT = Path(__file__).resolve().parents[2]


def format_1(key_text: str, plaintext: str) -> str:
    """A ciphertext as written before key ids and row binding: version 1, nonce, AES-GCM without associated data."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"seeonline", info=b"encrypt").derive(key_text.encode())
    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(b"\x01" + nonce + AESGCM(derived).encrypt(nonce, plaintext.encode(), None)).decode()


def version_and_key_id(token: str) -> bytes:
    return base64.urlsafe_b64decode(token)[:5]


# --- the keyring ---------------------------------------------------------------------------------------


def test_the_first_key_encrypts_and_any_listed_key_decrypts() -> None:
    old_only, both, new_only = keyring(OLD), keyring(f"{NEW},{OLD}"), keyring(NEW)
    where = tracker_session(7)
    under_old = old_only.encrypt("session-one", where)
    assert both.decrypt(under_old, where) == "session-one"
    under_new = both.encrypt("session-two", where)
    assert new_only.decrypt(under_new, where) == "session-two"
    with pytest.raises(SecretKeyError, match="not in SEEONLINE_SECRET_KEY"):
        old_only.decrypt(under_new, where)


def test_a_ciphertext_decrypts_only_where_it_was_stored() -> None:
    ring = keyring(OLD)
    api_hash = ring.encrypt("0123456789abcdef", tracker_api_hash(1))
    assert ring.decrypt(api_hash, tracker_api_hash(1)) == "0123456789abcdef"
    for elsewhere in (tracker_api_hash(2), tracker_session(1), login_secret("api_hash_encrypted", 1)):
        with pytest.raises(SecretKeyError):
            ring.decrypt(api_hash, elsewhere)


def test_format_1_ciphertexts_stay_readable_with_any_listed_key() -> None:
    legacy = format_1(OLD, "written-before-key-ids")
    assert keyring(f"{NEW},{OLD}").decrypt(legacy, tracker_session(3)) == "written-before-key-ids"
    assert not keyring(OLD).is_current(legacy)  # the rotation rewrites it
    with pytest.raises(SecretKeyError):
        keyring(NEW).decrypt(legacy, tracker_session(3))


# --- the key policy (12) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "short",
        "s" * 40,  # long enough before, but not 32 bytes in either spelling
        "g" * 64,  # 64 characters, not hex
        "tpZkOdvehSv2YtZ0qTfO0w==",  # base64, 16 bytes
        "00" * 32,  # 32 bytes, no randomness
        "0123456789abcdef" * 4,
        f"{NEW},short",
        f"{NEW},{NEW}",
    ],
)
def test_a_key_that_is_not_32_random_bytes_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="SEEONLINE_SECRET_KEY") as caught:
        load_settings({"SEEONLINE_SECRET_KEY": value})
    assert value not in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        NEW,
        NEW.upper(),
        base64.b64encode(bytes.fromhex(NEW)).decode(),
        base64.urlsafe_b64encode(bytes.fromhex(OLD)).decode().rstrip("="),
        f"{NEW}, {OLD}",
    ],
)
def test_hex_or_base64_of_32_random_bytes_is_accepted(value: str) -> None:
    assert load_settings({"SEEONLINE_SECRET_KEY": value}).secret_key == value.strip()


def test_keyring_parse_says_which_key_is_bad() -> None:
    with pytest.raises(SecretKeyError, match="key 2 of 2"):
        Keyring.parse(f"{NEW},nope")


# --- rotation end to end -------------------------------------------------------------------------------


def _rotate(database_url: str, secret_key: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": database_url, "SEEONLINE_SECRET_KEY": secret_key}
    command = [sys.executable, "-m", "seeonline", "secrets", "rotate"]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


async def _stored(db: asyncpg.Connection[Any]) -> list[tuple[str, int, str]]:
    rows = await db.fetch(
        """SELECT 'tracker_accounts.api_hash_encrypted' AS col, id AS row_key, api_hash_encrypted AS token
           FROM tracker_accounts
           UNION ALL SELECT 'tracker_settings.session_encrypted', tracker_account_id, session_encrypted
           FROM tracker_settings WHERE session_encrypted IS NOT NULL
           UNION ALL SELECT 'tracker_logins.api_hash_encrypted', id, api_hash_encrypted FROM tracker_logins
           UNION ALL SELECT 'tracker_logins.session_encrypted', id, session_encrypted
           FROM tracker_logins WHERE session_encrypted IS NOT NULL"""
    )
    return [(row["col"], row["row_key"], row["token"]) for row in rows]


async def test_rotation_end_to_end(settings: Settings, db: asyncpg.Connection[Any], database_url: str) -> None:
    # Under the old key: two trackers through the API, one of them a format-1 row as older releases wrote it.
    async with same_loop_client(settings) as http:
        made = []
        for n in (1, 2):
            account = await http.post(
                "/tracker-accounts/",
                json={"telegram_id": 5000 + n, "api_id": 6000 + n, "api_hash": f"old-hash-{n:04d}x"},
            )
            assert account.status_code == 201, account.text
            setting = await http.post(
                "/tracker-settings/",
                json={
                    "tracker_account_id": account.json()["id"],
                    "phone_number": f"+1555000{n}",
                    "session_string": SESSIONS[n],
                },
            )
            assert setting.status_code == 201, setting.text
            made.append(account.json()["id"])
    legacy_id = made[1]
    await db.execute(
        "UPDATE tracker_accounts SET api_hash_encrypted = $2 WHERE id = $1", legacy_id, format_1(OLD, "old-hash-0002x")
    )
    await db.execute(
        "UPDATE tracker_settings SET session_encrypted = $2 WHERE tracker_account_id = $1",
        legacy_id,
        format_1(OLD, SESSIONS[2]),
    )
    before_update = await db.fetchval("SELECT updated_at FROM tracker_accounts WHERE id = $1", made[0])
    plaintexts = {made[0]: ("old-hash-0001x", SESSIONS[1]), legacy_id: ("old-hash-0002x", SESSIONS[2])}

    # The new key goes first. Old data is readable at once, and new writes are under the new key.
    rotating = msgspec.structs.replace(settings, secret_key=f"{NEW},{OLD}")
    for tracker_id, (api_hash, session) in plaintexts.items():
        row = await db.fetchrow(
            "SELECT a.api_id, a.api_hash_encrypted, s.session_encrypted FROM tracker_accounts a"
            " JOIN tracker_settings s ON s.tracker_account_id = a.id WHERE a.id = $1",
            tracker_id,
        )
        assert row is not None
        opened = open_credentials(rotating.secret_key, tracker_id, *row.values())
        assert opened.credentials is not None
        assert (opened.credentials.api_hash, opened.credentials.session) == (api_hash, session)
    async with same_loop_client(rotating) as http:
        # The unique index compares first-key hashes; an old row's hash is found all the same.
        duplicate = await http.post(
            "/tracker-accounts/", json={"telegram_id": 5009, "api_id": 6009, "api_hash": "old-hash-0001x"}
        )
        assert (duplicate.status_code, duplicate.json()["field"]) == (409, "api_hash")
        fresh = await http.post(
            "/tracker-accounts/", json={"telegram_id": 5003, "api_id": 6003, "api_hash": "new-hash-0003x"}
        )
        assert fresh.status_code == 201, fresh.text
    fresh_token = await db.fetchval("SELECT api_hash_encrypted FROM tracker_accounts WHERE id = $1", fresh.json()["id"])
    assert version_and_key_id(fresh_token) == b"\x02" + keyring(NEW).current.id

    # The rotation rewrites everything not yet under the new key, and says what it did.
    result = _rotate(database_url, f"{NEW},{OLD}")
    assert result.returncode == 0, result.stderr
    assert "tracker_accounts.api_hash_encrypted: 2 re-encrypted, 1 already under the first key" in result.stdout
    assert "tracker_settings.session_encrypted: 2 re-encrypted" in result.stdout
    # Secrets never logged: neither key nor any plaintext appears in what the command prints.
    printed = result.stdout + result.stderr
    for secret in (NEW, OLD, *(value for pair in plaintexts.values() for value in pair)):
        assert secret not in printed

    # Now the new key alone reads everything, every ciphertext is format 2 under it, the hashes are redone.
    new_only = keyring(NEW)
    stored = await _stored(db)
    assert len(stored) == 5
    for column, row_key, token in stored:
        assert version_and_key_id(token) == b"\x02" + new_only.current.id, column
        table, name = column.split(".")
        new_only.decrypt(token, Where(table, name, row_key))
    for tracker_id, (api_hash, _session) in plaintexts.items():
        lookup = await db.fetchval("SELECT api_hash_lookup FROM tracker_accounts WHERE id = $1", tracker_id)
        assert lookup == new_only.lookup_hash(api_hash)
    # Re-encrypting unchanged secrets is no change of the row (a FATAL tracker stays FATAL).
    assert await db.fetchval("SELECT updated_at FROM tracker_accounts WHERE id = $1", made[0]) == before_update

    async with same_loop_client(msgspec.structs.replace(settings, secret_key=NEW)) as http:
        duplicate = await http.post(
            "/tracker-accounts/", json={"telegram_id": 5010, "api_id": 6010, "api_hash": "old-hash-0002x"}
        )
        assert (duplicate.status_code, duplicate.json()["field"]) == (409, "api_hash")

    # Repeating it changes nothing; without the key that made a row it stops and names the row.
    again = _rotate(database_url, NEW)
    assert again.returncode == 0 and "0 re-encrypted, 3 already" in again.stdout, again.stdout + again.stderr
    await db.execute(
        "UPDATE tracker_settings SET session_encrypted = $2 WHERE tracker_account_id = $1",
        made[0],
        keyring(OLD).encrypt(SESSIONS[1], tracker_session(made[0])),
    )
    stopped = _rotate(database_url, NEW)
    assert stopped.returncode != 0
    assert "tracker_settings row" in stopped.stderr and "SEEONLINE_SECRET_KEY" in stopped.stderr


async def test_a_ciphertext_copied_into_another_row_does_not_decrypt(
    db: asyncpg.Connection[Any], settings: Settings
) -> None:
    async with same_loop_client(settings) as http:
        ids = []
        for n in (1, 2):
            created = await http.post(
                "/tracker-accounts/", json={"telegram_id": 7000 + n, "api_id": 7100 + n, "api_hash": f"hash-of-row-{n}"}
            )
            ids.append(created.json()["id"])
    await db.execute(
        "UPDATE tracker_accounts SET api_hash_encrypted ="
        " (SELECT api_hash_encrypted FROM tracker_accounts WHERE id = $1) WHERE id = $2",
        ids[0],
        ids[1],
    )
    token = await db.fetchval("SELECT api_hash_encrypted FROM tracker_accounts WHERE id = $1", ids[1])
    with pytest.raises(SecretKeyError):
        keyring(SECRET_KEY).decrypt(token, tracker_api_hash(ids[1]))
    assert keyring(SECRET_KEY).decrypt(token, tracker_api_hash(ids[0])) == "hash-of-row-1"
