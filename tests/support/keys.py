"""The API key and secret key every test app and worker is configured with."""

API_KEY = "test-api-key-0123456789abcdef"
SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"
