"""The one settings object: ``SEGPORT_*`` environment variables (see README, api.md).

Embedded mode (a SQLite database URL) generates the JWT secret and the
encryption key once into the data directory beside the database; distributed
mode (MongoDB) refuses to start without them.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

import structlog
from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = structlog.get_logger(__name__)


class SettingsError(Exception):
    """The configuration cannot work; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGPORT_", extra="ignore")

    database_url: str = "sqlite:///./segport.db"
    redis_url: str | None = None
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    encryption_key: SecretStr | None = None
    """One Fernet key, or several separated by commas: the first encrypts, all decrypt."""
    public_url: str = "http://127.0.0.1:8000"
    ui_url: str | None = None
    notify_webhook_url: str | None = None

    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    # GraphQL guards
    max_query_depth: int = Field(default=12, ge=2)
    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    max_page_size: int = Field(default=100, ge=1)
    upsert_profiles_max: int = Field(default=1000, ge=1)
    """Most profiles one ``upsertProfiles`` call may carry."""

    # store
    store_write_batch_size: int = Field(default=500, ge=1)
    """Documents per database write (MongoDB bulk_write / insert_many, SQLite executemany)."""
    mongodb_timeout_ms: int = Field(default=5000, ge=100)

    # runs
    run_read_batch_size: int = Field(default=5000, ge=1)
    run_queue_size: int = Field(default=4, ge=1)
    job_timeout_seconds: int = Field(default=6 * 3600, ge=60)
    job_max_tries: int = Field(default=5, ge=1)
    job_retry_base_seconds: float = Field(default=5.0, gt=0)
    """Wait before the second attempt of a run after a transient failure; doubles each time."""
    job_completion_wait_seconds: int = Field(default=25, ge=0)
    worker_concurrency: int = Field(default=4, ge=1)
    worker_metrics_port: int = 9101
    schedule_tick_seconds: float = Field(default=30.0, gt=0)
    run_heartbeat_seconds: float = Field(default=5.0, gt=0)
    """How often a running job says it is alive; a run silent for 3 periods is taken over."""
    oauth_state_ttl_seconds: int = Field(default=600, ge=10)

    # Limits of one operation (issue 10, items 1-2)
    graphql_max_aliases: int = Field(default=30, ge=1)
    """Most aliased fields in one GraphQL document."""
    graphql_max_tokens: int = Field(default=3000, ge=100)
    """Most lexical tokens in one GraphQL document (parsing stops past them)."""
    graphql_max_cost: int = Field(default=50_000, ge=1)
    """Most field resolutions one operation may ask for, counting every item of the lists
    around a field (see :mod:`service.api.operation_cost`)."""
    graphql_max_query_bytes: int = Field(default=100_000, ge=1024)
    """Longest query text (UTF-8 bytes) accepted over the websocket."""
    destination_call_cache_seconds: float = Field(default=30.0, ge=0)
    """How long a destination's answer to a picker is reused."""
    destination_call_budget: int = Field(default=120, ge=1)
    """Destination calls one user may cause per hour while waiting for the answer."""

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "mongodb://", "mongodb+srv://")):
            raise ValueError(
                f"SEGPORT_DATABASE_URL {value!r} must start with sqlite:///, mongodb:// "
                "or mongodb+srv://"
            )
        return value

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite:///")

    @cached_property
    def sqlite_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def data_dir(self) -> Path:
        return self.sqlite_path.resolve().parent

    @property
    def oauth_redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + "/oauth/callback"

    def jwt_secret_value(self) -> str:
        if self.jwt_secret is None:
            raise SettingsError("SEGPORT_JWT_SECRET is not set")
        return self.jwt_secret.get_secret_value()

    def encryption_keys(self) -> list[str]:
        if self.encryption_key is None:
            raise SettingsError("SEGPORT_ENCRYPTION_KEY is not set")
        return [k.strip() for k in self.encryption_key.get_secret_value().split(",") if k.strip()]

    def with_secrets(self) -> Settings:
        """This configuration with its secrets present.

        Embedded mode makes any missing one once, into ``<data dir>/.segport-secrets/``
        (mode 0600), and reuses it afterwards; distributed mode raises
        :class:`SettingsError` naming the missing variable.
        """
        missing = []
        if self.jwt_secret is None and self.jwt_jwks_url is None:
            missing.append("SEGPORT_JWT_SECRET")
        if self.encryption_key is None:
            missing.append("SEGPORT_ENCRYPTION_KEY")
        if not missing:
            return self
        if not self.embedded:
            raise SettingsError(
                f"{' and '.join(missing)} must be set when SEGPORT_DATABASE_URL is MongoDB "
                "(distributed mode); only embedded (SQLite) mode generates them"
            )
        update: dict[str, SecretStr] = {}
        if "SEGPORT_JWT_SECRET" in missing:
            update["jwt_secret"] = SecretStr(
                _generated_secret(self.data_dir, "jwt_secret", lambda: secrets.token_urlsafe(48))
            )
        if "SEGPORT_ENCRYPTION_KEY" in missing:
            update["encryption_key"] = SecretStr(
                _generated_secret(
                    self.data_dir, "encryption_key", lambda: Fernet.generate_key().decode()
                )
            )
        return self.model_copy(update=update)


def _generated_secret(data_dir: Path, name: str, make: object) -> str:
    folder = data_dir / ".segport-secrets"
    path = folder / name
    if path.exists():
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    assert callable(make)
    value = str(make())
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    log.warning("generated_secret", name=name, path=str(path), mode="embedded")
    return value


def load_settings() -> Settings:
    """Settings from the environment, with secrets resolved (see :meth:`Settings.with_secrets`)."""
    return Settings().with_secrets()
