"""Reception (tiếp nhận): a submission becomes a dossier with its code, appointment and history.

Used by the CLI and demo, the webhook gateway and operators alike. A redelivered submission with
the same idempotency key returns the dossier already received, never a second one.

``receive_many`` receives several submissions in one transaction with a fixed number of
statements (not a number per dossier): the webhook gateway's group commit calls it with up to a
batch of dossiers, so the daily numbering lock is taken once per day and batch, not per dossier.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Table, TypeDecorator, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lienthong.calendar import WorkingCalendar, get_calendar
from lienthong.catalog import Catalog, get_catalog
from lienthong.clock import localize
from lienthong.codes import format_dossier_code
from lienthong.db import session_scope
from lienthong.db.models import ComponentRow, DossierRow, DossierSequence, StatusHistory, table_of
from lienthong.dossier import Dossier, Status, StatusChange
from lienthong.payloads import Submission
from lienthong.settings import get_settings


@dataclass(frozen=True)
class Receipt:
    """What the receiving desk tells the applicant (the content of Form 01)."""

    dossier_code: str
    dossier_uid: str
    procedure_id: str
    procedure_code: str
    received_at: datetime
    due_at: datetime
    created: bool


def receive(
    submission: Submission,
    *,
    idempotency_key: str | None = None,
    unit_id: str | None = None,
    session: Session | None = None,
    catalog: Catalog | None = None,
    calendar: WorkingCalendar | None = None,
    actor: str = "MOT_CUA",
) -> Receipt:
    return receive_many(
        [(submission, idempotency_key)], unit_id=unit_id, session=session, catalog=catalog, calendar=calendar,
        actor=actor,
    )[0]


def receive_many(
    items: Sequence[tuple[Submission, str | None]],
    *,
    unit_id: str | None = None,
    session: Session | None = None,
    catalog: Catalog | None = None,
    calendar: WorkingCalendar | None = None,
    actor: str = "MOT_CUA",
    payloads: Sequence[dict[str, Any]] | None = None,
) -> list[Receipt]:
    """Receive every submission (with its idempotency key or None), in order, in one transaction.

    A key already on a dossier, or repeated within ``items``, gives back that dossier
    (``created=False``). ``payloads``, when given, are the submissions already dumped to JSON
    (``model_dump(mode="json")``), so a caller that stores them elsewhere too dumps them once."""
    if session is None:
        with session_scope() as s:
            return receive_many(items, unit_id=unit_id, session=s, catalog=catalog, calendar=calendar,
                                actor=actor, payloads=payloads)
    existing = existing_receipts(session, [key for _, key in items if key])
    planned = plan_receptions(items, existing, unit_id=unit_id, catalog=catalog, calendar=calendar, actor=actor,
                              payloads=payloads)
    number(session, planned)
    write_new(session.connection(), planned)
    return receipts_of(items, planned, existing)


COMPONENT_KEYS = ("code", "name", "file_ref", "vault_address", "paper", "meta")


@dataclass
class Planned:
    """A new dossier worked out before its number is allocated (``number`` fills the code in)."""

    index: int  # its place in the items received together
    row: dict[str, Any]  # the dossiers row
    changes: tuple[StatusChange, StatusChange]  # submitted, then accepted (status 1 -> 2)
    components: list[dict[str, Any]]  # component rows, without the dossier's id
    day: date
    receipt: Receipt | None = None


def existing_receipts(session: Session, keys: Sequence[str]) -> dict[str, Receipt]:
    """The dossiers already received under these idempotency keys, by key."""
    if not keys:
        return {}
    dossiers = table_of(DossierRow)
    rows = session.connection().execute(
        select(dossiers.c.code, dossiers.c.uid, dossiers.c.procedure_id, dossiers.c.procedure_code,
               dossiers.c.received_at, dossiers.c.due_at, dossiers.c.idempotency_key)
        .where(dossiers.c.idempotency_key.in_(list(keys)))
    )
    return {r.idempotency_key: Receipt(r.code, r.uid, r.procedure_id, r.procedure_code, r.received_at, r.due_at,
                                       False) for r in rows}


def plan_receptions(
    items: Sequence[tuple[Submission, str | None]],
    existing: Mapping[str, Receipt],
    *,
    unit_id: str | None = None,
    catalog: Catalog | None = None,
    calendar: WorkingCalendar | None = None,
    actor: str = "MOT_CUA",
    payloads: Sequence[dict[str, Any]] | None = None,
) -> list[Planned]:
    """The new dossiers among ``items``: the first of each key not yet on record (or without a
    key), with their rows, appointment and history worked out. Pure: nothing is written, and an
    unknown procedure or option is refused before anything is."""
    catalog = catalog or get_catalog()
    calendar = calendar or get_calendar()
    unit_id = unit_id or get_settings().unit_id
    planned: list[Planned] = []
    seen: set[str] = set()
    for i, (submission, key) in enumerate(items):
        proc = catalog.get(submission.procedure_code, on=localize(submission.received_at).date())
        options = proc.resolve_options(submission.options)
        if key and (key in existing or key in seen):
            continue
        if key:
            seen.add(key)
        received_at = localize(submission.received_at)
        dossier = Dossier(code="", procedure_id=proc.id, procedure_version=proc.version,
                          time_limit=proc.limit(submission.verification), received_at=received_at)
        submitted = StatusChange(None, Status.SUBMITTED, received_at, "submit", submission.channel)
        dossier.history.append(submitted)
        accepted = dossier.apply("receive", received_at, calendar, actor=actor)
        owner = submission.owner()
        # A new dossier has no supplements or re-appointment yet: its row is written whole, without
        # the reads save_aggregate() needs for an existing one (reception is the gateway's hot path).
        row = {
            "code": "", "uid": uuid.uuid4().hex, "unit_id": unit_id, "procedure_id": proc.id,
            "procedure_code": proc.code, "procedure_version": proc.version,
            "time_limit_days": dossier.time_limit.working_days, "channel": submission.channel,
            "status": int(dossier.status), "received_at": received_at,
            "clock_started_at": dossier.clock_started_at, "due_at": dossier.due_at, "late": False,
            "owner_citizen_id": owner.citizen_id or submission.applicant.citizen_id, "options": options,
            "payload": payloads[i] if payloads is not None else submission.model_dump(mode="json"),
            "deliveries": {}, "idempotency_key": key, "created_at": received_at, "updated_at": received_at,
        }
        components: list[dict[str, Any]] = [
            dict(zip(COMPONENT_KEYS, (c.code, c.name, c.file, c.vault_address, c.paper, {}), strict=True))
            for c in submission.components
        ]
        planned.append(Planned(i, row, (submitted, accepted), components, received_at.date()))
    return planned


def number(session: Session, planned: Sequence[Planned]) -> None:
    """Allocate the planned dossiers' numbers (one upsert per reception day) and fill in their
    codes and receipts. From here until commit the day's numbering row stays locked."""
    if not planned:
        return
    unit_id = planned[0].row["unit_id"]
    per_day: dict[date, int] = {}
    for p in planned:
        per_day[p.day] = per_day.get(p.day, 0) + 1
    next_seq = _allocate(session, unit_id, per_day)
    for p in planned:
        seq, next_seq[p.day] = next_seq[p.day], next_seq[p.day] + 1
        row = p.row
        row["code"] = format_dossier_code(unit_id, p.day, seq)
        p.receipt = Receipt(row["code"], row["uid"], row["procedure_id"], row["procedure_code"],
                            row["received_at"], row["due_at"], True)


