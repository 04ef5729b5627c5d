"""Helpers shared by the test packages: settings, record builders, the MongoDB test server."""
