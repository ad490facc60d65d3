"""`inv status`: one read-only screen with the health of every part of an environment."""
