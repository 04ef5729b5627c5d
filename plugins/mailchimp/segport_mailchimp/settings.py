"""Server-side settings of the Mailchimp destination (``SEGPORT_MAILCHIMP_*``).

Read when used, not at import, so tests, the demo and the benchmark can point the
plugin at the fake; pointing it at the real Mailchimp is a settings change only.
Base URLs never come from user input: the data center is the part of the API key
after its dash, and it only fills the ``{dc}`` of :attr:`api_base_url`.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_BASE_URL = "https://{dc}.api.mailchimp.com/3.0"
DEFAULT_OAUTH_BASE_URL = "https://login.mailchimp.com"


class MailchimpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGPORT_MAILCHIMP_", extra="ignore")

    api_base_url: str = DEFAULT_API_BASE_URL
    """The API base, with ``{dc}`` where the account's data center goes."""
    max_tries: int = Field(default=8, ge=1)
    """Attempts per request when Mailchimp answers 429 or has server trouble."""
    backoff_base_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    archive_with_batch_operations: bool = False
    """Archive a mirror run's leavers with one batch operation per removal call (followed
    to its end) instead of one ``DELETE`` per member within the in-flight cap."""
    batch_poll_initial_seconds: float = Field(default=1.0, gt=0)
    """First wait between polls of a batch operation; it doubles up to the maximum."""
    batch_poll_max_seconds: float = Field(default=30.0, gt=0)
    client_id: str = ""
    """A registered app's client id: connections by OAuth2 (auth kind ``oauth2``) need it."""
    client_secret: SecretStr = SecretStr("")
    oauth_base_url: str = DEFAULT_OAUTH_BASE_URL
    """Where ``/oauth2/authorize``, ``/oauth2/token`` and ``/oauth2/metadata`` are."""

    def missing_oauth_configuration(self) -> str | None:
        """What keeps OAuth2 connections from working, naming the variable; None if nothing."""
        if not self.client_id.strip() or not self.client_secret.get_secret_value():
            return (
                "Mailchimp OAuth2 is not configured: set SEGPORT_MAILCHIMP_CLIENT_ID and "
                "SEGPORT_MAILCHIMP_CLIENT_SECRET to the registered app's (or connect with an "
                "API key)"
            )
        return None

    def api_url(self, dc: str, path: str) -> str:
        """``path`` (``/lists``) under the API base of data center ``dc``."""
        return self.api_base_url.replace("{dc}", dc).rstrip("/") + path
