"""Disaster-recovery drills that measure the achieved RTO and RPO against the targets."""
