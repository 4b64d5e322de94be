"""Deterministic synthetic test data made in code: seeded signals (``signals``) and media files (``media``)."""
