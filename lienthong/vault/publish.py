"""Atomic, idempotent publication of a result: prepare, write objects, commit the index row.

The index row is the commit point. Objects go first under content-addressed keys; the row (with its
seal and the chain event) last, in one database transaction. If anything fails in between, the
objects written are discarded (unless a committed row refers to them); a crash that skips even that
leaves orphans for ``vault-sweep``. Publishing the same address twice returns the first row.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from json import loads as json_loads
from typing import Any, cast

from sqlalchemy import Engine, Row, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lienthong.clock import get_clock
from lienthong.codes import parse_citizen_id, parse_result_code
from lienthong.db import get_engine, session_scope
from lienthong.payloads import nfc
from lienthong.vault.address import VaultAddress
from lienthong.vault.chain import append_event, event_body
from lienthong.vault.errors import PublicationConflict, ResultNotFound, VaultError
from lienthong.vault.index import VaultLink, VaultResult
from lienthong.vault.render import render_result_pdf
from lienthong.vault.schemas import validate_result_data
from lienthong.vault.seal import Keyring, canonical_json
from lienthong.vault.store import Vault, digest_of_key, object_key, sha256_hex

# Metadata fields that are both sealed and kept as index columns (verification compares them).
SEALED_COLUMNS = (
    "address",
    "issuer",
    "result_code",
    "local_id",
    "version",
    "owner_citizen_id",
    "name",
    "number",
    "issued_on",
    "issuing_body",
    "signer",
    "valid_until",
    "permanent",
    "scope",
    "summary",
    "procedure_code",
    "source_dossier_code",
    "source_step",
    "supersedes",
)


@dataclass(frozen=True)
class ResultDraft:
    """What an agency issued, before it is sealed: the data plus the metadata of Circular 01/2023."""

    issuer: str
    result_code: str
    name: str
    local_id: str
    data: dict[str, Any]
    owner_citizen_id: str
    procedure_code: str
    source_dossier_code: str
    issued_on: date
    issuing_body: str
    signer: str
    number: str
    source_step: str | None = None
    valid_until: date | None = None
    scope: str = "Toàn quốc"
    summary: str | None = None
    pdf: bytes | None = None
    inputs: tuple[str, ...] = ()
    version: int = 1
    supersedes: str | None = None


@dataclass(frozen=True)
class PreparedResult:
    address: VaultAddress
    metadata: dict[str, Any]
    pdf: bytes
    data_json: bytes
    inputs: tuple[str, ...] = ()

    def objects(self) -> list[tuple[bytes, str]]:
        return [(self.pdf, "application/pdf"), (self.data_json, "application/json")]

    @property
    def keys(self) -> list[str]:
        return [self.metadata["files"]["pdf"]["key"], self.metadata["files"]["data"]["key"]]


@dataclass(frozen=True)
class Committed:
    address: str
    created: bool
    flagged: list[str] = field(default_factory=list)


def _file_entry(data: bytes, content_type: str) -> dict[str, Any]:
    d = sha256_hex(data)
    return {"key": object_key(d), "sha256": d, "size": len(data), "content_type": content_type}


def prepare_result(draft: ResultDraft) -> PreparedResult:
    """Check the draft (codes, owner ID, data against its schema), render the PDF if none was
    supplied, and build the metadata document that will be sealed."""
    parse_result_code(draft.result_code)
    owner = str(parse_citizen_id(draft.owner_citizen_id))
    data = nfc(dict(draft.data))
    validate_result_data(draft.result_code, data)
    address = VaultAddress(draft.issuer, draft.result_code, draft.local_id, draft.version)
    meta: dict[str, Any] = nfc(
        {
            "address": str(address),
            "issuer": draft.issuer,
            "result_code": draft.result_code,
            "local_id": draft.local_id,
            "version": draft.version,
            "owner_citizen_id": owner,
            "name": draft.name,
            "number": draft.number,
            "issued_on": draft.issued_on.isoformat(),
            "issuing_body": draft.issuing_body,
            "signer": draft.signer,
            "valid_until": draft.valid_until.isoformat() if draft.valid_until else None,
            "permanent": draft.valid_until is None,
            "scope": draft.scope,
            "summary": draft.summary,
            "procedure_code": draft.procedure_code,
            "source_dossier_code": draft.source_dossier_code,
            "source_step": draft.source_step,
            "supersedes": draft.supersedes,
        }
    )
    pdf = draft.pdf if draft.pdf is not None else render_result_pdf(meta, data)
    if not pdf.startswith(b"%PDF"):
        raise VaultError(
            f"{address}: the supplied file is not a PDF",
            message_vi="Tệp kết quả gửi kèm không phải PDF.",
        )
    data_json = canonical_json(data)
    meta["files"] = {
        "pdf": _file_entry(pdf, "application/pdf"),
        "data": _file_entry(data_json, "application/json"),
    }
    return PreparedResult(address, meta, pdf, data_json, tuple(sorted(set(draft.inputs))))


def write_objects(
    store: Vault, prepared: PreparedResult, written: list[str] | None = None
) -> list[str]:
    """Put the result's objects (durably, together); returns (and appends to ``written``, as each
    is created) the keys this call created."""
    created = written if written is not None else []
    files = prepared.metadata["files"]
    store.put_contents(
        prepared.objects(), digests=[files["pdf"]["sha256"], files["data"]["sha256"]], created=created
    )
    return created


def lock_digests(session: Session, digests: list[str]) -> None:
    """Serialise writers and deleters of the same objects (PostgreSQL advisory locks, taken in order;
    SQLite has a single writer already)."""
    if session.get_bind().dialect.name != "postgresql" or not digests:
        return
    session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(d, 0))) "
            "FROM (SELECT unnest(CAST(:ds AS text[])) AS d ORDER BY 1) AS sorted"
        ),
        {"ds": sorted(set(digests))},
    )


def _row_from(prepared: PreparedResult, sealed: bytes, signature: str, key_id: str) -> VaultResult:
    m = prepared.metadata
    return VaultResult(
        address=m["address"],
        lineage=prepared.address.lineage,
        issuer=m["issuer"],
        result_code=m["result_code"],
        local_id=m["local_id"],
        version=m["version"],
        owner_citizen_id=m["owner_citizen_id"],
        name=m["name"],
        number=m["number"],
        issued_on=date.fromisoformat(m["issued_on"]),
        issuing_body=m["issuing_body"],
        signer=m["signer"],
        valid_until=date.fromisoformat(m["valid_until"]) if m["valid_until"] else None,
        permanent=m["permanent"],
        scope=m["scope"],
        summary=m["summary"],
        procedure_code=m["procedure_code"],
        source_dossier_code=m["source_dossier_code"],
        source_step=m["source_step"],
        supersedes=m["supersedes"],
        pdf_key=m["files"]["pdf"]["key"],
        pdf_sha256=m["files"]["pdf"]["sha256"],
        json_key=m["files"]["data"]["key"],
        json_sha256=m["files"]["data"]["sha256"],
        sealed=m,
        sealed_sha256=sha256_hex(sealed),
        signature=signature,
        key_id=key_id,
        published_at=get_clock().now(),
        status="valid",
        needs_reissue=False,
    )


def downstream_of(session: Session, address: str) -> list[VaultResult]:
    """Results issued (directly or transitively) from ``address``, through the derivation links."""
    seen: dict[str, VaultResult] = {}
    frontier = [address]
    while frontier:
        rows = (
            session.execute(
                select(VaultResult)
                .join(VaultLink, VaultLink.result_id == VaultResult.id)
                .where(VaultLink.input_address.in_(frontier))
            )
            .scalars()
            .all()
        )
        frontier = []
        for r in rows:
            if r.address not in seen and r.address != address:
                seen[r.address] = r
                frontier.append(r.address)
    return sorted(seen.values(), key=lambda r: r.id)


# The whole commit of a plain publication (no correction) in one PostgreSQL statement: the advisory
# locks on its objects' digests, the index row (nothing if the address exists: the first stands),
# its derivation links, the chain head (locked after the row, as append_event does) and the publish
# event, whose hash PostgreSQL computes as chain.chain_hash does: sha256(prev_hash || canonical body).
# The last column refuses (aborting the whole statement) a row without its event.
_RESULT_COLUMNS = (
    "address, lineage, issuer, result_code, local_id, version, owner_citizen_id, name, number, "
    "issued_on, issuing_body, signer, valid_until, permanent, scope, summary, procedure_code, "
    "source_dossier_code, source_step, supersedes, pdf_key, pdf_sha256, json_key, json_sha256, "
    "sealed, sealed_sha256, signature, key_id, published_at, status, needs_reissue"
)
_PUBLISH_SQL = text(
    f"""
