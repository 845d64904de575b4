"""Prefect tasks: how core functions run (retries, names, concurrency, caching), never what they do."""
