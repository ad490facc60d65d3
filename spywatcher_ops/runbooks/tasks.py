"""Incident runbooks: list, show, walk through step by step, lint."""