WITH locked AS (
    SELECT count(pg_advisory_xact_lock(hashtextextended(d, 0))) AS n
    FROM (SELECT unnest(CAST(:digests AS text[])) AS d ORDER BY 1) AS sorted
),
ins AS (
    INSERT INTO vault_results ({_RESULT_COLUMNS})
    SELECT :address, :lineage, :issuer, :result_code, :local_id, :version, :owner_citizen_id,
           :name, :number, :issued_on, :issuing_body, :signer, :valid_until, :permanent, :scope,
           :summary, :procedure_code, :source_dossier_code, :source_step, NULL, :pdf_key,
           :pdf_sha256, :json_key, :json_sha256, CAST(:sealed AS json), :sealed_sha256,
           :signature, :key_id, :published_at, 'valid', false
    FROM locked
    WHERE EXISTS (SELECT 1 FROM vault_chain_head WHERE id = 1)
    ON CONFLICT DO NOTHING
    RETURNING id
),
links AS (
    INSERT INTO vault_links (result_id, input_address)
    SELECT ins.id, i.address FROM ins, unnest(CAST(:inputs AS text[])) AS i(address)
),
prev AS (
    SELECT h.last_hash FROM vault_chain_head AS h, ins WHERE h.id = 1 FOR UPDATE OF h
),
nh AS (
    SELECT last_hash AS prev_hash,
           encode(sha256(convert_to(last_hash, 'UTF8') || CAST(:body AS bytea)), 'hex') AS hash
    FROM prev
),
upd AS (
    UPDATE vault_chain_head SET last_hash = nh.hash, length = vault_chain_head.length + 1
    FROM nh WHERE vault_chain_head.id = 1
    RETURNING vault_chain_head.id
),
ev AS (
    INSERT INTO vault_events (at, kind, address, actor, dossier_code, procedure_code, legal_basis,
                              detail, prev_hash, hash)
    SELECT :at, 'publish', :address, :actor, :source_dossier_code, :procedure_code, NULL,
           CAST(:detail AS json), nh.prev_hash, nh.hash
    FROM nh
    RETURNING seq
)
SELECT (SELECT id FROM ins) AS id,
       EXISTS (SELECT 1 FROM vault_chain_head WHERE id = 1) AS has_head,
       CASE WHEN (SELECT count(*) FROM ins) = (SELECT count(*) FROM ev)
                 AND (SELECT count(*) FROM ins) = (SELECT count(*) FROM upd) THEN 0
            ELSE CAST('vault chain not appended: ' || (SELECT count(*) FROM ev) AS int) END AS ok
