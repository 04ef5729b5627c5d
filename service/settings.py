"""The one settings object: ``SEGPORT_*`` environment variables (see README, api.md).

Embedded mode (a SQLite database URL) generates the JWT secret and the
encryption key once into the data directory beside the database; distributed
mode (MongoDB) refuses to start without them. A value that cannot work (a
malformed key, a URL without a scheme, a JWT secret too short to be safe) is
refused when the settings are read, with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import structlog
from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = structlog.get_logger(__name__)

_ORIGIN = re.compile(r"https?://[^/?#\s]+")
"""What a browser sends as ``Origin``: scheme, host and optional port, nothing after."""
MIN_JWT_SECRET_BYTES = 32
"""Shortest accepted ``SEGPORT_JWT_SECRET``: RFC 7518 section 3.2 requires an HS256 key of at
least the hash's size (256 bits)."""

SECRETS_FOLDER = ".segport-secrets"
"""Where embedded mode keeps the secrets it generated, inside the data directory."""

_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
"""Listening on every interface: a browser reaches the server through the loopback address."""


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
    """Where ``/oauth/callback`` sends the browser on; unset: the console (``/console/``)."""
    graphiql: bool = True
    """``GET /graphql`` in a browser serves the built-in explorer; false turns it off."""
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
    split_min_profiles: int = Field(default=200_000, ge=0)
    """A preview of at least this many profiles maps half of them in a helper process, on
    another core (0: never)."""
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
    in_flight_lease_seconds: float = Field(default=30.0, gt=0)
    """How long a destination's in-flight slot (``max_requests_in_flight``) outlives a worker
    that died holding it; a live holder renews it every third of this."""
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

    # tokens
    token_max_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    """Longest lifetime ``segport token`` (or any minting) may give a token."""

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

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        # The value is not repeated: a Redis URL may carry a password.
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "SEGPORT_REDIS_URL must start with redis://, rediss:// or unix:// "
                "(for example redis://127.0.0.1:6379/0)"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _public_base_url(cls, value: str) -> str:
        problem = _web_url_problem(value)
        if problem is None and (urlsplit(value).query or urlsplit(value).fragment):
            problem = "must not have a query or a fragment"
        if problem is not None:
            raise ValueError(
                f"SEGPORT_PUBLIC_URL {value!r} {problem}: give the service's external base "
                "URL, like https://segport.example.com"
            )
        return value

    @field_validator("ui_url", "notify_webhook_url", "jwt_jwks_url")
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        # The value is not repeated: webhook URLs often carry a token in their path.
        problem = None if value is None else _web_url_problem(value)
        if problem is not None:
            raise ValueError(f"{problem}: give an absolute http:// or https:// URL")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            size = len(value.get_secret_value().encode())
            if size < MIN_JWT_SECRET_BYTES:
                raise ValueError(
                    f"SEGPORT_JWT_SECRET is too short ({size} bytes): HS256 needs at least "
                    f"{MIN_JWT_SECRET_BYTES} bytes (RFC 7518 section 3.2); make one with "
                    "`openssl rand -base64 48`"
                )
        return value

    @field_validator("encryption_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        keys = [k.strip() for k in value.get_secret_value().split(",")]
        if not any(keys):
            raise ValueError("SEGPORT_ENCRYPTION_KEY is empty")
        for number, key in enumerate(keys, start=1):
            try:
                Fernet(key.encode())
            except ValueError:
                which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
                raise ValueError(
                    f"SEGPORT_ENCRYPTION_KEY: {which} is not a Fernet key (32 url-safe "
                    "base64-encoded bytes, 44 characters); make one with "
                    '`python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"`'
                ) from None
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

    def secrets_dir(self, data_dir: Path | None = None) -> Path:
        """Where embedded mode keeps generated secrets (of ``data_dir`` if given)."""
        return (data_dir.resolve() if data_dir is not None else self.data_dir) / SECRETS_FOLDER

    def listening_on(self, host: str, port: int) -> Settings:
        """This configuration for a server listening on ``host:port``.

        Unless ``SEGPORT_PUBLIC_URL`` is set, the public URL (and so the OAuth redirect
        URI) is that address. When it is set and names this machine on another port, the
        mismatch is logged as a warning: the destination would send browsers elsewhere.
        """
        listening = _http_url(host, port)
        if "public_url" not in self.model_fields_set:
            return self.model_copy(update={"public_url": listening})
        public = urlsplit(self.public_url)
        public_host = public.hostname or ""
        public_port = public.port or (443 if public.scheme == "https" else 80)
        this_machine = public_host in {"localhost", host, _browser_host(host)} or _is_loopback(
            public_host
        )
        if (public_host, public_port) == (_browser_host(host), port):
            return self
        if this_machine and public_port != port:
            log.warning(
                "public_url_not_listening_address",
                public_url=self.public_url,
                listening=listening,
                hint="SEGPORT_PUBLIC_URL names this machine on another port, so OAuth "
                "callbacks go there: unset it or make it match --host/--port",
            )
        else:
            # Behind a proxy the two differ by design; say once which one OAuth uses.
            log.info(
                "public_url_not_listening_address",
                public_url=self.public_url,
                listening=listening,
                oauth_redirect_uri=self.oauth_redirect_uri,
            )
        return self

    @property
    def oauth_redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + "/oauth/callback"

    @property
    def console_url(self) -> str:
        """The web console's address, as the browser reaches the service."""
        return self.public_url.rstrip("/") + "/console/"

    @property
    def after_authorization_url(self) -> str:
        """Where the OAuth callback sends the browser: ``SEGPORT_UI_URL``, else the console."""
        return self.ui_url or self.console_url

    def jwt_secret_value(self) -> str:
        if self.jwt_secret is None:
            raise SettingsError("SEGPORT_JWT_SECRET is not set")
        return self.jwt_secret.get_secret_value()

    def encryption_keys(self) -> list[str]:
        if self.encryption_key is None:
            raise SettingsError("SEGPORT_ENCRYPTION_KEY is not set")
        return [k.strip() for k in self.encryption_key.get_secret_value().split(",") if k.strip()]

    def with_secrets(self, *, generate: bool = True, data_dir: Path | None = None) -> Settings:
        """This configuration with its secrets present.

        Embedded mode makes any missing one once, into ``<data dir>/.segport-secrets/``
        (mode 0600), and reuses it afterwards; distributed mode raises
        :class:`SettingsError` naming the missing variable.

        ``generate=False`` only reads the secrets embedded mode made before (from the
        secrets of ``data_dir`` if given) and leaves the others missing: for commands
        that must use the server's secrets, never new ones of their own.
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
        folder = self.secrets_dir(data_dir)
        makers: dict[str, Callable[[], str]] = {
            "jwt_secret": lambda: secrets.token_urlsafe(48),
            "encryption_key": lambda: Fernet.generate_key().decode(),
        }
        update: dict[str, SecretStr] = {}
        for name, make in makers.items():
            if f"SEGPORT_{name.upper()}" not in missing:
                continue
            value = _stored_secret(folder, name)
            if value is None and generate:
                value = _generate_secret(folder, name, make)
            if value is not None:
                update[name] = SecretStr(value)
        return self.model_copy(update=update)


def _stored_secret(folder: Path, name: str) -> str | None:
    path = folder / name
    return path.read_text().strip() if path.exists() else None


def _generate_secret(folder: Path, name: str, make: Callable[[], str]) -> str:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = make()
    path = folder / name
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    log.warning("generated_secret", name=name, path=str(path), mode="embedded")
    return value


def _web_url_problem(value: str) -> str | None:
    """Why ``value`` is not an absolute http(s) URL, or None when it is one."""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in {"http", "https"}:
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host name"
    if port == 0:
        return "has port 0"
    return None


def _browser_host(host: str) -> str:
    """The host a browser uses to reach a server listening on ``host``."""
    return _WILDCARD_HOSTS.get(host, host)


def _http_url(host: str, port: int) -> str:
    reachable = _browser_host(host)
    return f"http://[{reachable}]:{port}" if ":" in reachable else f"http://{reachable}:{port}"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings() -> Settings:
    """Settings from the environment, with secrets resolved (see :meth:`Settings.with_secrets`)."""
    return Settings().with_secrets()
