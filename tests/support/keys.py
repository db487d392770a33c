"""The API key and secret key every test app and worker is configured with."""

API_KEY = "test-api-key-0123456789abcdef"
SECRET_KEY = "5d8e61f80fa83f4be0407cd6f0ddc864f9d30e4370548b94f0c595620e5cdf87"  # 32 random bytes, hex
