"""The supervisor and its tracker workers: one OS process per Telegram tracker account."""
