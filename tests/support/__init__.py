"""Shared test support: fake servers, one FakeClock, ROOT, fixture modules used
by more than one tier (registered from tests/conftest.py). Not a test tier:
nothing here is collected. See tests/README.md.
"""
