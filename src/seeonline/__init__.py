"""SeeOnline: Telegram online-status tracking served over an HTTP API."""
