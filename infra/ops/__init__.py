"""Operator commands: `status`, `logs`, `ssh`, `audit` (pure builders and parsers, thin runners)."""
