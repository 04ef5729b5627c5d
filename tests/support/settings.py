"""Settings for tests: a fixed JWT secret and Fernet key, so nothing is generated on disk."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from service.settings import Settings

TEST_JWT_SECRET = "segport-test-jwt-secret-0123456789abcdef0123456789abcdef"
TEST_ENCRYPTION_KEY = "zCVq5b7kFBUuiXfpLYIiqJB2c8Ju1pZmbWTqpS6Y67E="

# The MongoDB timeout of tests' stores. PyMongo's monitor gives a server this long to
# answer its heartbeat; past it, the server is marked unknown and every operation in
# flight is interrupted (``_OperationCancelled``). mongoeco's wire server answers on
# the event loop that also runs each call, and one call of a few hundred documents can
# hold that loop for seconds on a busy 2-core machine: at the service's 5 s default a
# heartbeat then times out in the middle of a test. A real MongoDB answers heartbeats
# on their own thread, so production keeps its default.
MONGO_TEST_TIMEOUT_MS = 30_000


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for ``database_url`` (``sqlite:///...`` or ``mongodb://...``) with test secrets.

    ``overrides`` are Settings field names (``redis_url=...``, ``max_page_size=...``);
    strings given for the secret fields are wrapped in ``SecretStr``. A MongoDB URL
    gets :data:`MONGO_TEST_TIMEOUT_MS` unless ``mongodb_timeout_ms`` is given.
    """
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": SecretStr(TEST_JWT_SECRET),
        "encryption_key": SecretStr(TEST_ENCRYPTION_KEY),
        "store_write_batch_size": 200,
    }
    if database_url.startswith("mongodb"):
        values["mongodb_timeout_ms"] = MONGO_TEST_TIMEOUT_MS
    for name, value in overrides.items():
        if name in {"jwt_secret", "encryption_key"} and isinstance(value, str):
            value = SecretStr(value)
        values[name] = value
    return Settings(**values)
