"""segport: export customer segments to marketing destinations, over GraphQL."""

__version__ = "0.1.0"
