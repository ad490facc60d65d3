"""The responder's front door: which alarms fire and which runbook covers each (`inv oncall`)."""
