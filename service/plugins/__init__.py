"""segport's public plugin API. Plugins import from here and nowhere else in ``service``
(their tests also use :mod:`service.plugins.testing`).

``PLUGIN_API_VERSION`` says which version of this API the installed segport
provides; docs/plugins.md says what a minor and a major version change may do.
"""

from service.plugins.api import (
    ENTRY_POINT_GROUP,
    AuthKind,
    AuthorizationLost,
    BatchOutcome,
    Confirmation,
    ConfirmationFailed,
    CredentialSource,
    Destination,
    DestinationContext,
    DestinationError,
    DestinationLimits,
    DestinationSession,
    EncodedRecord,
    FieldWarning,
    InvalidCredentials,
    ListChoice,
    ListMember,
    ListStanding,
    MappingTarget,
    OAuthTokens,
    RateLimiter,
    RecordRejection,
    Rejection,
    RemovalOutcome,
    RunReporter,
    SettingError,
    SettingSpec,
    TransientDestinationError,
    UploadBatch,
    hookimpl,
)
from service.plugins.demo import DEMO_PROFILE_ATTRIBUTES, DemoDestination, DemoExport, DemoFixture
from service.plugins.fake_server import serve_app
from service.plugins.service_info import ServiceInfo, ServiceMode
from service.plugins.validation import is_uuid
from service.plugins.version import PLUGIN_API_VERSION

__all__ = [
    "DEMO_PROFILE_ATTRIBUTES",
    "ENTRY_POINT_GROUP",
    "PLUGIN_API_VERSION",
    "AuthKind",
    "AuthorizationLost",
    "BatchOutcome",
    "Confirmation",
    "ConfirmationFailed",
    "CredentialSource",
    "DemoDestination",
    "DemoExport",
    "DemoFixture",
    "Destination",
    "DestinationContext",
    "DestinationError",
    "DestinationLimits",
    "DestinationSession",
    "EncodedRecord",
    "FieldWarning",
    "InvalidCredentials",
    "ListChoice",
    "ListMember",
    "ListStanding",
    "MappingTarget",
    "OAuthTokens",
    "RateLimiter",
    "RecordRejection",
    "Rejection",
    "RemovalOutcome",
    "RunReporter",
    "ServiceInfo",
    "ServiceMode",
    "SettingError",
    "SettingSpec",
    "TransientDestinationError",
    "UploadBatch",
    "hookimpl",
    "is_uuid",
    "serve_app",
]
