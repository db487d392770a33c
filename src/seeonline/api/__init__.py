"""The HTTP API: the old DRF service's contract on Litestar over asyncpg."""
