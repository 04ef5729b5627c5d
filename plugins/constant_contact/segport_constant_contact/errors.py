"""The plugin's own errors: subclasses of the plugin API's, so that today's service already
treats them right, with the details a service can show once it reads them."""

from __future__ import annotations

import datetime as dt

from service.plugins import (
    Confirmation,
    ConfirmationFailed,
    DestinationError,
    TransientDestinationError,
)


class DailyQuotaSpent(TransientDestinationError):
    """Constant Contact's daily request quota is spent: nothing can be sent before
    ``until``. Raised outside a run (a list picker, a settings check), where waiting for
    hours is no answer; during a run the uploader waits and says so instead."""

    def __init__(self, reason: str, until: dt.datetime) -> None:
        super().__init__(
            f"Constant Contact asks to wait until {until.isoformat()}: {reason}; try again later"
        )
        self.reason = reason
        self.until = until


class ImportFailed(ConfirmationFailed):
    """An import activity ended ``failed``, ``cancelled`` or ``timed_out`` and was sent
    again as often as allowed: the run cannot honestly succeed. ``confirmation`` holds
    the exact counts of the last attempt (they add up to the contacts of the batch) and
    Constant Contact's words."""

    def __init__(self, message: str, confirmation: Confirmation) -> None:
        super().__init__(message, confirmation)


class ForeignLink(DestinationError):
    """Constant Contact answered with a link outside the configured API base; it is not
    followed (the account's token would go there)."""
