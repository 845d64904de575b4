"""The result vault (kho quản lý dữ liệu điện tử / kho kết quả giải quyết TTHC).

Every result is published once under ``vault://<issuer>/<result code>/<local id>/v<version>``, sealed
with the issuing agency's key, chained into an append-only event log, and reused by later procedures.
Modules: ``store`` (object stores), ``index`` (database tables), ``publish`` (atomic publication),
``reads`` (lookup, reuse, access), ``corrections``, ``verify``, ``sweep``, ``cli``.
Nothing heavy is imported here so that Alembic's environment can import ``lienthong.vault.index``.
"""
