"""The vault's index in the database: one row per published result (the commit point), the links
from each result to the results it was issued from, the hash chain of vault events, and the access
log. Events and access entries are append-only (database triggers refuse UPDATE and DELETE)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lienthong.db.models import Base

GENESIS_HASH = "0" * 64


class VaultResult(Base):
    """A published result (kết quả giải quyết TTHC) and its sealed metadata (Circular 01/2023)."""

    __tablename__ = "vault_results"
    __table_args__ = (
        UniqueConstraint(
            "issuer", "result_code", "local_id", "version", name="uq_vault_results_identity"
        ),
        Index("ix_vault_results_owner_code", "owner_citizen_id", "result_code", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    lineage: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    issuer: Mapped[str] = mapped_column(String(32), nullable=False)
    result_code: Mapped[str] = mapped_column(String(16), nullable=False)
    local_id: Mapped[str] = mapped_column(String(120), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # Metadata of Circular 01/2023 / domain.md "Implications C"; sealed in ``sealed``.
    owner_citizen_id: Mapped[str] = mapped_column(String(12), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    number: Mapped[str] = mapped_column(String(64), nullable=False)
    issued_on: Mapped[date] = mapped_column(Date, nullable=False)
    issuing_body: Mapped[str] = mapped_column(Text, nullable=False)
    signer: Mapped[str] = mapped_column(Text, nullable=False)
    valid_until: Mapped[date | None] = mapped_column(Date)
    permanent: Mapped[bool] = mapped_column(Boolean, nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    summary: Mapped[str | None] = mapped_column(Text)
    procedure_code: Mapped[str] = mapped_column(String(32), nullable=False)
    source_dossier_code: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    source_step: Mapped[str | None] = mapped_column(String(64))
    supersedes: Mapped[str | None] = mapped_column(String(200))
    pdf_key: Mapped[str] = mapped_column(String(120), nullable=False)
    pdf_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    json_key: Mapped[str] = mapped_column(String(120), nullable=False)
    json_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    sealed: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    sealed_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    signature: Mapped[str] = mapped_column(Text, nullable=False)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    published_at: Mapped[datetime] = mapped_column(nullable=False)
    # Life-cycle columns (not sealed; their changes are vault events in the chain).
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="valid")
    superseded_by: Mapped[str | None] = mapped_column(String(200))
    needs_reissue: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    reissue_reason: Mapped[str | None] = mapped_column(Text)


class VaultLink(Base):
    """Result ``result_id`` was issued from the result at ``input_address`` (reused or upstream)."""

    __tablename__ = "vault_links"
    __table_args__ = (UniqueConstraint("result_id", "input_address", name="uq_vault_links"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(
        ForeignKey("vault_results.id", ondelete="CASCADE"), nullable=False
    )
    input_address: Mapped[str] = mapped_column(String(200), nullable=False, index=True)


class VaultEvent(Base):
    """One vault event (publish, supersede, reuse) in the hash chain: ``hash = sha256(prev_hash ||
    canonical(event))``. Append-only."""

    __tablename__ = "vault_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    address: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(32), nullable=False)
    dossier_code: Mapped[str | None] = mapped_column(String(40))
    procedure_code: Mapped[str | None] = mapped_column(String(32))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)


class VaultChainHead(Base):
    """The newest hash of the chain. Updating this single row first serialises appenders (a row lock
    on PostgreSQL, the write lock on SQLite) and lets verification notice a truncated tail."""

    __tablename__ = "vault_chain_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    length: Mapped[int] = mapped_column(Integer, nullable=False)


class VaultAccess(Base):
    """Who read (or was refused) which result, for what, under which legal basis. Append-only."""

    __tablename__ = "vault_access_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(nullable=False)
    agency: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    address: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)
    granted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    procedure_code: Mapped[str | None] = mapped_column(String(32))
    dossier_code: Mapped[str | None] = mapped_column(String(40))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
