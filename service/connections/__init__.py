"""Destination accounts: the OAuth flow, stored credentials, and the context plugins run in."""