def receipts_of(
    items: Sequence[tuple[Submission, str | None]], planned: Sequence[Planned], existing: Mapping[str, Receipt]
) -> list[Receipt]:
    """One receipt per item: its new dossier, or the dossier its key already names."""
    by_index = {p.index: p.receipt for p in planned}
    by_key = {p.row["idempotency_key"]: p.receipt for p in planned if p.row["idempotency_key"]}
    out: list[Receipt] = []
    for i, (_, key) in enumerate(items):
        new = by_index.get(i)
        if new is not None:
            out.append(new)
            continue
        assert key is not None
        first = existing.get(key) or by_key[key]
        assert first is not None
        out.append(Receipt(first.dossier_code, first.dossier_uid, first.procedure_id, first.procedure_code,
                           first.received_at, first.due_at, False))
    return out


def write_new(conn: Connection, planned: Sequence[Planned], also: tuple[str, dict[str, Any]] | None = None) -> None:
    """Write the numbered dossiers with their history and components. On PostgreSQL this is one
    statement (data-modifying CTEs over binary arrays), to which ``also`` (a ``name AS (...)``
    CTE and its parameters) adds a caller's own write, so the whole write is one round trip."""
    if not planned:
        return
    rows = [p.row for p in planned]
    history = [
        {"_code": p.row["code"], "_ord": 2 * k + j,
         "from_status": int(c.from_status) if c.from_status is not None else None, "to_status": int(c.to_status),
         "event": c.event, "at": c.at, "actor": c.actor, "reason": c.reason}
        for k, p in enumerate(planned) for j, c in enumerate(p.changes)
    ]
    components: list[dict[str, Any]] = [
        {"_code": p.row["code"], "_ord": k, **c}
        for k, (p, c) in enumerate((p, c) for p in planned for c in p.components)
    ]
    if conn.dialect.name != "postgresql":
        ids = {r.code: r.id for r in insert_rows(conn, table_of(DossierRow), rows, returning=("id", "code"))}
        for table, children in ((table_of(StatusHistory), history), (table_of(ComponentRow), components)):
            insert_rows(conn, table, [
                {"dossier_id": ids[c["_code"]], **{k: v for k, v in c.items() if not k.startswith("_")}}
                for c in children
            ])
        if also is not None:
            raise ValueError("a combined write needs PostgreSQL")
        return
    keyed = {"_code": "VARCHAR(40)", "_ord": "INTEGER"}
    d_cols, d_unnest, params = unnest(table_of(DossierRow), rows, "d", conn.dialect)
    h_cols, h_unnest, h_params = unnest(table_of(StatusHistory), history, "h", conn.dialect, keyed)
    c_cols, c_unnest, c_params = unnest(table_of(ComponentRow), components, "c", conn.dialect, keyed,
                                        columns=("_code", "_ord", *COMPONENT_KEYS))
    params.update(h_params)
    params.update(c_params)
    ctes = [
        f"d AS (INSERT INTO dossiers ({', '.join(d_cols)}) SELECT * FROM {d_unnest} RETURNING id, code)",
        _child_cte("h", "status_history", h_cols, h_unnest),
        _child_cte("c", "components", c_cols, c_unnest),
    ]
    if also is not None:
        ctes.append(also[0])
        params.update(also[1])
    conn.exec_driver_sql("WITH " + ", ".join(ctes) + " SELECT count(*) FROM d", params)


