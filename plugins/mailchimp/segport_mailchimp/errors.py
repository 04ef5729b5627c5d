"""Mailchimp's errors in its own words: problem documents (``title``, ``detail``, ``errors``)."""

from __future__ import annotations

from typing import Any

import httpx

from service.plugins import DestinationError


class MailchimpError(DestinationError):
    """Mailchimp refused a request (a 4xx other than 401 and 429): its words, verbatim."""

    def __init__(self, status: int, words: str) -> None:
        super().__init__(words)
        self.status = status


def problem_words(response: httpx.Response) -> str:
    """``Mailchimp: <title>: <detail> (<field>: <message>; ...)`` from a problem document,
    or the status and body when the answer is not one."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not (body.get("title") or body.get("detail")):
        text = response.text.strip()[:300]
        return f"Mailchimp answered {response.status_code}" + (f": {text}" if text else "")
    words = ": ".join(str(body[k]) for k in ("title", "detail") if body.get(k))
    fields = [
        f"{item.get('field')}: {item.get('message')}"
        for item in body.get("errors") or []
        if isinstance(item, dict)
    ]
    if fields:
        words += f" ({'; '.join(fields)})"
    return f"Mailchimp: {words}"
