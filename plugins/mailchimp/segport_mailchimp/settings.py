"""Server-side settings of the Mailchimp destination (``SEGPORT_MAILCHIMP_*``).

Read when used, not at import, so tests, the demo and the benchmark can point the
plugin at the fake; pointing it at the real Mailchimp is a settings change only.
Base URLs never come from user input: the data center is the part of the API key
after its dash, and it only fills the ``{dc}`` of :attr:`api_base_url`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_BASE_URL = "https://{dc}.api.mailchimp.com/3.0"


class MailchimpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGPORT_MAILCHIMP_", extra="ignore")

    api_base_url: str = DEFAULT_API_BASE_URL
    """The API base, with ``{dc}`` where the account's data center goes."""
    max_tries: int = Field(default=8, ge=1)
    """Attempts per request when Mailchimp answers 429 or has server trouble."""
    backoff_base_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)

    def api_url(self, dc: str, path: str) -> str:
        """``path`` (``/lists``) under the API base of data center ``dc``."""
        return self.api_base_url.replace("{dc}", dc).rstrip("/") + path
