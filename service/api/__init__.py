"""The GraphQL API: strawberry types and resolvers, one module per area.

:mod:`service.api.schema` assembles the areas into one schema; the ASGI app
(:mod:`service.app`) serves it over HTTP and websockets.
"""