def _child_cte(name: str, table: str, cols: list[str], unnested: str) -> str:
    own = [c for c in cols if not c.startswith("_")]
    return (f"{name} AS (INSERT INTO {table} (dossier_id, {', '.join(own)}) "
            f"SELECT d.id, {', '.join('u.' + c for c in own)} FROM {unnested} AS u({', '.join(cols)}) "
            f"JOIN d ON d.code = u._code ORDER BY u._ord)")


def _allocate(session: Session, unit_id: str, per_day: dict[date, int]) -> dict[date, int]:
    """The first of ``n`` consecutive sequence numbers for each day: one upsert per day, in day
    order (two transactions then lock the numbering rows in the same order), each holding the
    day's row lock until commit, so parallel writers never see the same number."""
    table = table_of(DossierSequence)
    conn = session.connection()
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    first: dict[date, int] = {}
    # One statement text for any count (the count is a parameter): compiled once, then cached.
    stmt = ins.on_conflict_do_update(
        index_elements=["unit_id", "day"], set_={"last_value": table.c.last_value + ins.excluded.last_value}
    ).returning(table.c.last_value)
    for day in sorted(per_day):
        n = per_day[day]
        first[day] = int(conn.execute(stmt, {"unit_id": unit_id, "day": day, "last_value": n}).scalar_one()) - n + 1
    return first


