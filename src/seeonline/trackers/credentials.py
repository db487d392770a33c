"""The stored forms of a tracker's api_hash: ciphertext bound to its row, lookup hash, mask."""

from __future__ import annotations

from typing import Any

from seeonline.api.errors import already_exists
from seeonline.database.pool import Connection
from seeonline.secrets import Keyring, mask, tracker_api_hash


async def api_hash_columns(connection: Connection, keys: Keyring, account_id: int, api_hash: str) -> dict[str, Any]:
    """The stored forms of an account's api_hash; a 409 ``unique`` when another account holds it.

    The unique index compares hashes under the first key; a row not yet rotated carries a hash under an
    older key, which only this look-up finds.
    """
    older = keys.older_lookup_hashes(api_hash)
    if older and await connection.fetchval(
        "SELECT true FROM tracker_accounts WHERE api_hash_lookup = ANY($1::text[]) AND id <> $2", older, account_id
    ):
        raise already_exists("api_hash")
    return {
        "api_hash_encrypted": keys.encrypt(api_hash, tracker_api_hash(account_id)),
        "api_hash_lookup": keys.lookup_hash(api_hash),
        "api_hash_masked": mask(api_hash),
    }
