"""The one settings object: ``SEGPORT_*`` environment variables (see README, api.md).

Embedded mode (a SQLite database URL) generates the JWT secret and the
encryption key once into the data directory beside the database; distributed
mode (MongoDB) refuses to start without them.
"""

from __future__ import annotations

import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import structlog
from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = structlog.get_logger(__name__)

_ORIGIN = re.compile(r"https?://[^/?#\s]+")
"""What a browser sends as ``Origin``: scheme, host and optional port, nothing after."""


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

    # Limits per caller and per connection (issue 10, item 8)
    max_subscriptions_per_user: int = Field(default=100, ge=1)
    """Subscriptions one user (a token's ``sub``) may hold open at once, per API process."""
    max_header_bytes: int = Field(default=16_384, ge=1024)
    """Largest request head (names and values of every header) accepted; larger: 431."""
    request_body_timeout_seconds: float = Field(default=10.0, gt=0)
    """Longest a client may take to send a request body; a slower one gets 408."""

    # Browser frontends on other origins (issue 10, item 22)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins (``https://ui.example``) whose pages may call the API; ``*`` for any. Empty:
    no CORS headers at all, so browsers keep other origins out."""

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> list[str]:
        if isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, list | tuple):
            items = [str(item) for item in value]
        else:
            raise ValueError("SEGPORT_CORS_ORIGINS must be a comma-separated list of origins")
        origins = []
        for item in items:
            origin = item.strip().rstrip("/")
            if not origin:
                continue
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"SEGPORT_CORS_ORIGINS entry {item.strip()!r} is not an origin like "
                    "https://ui.example or http://localhost:3000 (scheme, host, optional "
                    "port, no path), nor *"
                )
            origins.append(origin)
        return origins

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
