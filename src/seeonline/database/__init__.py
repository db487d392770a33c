"""The database both programs share: schema migrations and the SQL routines installed with them."""