# --- many rows in one statement -------------------------------------------------------------


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: Sequence[str] = (),
    skip_conflicts: bool = False,
) -> list[Any]:
    """INSERT ``rows`` (dicts with the same keys) in one statement; the ``returning`` columns of
    the rows written (``skip_conflicts``: ON CONFLICT DO NOTHING, a row already there is skipped).

    On PostgreSQL the rows travel as one array per column (``INSERT ... SELECT * FROM
    unnest(...)``, binary parameters): the statement text is the same for 1 row or 100, so it is parsed, converted
    and prepared once per connection instead of once per batch shape (a multi-VALUES statement of
    hundreds of parameters cost the gateway a fifth of its CPU in psycopg's query conversion), and
    the arrays go in binary (text arrays are escaped element by element in Python: 25x slower
    for the JSON payloads)."""
    if not rows:
        return []
    if conn.dialect.name != "postgresql":
        stmt = sqlite.insert(table)  # SQLite, the embedded default: one statement per batch shape
        if skip_conflicts:
            stmt = stmt.on_conflict_do_nothing()
        if returning:
            return list(conn.execute(stmt.returning(*(table.c[c] for c in returning)), list(rows)))
        conn.execute(stmt, list(rows))
        return []
    cols, unnested, params = unnest(table, rows, "p", conn.dialect)
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT * FROM {unnested}"
    if skip_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(returning)
    result = conn.exec_driver_sql(sql, params)
    return list(result) if returning else []


def unnest(
    table: Table,
    rows: Sequence[dict[str, Any]],
    prefix: str,
    dialect: Any,
    extra: Mapping[str, str] | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> tuple[list[str], str, dict[str, Any]]:
    """Rows of ``table`` (dicts with the same keys) as one binary array per column, for
    PostgreSQL: the column names (those given, then the scalar defaults of the others, which a
    Core insert would apply), ``unnest(%(prefix0)b::TYPE[], ...)`` and its parameters. Keys that
    are not columns of the table are typed by ``extra``; ``columns`` names the keys when there
    may be no rows."""
    given = tuple(columns) if columns is not None else tuple(rows[0])
    cols, arrays, defaults, encoders = _unnest_plan(table, given, tuple(sorted((extra or {}).items())), dialect)
    params: dict[str, Any] = {}
    for i, name in enumerate(given):
        enc = encoders[i]
        params[f"{prefix}{i}"] = [r[name] for r in rows] if enc is None else [enc(r[name]) for r in rows]
    for j, value in enumerate(defaults):
        params[f"{prefix}d{j}"] = [value] * len(rows)
    text = "unnest(" + ", ".join(a.format(p=prefix) for a in arrays) + ")"
    return cols, text, params


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson refuses (an integer over 64 bits, say) json still writes
        return json.dumps(value, ensure_ascii=False)


@lru_cache(maxsize=64)
def _unnest_plan(
    table: Table, given: tuple[str, ...], extra: tuple[tuple[str, str], ...], dialect: Any
) -> tuple[list[str], list[str], list[Any], list[Callable[[Any], Any] | None]]:
    """Column names, array placeholders (``{p}`` stands for the prefix), the scalar defaults of
    the columns not given, and a value encoder per given column."""
    types = dict(extra)
    names: list[str] = []
    arrays: list[str] = []
    encoders: list[Callable[[Any], Any] | None] = []
    for i, name in enumerate(given):
        names.append(name)
        if name in types:
            arrays.append(f"%({{p}}{i})b::{types[name]}[]")
            encoders.append(None)
            continue
        col = table.c[name]
        if isinstance(col.type, JSON):
            arrays.append(f"%({{p}}{i})b::text[]::json[]")
            encoders.append(_json_text)
        else:
            arrays.append(f"%({{p}}{i})b::{col.type.compile(dialect=dialect)}[]")
            encoders.append(col.type.bind_processor(dialect) if isinstance(col.type, TypeDecorator) else None)
    defaults: list[Any] = []
    for col in table.columns:
        if col.name in given or col.default is None:
            continue
        if not col.default.is_scalar:
            raise ValueError(f"{table.name}.{col.name} has a computed default: give it in every row")
        names.append(col.name)
        arrays.append(f"%({{p}}d{len(defaults)})b::{col.type.compile(dialect=dialect)}[]")
        defaults.append(getattr(col.default, "arg", None))
    return names, arrays, defaults, encoders
