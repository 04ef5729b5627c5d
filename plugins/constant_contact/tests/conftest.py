"""Fixtures of the Constant Contact plugin's tests (defined in :mod:`cc_support`)."""

from cc_support import destination, fake, http, settings

__all__ = ["destination", "fake", "http", "settings"]
