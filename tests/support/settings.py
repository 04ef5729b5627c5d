"""Settings for tests: a fixed JWT secret and Fernet key, so nothing is generated on disk."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from service.settings import Settings

TEST_JWT_SECRET = "segport-test-jwt-secret-0123456789abcdef0123456789abcdef"
TEST_ENCRYPTION_KEY = "zCVq5b7kFBUuiXfpLYIiqJB2c8Ju1pZmbWTqpS6Y67E="


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for ``database_url`` (``sqlite:///...`` or ``mongodb://...``) with test secrets.

    ``overrides`` are Settings field names (``redis_url=...``, ``max_page_size=...``);
    strings given for the secret fields are wrapped in ``SecretStr``.
    """
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": SecretStr(TEST_JWT_SECRET),
        "encryption_key": SecretStr(TEST_ENCRYPTION_KEY),
        "store_write_batch_size": 200,
    }
    for name, value in overrides.items():
        if name in {"jwt_secret", "encryption_key"} and isinstance(value, str):
            value = SecretStr(value)
        values[name] = value
    return Settings(**values)
