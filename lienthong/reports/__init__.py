"""Operator commands of the accountability features: report, import-history, portal-sim, forms."""
