"""spywatcher-ops: runbook automation and disaster recovery for the spywatcher platform."""

__version__ = "0.1.0"
