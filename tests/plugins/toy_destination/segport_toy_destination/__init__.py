"""A toy segport destination that posts contacts to a webhook collector."""
