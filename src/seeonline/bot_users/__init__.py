"""The bot's users (TelegramUser) and the accounts they follow (TrackedUser)."""
