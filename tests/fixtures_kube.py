"""Shared pytest fixtures (loaded from conftest.py via pytest_plugins)."""
