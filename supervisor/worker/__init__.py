"""The tracker worker: one process per tracker account, watching its targets through Telethon."""
