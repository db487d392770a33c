"""The online/offline transition log (OnlineStatus)."""
