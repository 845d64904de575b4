"""Liên Thông: the domain core of inter-agency administrative procedures (thủ tục hành chính liên thông).

This package never imports Prefect: it decides *what* is done; `tasks/` and `flows/` decide *how*.
"""

__version__ = "0.1.0"
