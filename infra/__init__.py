"""Deployments, automations and the local process topology (what runs where)."""