"""
)


def _publish_params(
    prepared: PreparedResult, sealed: bytes, signature: str, key_id: str, actor: str
) -> dict[str, Any]:
    m = prepared.metadata
    files = m["files"]
    at = get_clock().now()
    detail = {
        "sealed_sha256": sha256_hex(sealed),
        "key_id": key_id,
        "files": {k: v["sha256"] for k, v in files.items()},
    }
    body = event_body(
        at=at,
        kind="publish",
        address=m["address"],
        actor=actor,
        dossier_code=m["source_dossier_code"],
        procedure_code=m["procedure_code"],
        legal_basis=None,
        detail=detail,
    )
    return {
        "digests": sorted({f["sha256"] for f in files.values()}),
        "address": m["address"],
        "lineage": prepared.address.lineage,
        "issuer": m["issuer"],
        "result_code": m["result_code"],
        "local_id": m["local_id"],
        "version": m["version"],
        "owner_citizen_id": m["owner_citizen_id"],
        "name": m["name"],
        "number": m["number"],
        "issued_on": date.fromisoformat(m["issued_on"]),
        "issuing_body": m["issuing_body"],
        "signer": m["signer"],
        "valid_until": date.fromisoformat(m["valid_until"]) if m["valid_until"] else None,
        "permanent": m["permanent"],
        "scope": m["scope"],
        "summary": m["summary"],
        "procedure_code": m["procedure_code"],
        "source_dossier_code": m["source_dossier_code"],
        "source_step": m["source_step"],
        "pdf_key": files["pdf"]["key"],
        "pdf_sha256": files["pdf"]["sha256"],
        "json_key": files["data"]["key"],
        "json_sha256": files["data"]["sha256"],
        "sealed": sealed.decode("utf-8"),
        "sealed_sha256": detail["sealed_sha256"],
        "signature": signature,
        "key_id": key_id,
        "published_at": at,
        "inputs": list(prepared.inputs),
        "body": canonical_json(body),
        "at": at,
        "actor": actor,
        "detail": canonical_json(detail).decode("utf-8"),
    }


@dataclass(frozen=True)
class _Sealing:
    """What commit_result computes before touching the database (publish() does it before it
    sends the row's statement): the canonical metadata, its signature, and the fast path's
    parameters."""

    sealed: bytes
    signature: str
    key_id: str
    params: dict[str, Any]


def _seal(prepared: PreparedResult, keyring: Keyring, actor: str | None) -> _Sealing:
    sealed = canonical_json(prepared.metadata)
    signature, key_id = keyring.sign(prepared.address.issuer, sealed)
    params = _publish_params(prepared, sealed, signature, key_id, actor or prepared.address.issuer)
    return _Sealing(sealed, signature, key_id, params)


def _missing_objects(store: Vault, prepared: PreparedResult, created: list[str] | None) -> None:
    """Objects this publication did not create itself (written earlier by someone whose rollback
    may delete them) must still be there: checked under the digest locks, before the commit."""
    mine = set(created or ())
    missing = [k for k in prepared.keys if k not in mine and not store.exists(k)]
    if missing:
        raise PublicationConflict(
            f"{prepared.address}: objects {missing} vanished before the index row was written",
            message_vi="Tệp kết quả bị xóa đồng thời khi đang công bố; hãy công bố lại.",
        )


def _fast_path(engine: Engine, prepared: PreparedResult) -> bool:
    """A plain publication on PostgreSQL commits through :data:`_PUBLISH_SQL`."""
    return engine.dialect.name == "postgresql" and not prepared.metadata["supersedes"]


def _fast_outcome(prepared: PreparedResult, row: Row[Any]) -> Committed | None:
    """What :data:`_PUBLISH_SQL` did: inserted the row, found one at the address (which stands),
    or nothing because the chain has no head yet (None: the ORM path creates it)."""
    if row.id is not None:
        return Committed(str(prepared.address), created=True)
    if row.has_head:
        return Committed(str(prepared.address), created=False)
    return None


def _finish_fast(
    conn: Any,
    row: Any,
    prepared: PreparedResult,
    store: Vault,
    created: list[str] | None,
) -> Committed | None:
    """Commit :data:`_PUBLISH_SQL` run in ``conn``'s open transaction (a SQLAlchemy or psycopg
    connection), once the objects this publication did not create are seen to exist under its
    digest locks; roll back when it inserted nothing."""
    if row.id is not None:
        _missing_objects(store, prepared, created)  # the caller rolls back when it raises
        conn.commit()
    else:
        conn.rollback()
    return _fast_outcome(prepared, row)


_compiled_sql: dict[Engine, str] = {}


def _start_fast_commit(
    stack: ExitStack,
    prepared: PreparedResult,
    sealing: _Sealing,
    store: Vault,
    created: list[str],
    session_url: str | None,
) -> Callable[[], Callable[[], Committed | None]] | None:
    """Send :data:`_PUBLISH_SQL` now, in a transaction left open on a pooled connection that
    ``stack`` returns (the pool rolls back what is open), without waiting for its answer: the
    caller writes the objects while PostgreSQL runs it. The returned call waits for the answer and
    returns the one that commits it. On psycopg directly, so that BEGIN and the statement go in one
    round trip (a pipeline) and without SQLAlchemy's per-statement work. None where the fast path
    does not apply."""
    from psycopg.rows import namedtuple_row

    engine = get_engine(session_url)
    if not _fast_path(engine, prepared) or engine.dialect.driver != "psycopg":
        return None
    sql = _compiled_sql.get(engine)
    if sql is None:
        sql = _compiled_sql[engine] = str(_PUBLISH_SQL.compile(dialect=engine.dialect))
    pooled = engine.raw_connection()
    stack.callback(pooled.close)
    conn: Any = pooled.driver_connection  # a psycopg.Connection
    pipeline = ExitStack()
    stack.enter_context(pipeline)  # left by an error before the answer is read
    pipeline.enter_context(conn.pipeline())
    cur = conn.cursor(row_factory=namedtuple_row)
    cur.execute(sql, sealing.params, prepare=True)  # sent; the answer is read at the pipeline's end

    def answer() -> Callable[[], Committed | None]:
        pipeline.close()
        row = cur.fetchone()
        return lambda: _finish_fast(conn, row, prepared, store, created)

    return answer


def commit_result(
    prepared: PreparedResult,
    *,
    store: Vault,
    keyring: Keyring,
    actor: str | None = None,
    reason: str | None = None,
    created: list[str] | None = None,
    session_url: str | None = None,
    sealing: _Sealing | None = None,
) -> Committed:
    """Seal the metadata and insert the index row, its links and its chain event(s) in one database
    transaction. An existing row at the same address wins: nothing is written and it is returned.
    A correction (``supersedes`` set) marks the old version superseded and flags what was issued from it.
    ``created``: keys this publication created itself; only the others (written earlier by someone
    whose rollback may delete them) are checked for existence under the lock.

    On PostgreSQL a plain publication is one statement (:data:`_PUBLISH_SQL`), in autocommit when
    this publication created all its objects (one round trip, one WAL flush); corrections, SQLite
    and a database without a chain head yet take the ORM path."""
    sealing = sealing or _seal(prepared, keyring, actor)
    sealed, signature, key_id = sealing.sealed, sealing.signature, sealing.key_id
    engine = get_engine(session_url)
    if _fast_path(engine, prepared):
        with engine.connect() as conn:
            if all(k in set(created or ()) for k in prepared.keys):
                row = conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                    _PUBLISH_SQL, sealing.params
                ).one()
                outcome = _fast_outcome(prepared, row)
            else:
                row = conn.execute(_PUBLISH_SQL, sealing.params).one()
                outcome = _finish_fast(conn, row, prepared, store, created)
        if outcome is not None:
            return outcome
    return _commit_in_session(
        prepared,
        sealed=sealed,
        signature=signature,
        key_id=key_id,
        store=store,
        actor=actor,
        reason=reason,
        created=created,
        session_url=session_url,
    )


def _commit_in_session(
    prepared: PreparedResult,
    *,
    sealed: bytes,
    signature: str,
    key_id: str,
    store: Vault,
    actor: str | None,
    reason: str | None,
    created: list[str] | None,
    session_url: str | None,
) -> Committed:
    address = str(prepared.address)
    try:
        with session_scope(session_url) as s:
            lock_digests(s, [f["sha256"] for f in prepared.metadata["files"].values()])
            if s.scalar(select(VaultResult.id).where(VaultResult.address == address)) is not None:
                return Committed(address, created=False)  # committed while we waited for the lock
            _missing_objects(store, prepared, created)
            flagged: list[str] = []
            old: VaultResult | None = None
            if prepared.metadata["supersedes"]:
                old = s.execute(
                    select(VaultResult)
                    .where(VaultResult.address == prepared.metadata["supersedes"])
                    .with_for_update()
                ).scalar_one_or_none()
                if old is None:
                    raise ResultNotFound(
                        f"{prepared.metadata['supersedes']} is not in the vault",
                        message_vi="Không tìm thấy kết quả cần đính chính trong kho.",
                    )
                if old.status != "valid":
                    raise VaultError(
                        f"{old.address} is already {old.status}; correct {old.superseded_by}",
                        message_vi="Kết quả này đã được thay thế; hãy đính chính phiên bản mới nhất.",
                    )
            row = _row_from(prepared, sealed, signature, key_id)
            s.add(row)
            s.flush()
            for inp in prepared.inputs:
                s.add(VaultLink(result_id=row.id, input_address=inp))
            append_event(
                s,
                kind="publish",
                address=address,
                actor=actor or prepared.address.issuer,
                dossier_code=row.source_dossier_code,
                procedure_code=row.procedure_code,
                detail={
                    "sealed_sha256": row.sealed_sha256,
                    "key_id": key_id,
                    "files": {k: v["sha256"] for k, v in prepared.metadata["files"].items()},
                },
            )
            if old is not None:
                old.status, old.superseded_by = "superseded", address
                for d in downstream_of(s, old.address):
                    if d.status == "valid":
                        d.needs_reissue = True
                        d.reissue_reason = f"issued from {old.address}, superseded by {address}: {reason or ''}".strip()
                        flagged.append(d.address)
                append_event(
                    s,
                    kind="supersede",
                    address=old.address,
                    actor=actor or prepared.address.issuer,
                    dossier_code=row.source_dossier_code,
                    procedure_code=row.procedure_code,
                    detail={"superseded_by": address, "reason": reason or "", "flagged": flagged},
                )
            return Committed(address, created=True, flagged=flagged)
    except IntegrityError:
        # A concurrent publisher committed the same address first (unique constraint): theirs stands.
        with session_scope(session_url) as s:
            if s.scalar(select(VaultResult.id).where(VaultResult.address == address)) is not None:
                return Committed(address, created=False)
        raise


def discard_objects(store: Vault, keys: list[str], session_url: str | None = None) -> list[str]:
    """Delete objects written by a publication that did not commit, unless a committed row uses them
    (content-addressed keys are shared by identical files). Returns the keys deleted."""
    deleted: list[str] = []
    for key in keys:
        d = digest_of_key(key)
        if d is None:
            continue
        with session_scope(session_url) as s:
            lock_digests(s, [d])
            used = s.scalar(
                select(VaultResult.id)
                .where(or_(VaultResult.pdf_sha256 == d, VaultResult.json_sha256 == d))
                .limit(1)
            )
            if used is None:
                store.delete(key)
                deleted.append(key)
    return deleted


def publish(
    draft: ResultDraft,
    *,
    store: Vault,
    keyring: Keyring,
    actor: str | None = None,
    reason: str | None = None,
    session_url: str | None = None,
) -> Committed:
    """Prepare, write and commit in one call with compensation (outside Prefect: CLI, corrections,
    benchmarks). The flow uses the same three steps inside a keyed Prefect transaction."""
    prepared = prepare_result(draft)
    written: list[str] = []
    try:
        files = prepared.metadata["files"]
        sealing = _seal(prepared, keyring, actor)
        with ExitStack() as open_transaction:
            # The row's statement goes first, in a transaction left open, and PostgreSQL runs it
            # while the objects are written and their fsyncs run here. Only its COMMIT, the commit
            # point, waits for the objects to be durable.
            answer = _start_fast_commit(
                open_transaction, prepared, sealing, store, written, session_url
            )
            durable = store.start_put_contents(
                prepared.objects(),
                digests=[files["pdf"]["sha256"], files["data"]["sha256"]],
                created=written,
            )
            try:
                finish = answer() if answer is not None else None
            finally:
                durable()
            outcome = finish() if finish is not None else None
        if outcome is None:
            outcome = commit_result(
                prepared,
                store=store,
                keyring=keyring,
                actor=actor,
                reason=reason,
                created=written,
                session_url=session_url,
                sealing=sealing,
            )
    except BaseException:
        discard_objects(store, written, session_url)
        raise
    if not outcome.created and written:
        discard_objects(store, written, session_url)
    return outcome


def pdf_from(data: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """An agency may attach its own PDF to the data (``_pdf_base64`` or ``_pdf_path``): split it off."""
    data = dict(data)
    raw = data.pop("_pdf_base64", None)
    path = data.pop("_pdf_path", None)
    if raw:
        return data, base64.b64decode(raw)
    if path:
        from pathlib import Path

        return data, Path(path).read_bytes()
    return data, None


def publish_many(
    drafts: list[ResultDraft],
    *,
    store: Vault,
    keyring: Keyring,
    actor: str | None = None,
    session_url: str | None = None,
) -> list[Committed]:
    """Group commit: publish several results with their objects made durable together and one
    database transaction (one chain-head lock, one WAL flush), all or nothing. For results that
    come in groups outside Prefect's per-result transactions (backfills, imports, benchmarks).
    Corrections are refused here (publish them one by one); results already at their address are
    returned as not created, as :func:`publish` does."""
    prepared = [prepare_result(d) for d in drafts]
    if any(p.metadata["supersedes"] for p in prepared):
        raise VaultError("publish_many does not publish corrections; use correct_result")
    if len({str(p.address) for p in prepared}) != len(prepared):
        raise VaultError("publish_many got the same address twice")
    engine = get_engine(session_url)
    if engine.dialect.name != "postgresql":
        return [
            publish(d, store=store, keyring=keyring, actor=actor, session_url=session_url)
            for d in drafts
        ]
    written: list[str] = []
    try:
        objects = [o for p in prepared for o in p.objects()]
        digests = [
            p.metadata["files"][role]["sha256"] for p in prepared for role in ("pdf", "data")
        ]
        durable = store.start_put_contents(objects, digests=digests, created=written)
        try:
            params = [_seal(p, keyring, actor).params for p in prepared]  # while the fsyncs run
        finally:
            durable()
        outcome = _commit_many(prepared, params, store=store, created=written, engine=engine)
    except BaseException:
        discard_objects(store, written, session_url)
        raise
    if written and not all(c.created for c in outcome):
        discard_objects(store, written, session_url)  # only unused ones go
    return outcome


def _commit_many(
    prepared: list[PreparedResult],
    params: list[dict[str, Any]],
    *,
    store: Vault,
    created: list[str],
    engine: Any,
) -> list[Committed]:
    from sqlalchemy import Table, insert, update
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    from lienthong.vault.chain import _lock_head, chain_hash
    from lienthong.vault.index import VaultChainHead, VaultEvent

    results = cast(Table, VaultResult.__table__)
    events_table = cast(Table, VaultEvent.__table__)
    head_table = cast(Table, VaultChainHead.__table__)
    with Session(engine) as s, s.begin():
        lock_digests(s, [d for par in params for d in par["digests"]])
        rows = [
            {
                **{k: par[k] for k in _ROW_KEYS},
                "sealed": json_loads(par["sealed"]),
                "supersedes": None,
                "status": "valid",
                "needs_reissue": False,
            }
            for par in params
        ]
        # One statement per group (insertmanyvalues), compiled once and cached.
        inserted: dict[str, int] = dict(
            s.execute(
                pg_insert(results).on_conflict_do_nothing().returning(results.c.address, results.c.id),
                rows,
            )
            .tuples()
            .all()
        )
        links = [
            {"result_id": inserted[par["address"]], "input_address": i}
            for par in params
            if par["address"] in inserted
            for i in par["inputs"]
        ]
        if links:
            s.execute(insert(cast(Table, VaultLink.__table__)), links)
        if inserted:
            _missing_objects_many(store, [p for p in prepared if str(p.address) in inserted], created)
            head = _lock_head(s)
            last, events = head.last_hash, list[dict[str, Any]]()
            for par in params:
                if par["address"] not in inserted:
                    continue
                new = chain_hash(last, json_loads(par["body"]))
                events.append(
                    {
                        "at": par["at"],
                        "kind": "publish",
                        "address": par["address"],
                        "actor": par["actor"],
                        "dossier_code": par["source_dossier_code"],
                        "procedure_code": par["procedure_code"],
                        "legal_basis": None,
                        "detail": json_loads(par["detail"]),
                        "prev_hash": last,
                        "hash": new,
                    }
                )
                last = new
            s.execute(insert(events_table), events)
            s.execute(
                update(head_table)
                .where(head_table.c.id == 1)
                .values(last_hash=last, length=head.length + len(events))
            )
    return [Committed(par["address"], created=par["address"] in inserted) for par in params]


def _missing_objects_many(store: Vault, prepared: list[PreparedResult], created: list[str]) -> None:
    for p in prepared:
        _missing_objects(store, p, created)


_ROW_KEYS = (
    "address", "lineage", "issuer", "result_code", "local_id", "version", "owner_citizen_id",
    "name", "number", "issued_on", "issuing_body", "signer", "valid_until", "permanent", "scope",
    "summary", "procedure_code", "source_dossier_code", "source_step", "pdf_key", "pdf_sha256",
    "json_key", "json_sha256", "sealed_sha256", "signature", "key_id", "published_at",
)
