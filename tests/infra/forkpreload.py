"""Imported by the fork server in its tests: a run forked from it finds this module loaded."""

import os

MARKER = f"loaded in {os.getpid()}"
