"""Server-side settings of the Constant Contact destination (``SEGPORT_CONSTANT_CONTACT_*``).

They are read when used, not at import, so tests and the demo can point the
plugin at a fake server by environment; pointing it at the real Constant
Contact is a settings change only. Base URLs never come from user input.
What each setting means for Constant Contact is in docs/constant-contact.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

AUTHORIZE_PATH = "/oauth2/default/v1/authorize"
TOKEN_PATH = "/oauth2/default/v1/token"  # noqa: S105 (a URL path, not a secret)


class ConstantContactSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGPORT_CONSTANT_CONTACT_", extra="ignore")

    client_id: str = ""
    """The application's client id (the portal calls it the API key)."""
    client_secret: SecretStr = SecretStr("")
    oauth_flow: Literal["server", "pkce"] = "server"
    """How the app was registered (docs/constant-contact.md, "OAuth2"): ``server``, the
    authorization code flow with the client secret (HTTP Basic at the token endpoint, no
    PKCE: nothing Constant Contact publishes combines them); ``pkce``, the PKCE flow of
    public-client registrations, which never sends a secret."""
    api_base_url: str = "https://api.cc.email/v3"
    auth_base_url: str = "https://authz.constantcontact.com"

    max_tries: int = Field(default=8, ge=1)
    """Attempts per request when Constant Contact throttles or has server trouble."""
    backoff_base_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    confirm_initial_interval_seconds: float = Field(default=1.0, gt=0)
    """First wait between polls of an import activity; it grows to the maximum."""
    confirm_max_interval_seconds: float = Field(default=30.0, gt=0)
    queued_activities_wait_seconds: float = Field(default=30.0, gt=0)
    """First wait after "1,000 queued activities"; it doubles up to 5 minutes."""

    def missing_configuration(self) -> str | None:
        """What keeps this configuration from connecting an account, naming the variable;
        None when nothing does."""
        if not self.client_id.strip():
            return (
                "Constant Contact is not configured: set SEGPORT_CONSTANT_CONTACT_CLIENT_ID "
                "to the application's client id (the developer portal's API key)"
            )
        if self.oauth_flow == "server" and not self.client_secret.get_secret_value():
            return (
                "Constant Contact is not configured: set SEGPORT_CONSTANT_CONTACT_CLIENT_SECRET "
                "(the server flow needs the client secret), or "
                "SEGPORT_CONSTANT_CONTACT_OAUTH_FLOW=pkce for a public-client registration"
            )
        return None

    @property
    def authorize_url(self) -> str:
        return self.auth_base_url.rstrip("/") + AUTHORIZE_PATH

    @property
    def token_url(self) -> str:
        return self.auth_base_url.rstrip("/") + TOKEN_PATH

    def api_url(self, path: str) -> str:
        """``path`` (``/contact_lists``) under the API base (``.../v3``)."""
        return self.api_base_url.rstrip("/") + path
