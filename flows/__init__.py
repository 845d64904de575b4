"""Prefect flows: the generic procedure flow and the batch flows."""
