"""The procedure catalog: ``config/procedures/*.yaml`` loaded into typed definitions and checked.

A procedure is data: its steps (agency, action, time limit, inputs, outputs, results), the edges
that hand data from step to step, the group's total limit, its components and fees, and the legal
basis with its effective date. Loading refuses a cycle, an unknown agency, a step that consumes data
no earlier step produces, and step limits that add up past the group limit, naming file and step.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lienthong.calendar import TimeLimit
from lienthong.codes import parse_procedure_code, parse_result_code
from lienthong.errors import CatalogError, InvalidCode, UnknownProcedure


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LegalBasis(_Model):
    """A text a rule rests on, and the days it is in force (``effective_to`` once superseded)."""

    document: str
    article: str = ""
    effective_from: date
    effective_to: date | None = None
    confirmed: bool = True
    reason: str = ""

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


class ResultSpec(_Model):
    code: str
    name: str
    data: str
    confirmed: bool = True
    reason: str = ""

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        parse_result_code(v)
        return v


class GroupLimit(_Model):
    working_days: int = Field(ge=0)
    with_verification: int | None = Field(default=None, ge=0)
    confirmed: bool = True


class OptionSpec(_Model):
    label: str
    values: list[int | str]
    default: int | str


class StepSpec(_Model):
    id: str
    agency: str
    action: str
    action_en: str = ""
    kind: Literal["agency", "payment"] = "agency"
    procedure_code: str | None = None
    time_limit: TimeLimit
    counts_toward_limit: bool = True
    approval: str | None = None
    inputs: list[str] = []
    outputs: list[str] = []
    results: list[ResultSpec] = []
    when: dict[str, list[int | str]] = {}
    # Whether the step's own time limit is confirmed by a text; if not, why (docs/law.md lists it).
    limit_confirmed: bool = True
    limit_reason: str = ""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @field_validator("time_limit", mode="before")
    @classmethod
    def _limit(cls, v: Any) -> TimeLimit:
        return TimeLimit.parse(v)

    @field_validator("procedure_code")
    @classmethod
    def _proc(cls, v: str | None) -> str | None:
        if v is not None:
            parse_procedure_code(v)
        return v

    @property
    def task_name(self) -> str:
        return f"{self.agency}: {self.action}"


class EdgeSpec(_Model):
    from_: str = Field(alias="from")
    to: str
    data: list[str]


class ComponentSpec(_Model):
    code: str
    name: str
    required: bool = True
    digitize: bool = False
    reusable_result: str | None = None


class FeeSpec(_Model):
    name: str
    amount_vnd: int | None
    legal_basis: str | None = None
    note: str | None = None
    confirmed: bool = True


class Procedure(_Model):
    """One version of a procedure: ``id`` names the procedure across its versions, ``version`` this
    one, in force from ``effective_from`` to ``effective_to`` (inclusive; open while current).
    ``replaces`` lists national codes of earlier versions or merged procedures that resolve to it."""

    id: str
    code: str
    name: str
    name_en: str = ""
    version: str
    effective_from: date
    effective_to: date | None = None
    replaces: list[str] = []
    code_confirmed: bool = True
    code_reason: str = ""
    legal_basis: list[LegalBasis]
    declaration: str
    time_limit: GroupLimit
    intake: list[str]
    options: dict[str, OptionSpec] = {}
    steps: list[StepSpec]
    edges: list[EdgeSpec] = []
    components: list[ComponentSpec] = []
    fees: list[FeeSpec] = []
    source: str = ""

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        parse_procedure_code(v)
        return v

    @field_validator("replaces")
    @classmethod
    def _replaces(cls, v: list[str]) -> list[str]:
        for code in v:
            parse_procedure_code(code)
        return v

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)

    # --- queries -----------------------------------------------------------------------------

    def step(self, step_id: str) -> StepSpec:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(f"{self.id}: no step {step_id!r}")

    def default_options(self) -> dict[str, int | str]:
        return {k: o.default for k, o in self.options.items()}

    def resolve_options(self, given: Mapping[str, Any] | None) -> dict[str, int | str]:
        """The citizen's choices, defaults filled in; an unknown key or value is refused."""
        chosen = self.default_options()
        for k, v in (given or {}).items():
            if k not in self.options:
                raise CatalogError(
                    f"{self.id}: unknown option {k!r} (known: {', '.join(self.options) or 'none'})",
                    message_vi=f"Lựa chọn {k!r} không áp dụng cho thủ tục này.",
                )
            if v not in self.options[k].values:
                raise CatalogError(
                    f"{self.id}: option {k}={v!r} not in {self.options[k].values}",
                    message_vi=f"Giá trị {v!r} không hợp lệ cho lựa chọn \"{self.options[k].label}\".",
                )
            chosen[k] = v
        return chosen

    def limit(self, verification: bool = False) -> TimeLimit:
        tl = self.time_limit
        days = tl.with_verification if verification and tl.with_verification is not None else tl.working_days
        return TimeLimit(days)

    def plan(self, options: Mapping[str, Any] | None = None) -> Plan:
        """The steps that run for these options, in a dependency order, with their upstream steps."""
        chosen = self.resolve_options(options)
        selected = [
            s for s in self.steps if all(chosen.get(k) in vals for k, vals in s.when.items())
        ]
        ids = {s.id for s in selected}
        upstream = {s.id: [e.from_ for e in self.edges if e.to == s.id and e.from_ in ids] for s in selected}
        order = _topological([s.id for s in selected], upstream, self.source or self.id)
        by_id = {s.id: s for s in selected}
        return Plan(self, [by_id[i] for i in order], upstream, chosen)


@dataclass(frozen=True)
class Plan:
    procedure: Procedure
    steps: list[StepSpec]
    upstream: dict[str, list[str]]
    options: dict[str, int | str]

    def downstream(self, step_id: str) -> list[str]:
        return [s for s, ups in self.upstream.items() if step_id in ups]

    def critical_path_days(self) -> int:
        """Working days along the longest chain of step limits (steps that stop the clock excluded)."""
        longest: dict[str, int] = {}
        for s in self.steps:
            own = s.time_limit.working_days if s.counts_toward_limit else 0
            longest[s.id] = own + max((longest[u] for u in self.upstream[s.id]), default=0)
        return max(longest.values(), default=0)


def _topological(ids: list[str], upstream: Mapping[str, list[str]], where: str) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = " -> ".join([*path[path.index(node):], node])
            raise CatalogError(f"{where}: step {node!r} is in a cycle: {cycle}")
        state[node] = 1
        for up in upstream[node]:
            visit(up, [*path, node])
        state[node] = 2
        order.append(node)

    for i in ids:
        visit(i, [])
    return order


# --- loading and checking ---------------------------------------------------------------------


def load_agencies(config_dir: Path) -> dict[str, dict[str, Any]]:
    with (config_dir / "agencies.yaml").open(encoding="utf-8") as fh:
        agencies: dict[str, dict[str, Any]] = yaml.safe_load(fh)["agencies"]
    return agencies


def load_procedure(path: Path, agencies: Iterable[str]) -> Procedure:
    """Load one procedure file and check it; every error names the file and the step."""
    where = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: a procedure file must be a mapping")
    try:
        proc = Procedure.model_validate({**raw, "source": where})
    except ValidationError as exc:
        raise CatalogError(f"{where}: {_describe(exc, raw)}") from exc
    except (InvalidCode, CatalogError) as exc:
        raise CatalogError(f"{where}: {exc.message}") from exc
    check_procedure(proc, set(agencies))
    return proc


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    parts = []
    for err in exc.errors():
        loc = err["loc"]
        label = ".".join(str(x) for x in loc)
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            with contextlib.suppress(IndexError, AttributeError, KeyError):
                label = f"step {raw['steps'][loc[1]].get('id', loc[1])!r}: " + ".".join(str(x) for x in loc[2:])
        parts.append(f"{label}: {err['msg']}")
    return "; ".join(parts)


def check_procedure(proc: Procedure, agencies: set[str]) -> None:
    where = proc.source or proc.id
    if proc.effective_to is not None and proc.effective_to < proc.effective_from:
        raise CatalogError(f"{where}: effective_to {proc.effective_to} is before effective_from {proc.effective_from}")
    if not proc.code_confirmed and not proc.code_reason:
        raise CatalogError(f"{where}: code {proc.code} is unconfirmed without a reason (add code_reason)")
    for b in proc.legal_basis:
        if b.effective_to is not None and b.effective_to < b.effective_from:
            raise CatalogError(f"{where}: {b.document} ends ({b.effective_to}) before it starts")
        if not b.confirmed and not b.reason:
            raise CatalogError(f"{where}: {b.document} is unconfirmed without a reason")
    for s in proc.steps:
        if not s.limit_confirmed and not s.limit_reason:
            raise CatalogError(f"{where}: step {s.id!r} has an unconfirmed limit without limit_reason")
        for r in s.results:
            if not r.confirmed and not r.reason:
                raise CatalogError(f"{where}: step {s.id!r} result {r.code} is unconfirmed without a reason")
    ids = [s.id for s in proc.steps]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise CatalogError(f"{where}: step id {sorted(dupes)[0]!r} is defined twice")
    by_id = {s.id: s for s in proc.steps}
    for s in proc.steps:
        if s.agency not in agencies:
            raise CatalogError(
                f"{where}: step {s.id!r} names unknown agency {s.agency!r} "
                f"(known: {', '.join(sorted(agencies))})"
            )
        for k, vals in s.when.items():
            if k not in proc.options or any(v not in proc.options[k].values for v in vals):
                raise CatalogError(f"{where}: step {s.id!r} has a condition on unknown option {k}={vals}")
        for r in s.results:
            if r.data not in s.outputs:
                raise CatalogError(f"{where}: step {s.id!r} result {r.code} is data {r.data!r} it does not output")
    for e in proc.edges:
        for end in (e.from_, e.to):
            if end not in by_id:
                raise CatalogError(f"{where}: edge {e.from_} -> {e.to} names unknown step {end!r}")
        missing = [d for d in e.data if d not in by_id[e.from_].outputs]
        if missing:
            raise CatalogError(
                f"{where}: edge {e.from_} -> {e.to} hands over {missing[0]!r}, "
                f"which step {e.from_!r} does not produce"
            )
    # The whole graph first (a cycle is a cycle whatever the options), then every option combination.
    upstream_all = {s.id: [e.from_ for e in proc.edges if e.to == s.id] for s in proc.steps}
    _topological(ids, upstream_all, where)
    combos = [dict(zip(proc.options, vals, strict=True))
              for vals in itertools.product(*(o.values for o in proc.options.values()))] or [{}]
    for combo in combos:
        plan = proc.plan(combo)
        _check_data_flow(proc, plan, where, combo)
        for verification in (False, True):
            group = proc.limit(verification).working_days
            path = plan.critical_path_days()
            if path > group:
                suffix = f" with options {combo}" if combo else ""
                raise CatalogError(
                    f"{where}: step limits add up to {path} working days along the longest chain"
                    f"{suffix}, more than the group limit of {group} "
                    f"(last step {_last_on_longest(plan)!r})"
                )


def _check_data_flow(proc: Procedure, plan: Plan, where: str, combo: dict[str, Any]) -> None:
    received: dict[str, set[str]] = {}
    for s in plan.steps:
        available = set(proc.intake)
        for up in plan.upstream[s.id]:
            for e in proc.edges:
                if e.from_ == up and e.to == s.id:
                    available |= set(e.data)
        received[s.id] = available
        for needed in s.inputs:
            if needed not in available:
                suffix = f" (options {combo})" if combo else ""
                raise CatalogError(
                    f"{where}: step {s.id!r} consumes {needed!r}, which neither the dossier "
                    f"(intake) nor an earlier step hands to it{suffix}"
                )


def _last_on_longest(plan: Plan) -> str:
    longest: dict[str, int] = {}
    for s in plan.steps:
        own = s.time_limit.working_days if s.counts_toward_limit else 0
        longest[s.id] = own + max((longest[u] for u in plan.upstream[s.id]), default=0)
    return max(longest, key=lambda k: longest[k])


class Catalog:
    """Every procedure of ``config/procedures``, each with its versions, by id and by national code.

    ``get(id)`` is the version in force today; ``get(key, on=day)`` the version in force on a day
    (a dossier follows the version of its reception date); ``get(code)`` without a day is the
    version that carries that code, so old codes keep resolving to their versions (history,
    portals that still send them)."""

    def __init__(self, procedures: Iterable[Procedure], agencies: Mapping[str, Any]) -> None:
        self.versions: dict[str, list[Procedure]] = {}
        for p in procedures:
            self.versions.setdefault(p.id, []).append(p)
        for vs in self.versions.values():
            vs.sort(key=lambda p: p.effective_from)
        self.agencies = dict(agencies)
        self._by_code: dict[str, list[Procedure]] = {}
        for vs in self.versions.values():
            for p in vs:
                for code in (p.code, *p.replaces):
                    self._by_code.setdefault(code, []).append(p)

    @property
    def procedures(self) -> dict[str, Procedure]:
        """The version in force today of every procedure, by id."""
        today = _today()
        return {pid: _on(vs, today) for pid, vs in self.versions.items()}

    def get(self, key: str, *, on: date | None = None, version: str | None = None) -> Procedure:
        lineage = self.versions.get(key)
        carriers = self._by_code.get(key, [])
        if lineage is None and carriers:
            lineage = self.versions[carriers[-1].id]
        if lineage is None:
            raise UnknownProcedure(
                f"no procedure {key!r} in the catalog (known: "
                f"{', '.join(f'{p.id} ({p.code})' for p in self.procedures.values())})",
                message_vi=f"Thủ tục {key!r} không có trong danh mục thủ tục.",
            )
        if version is not None:
            for p in lineage:
                if p.version == version:
                    return p
            raise UnknownProcedure(
                f"{lineage[0].id} has no version {version!r} (versions: {', '.join(p.version for p in lineage)})",
                message_vi=f"Thủ tục {lineage[0].id} không có phiên bản {version!r}.",
            )
        if on is not None:
            return _on(lineage, on)
        own = [p for p in carriers if p.code == key] or carriers
        if own:
            return own[-1]
        return _on(lineage, _today())

    def for_dossier(self, row: Any) -> Procedure:
        """The version a dossier (row or aggregate with ``procedure_id``, ``procedure_version`` and
        ``received_at``) was received under; a version label the catalog no longer has (a file
        renamed since) falls back to the version in force on the reception day."""
        lineage = self.versions.get(row.procedure_id)
        if lineage is None:
            return self.get(row.procedure_id)  # raises UnknownProcedure
        for p in lineage:
            if p.version == row.procedure_version:
                return p
        received = getattr(row, "received_at", None)
        if received is None:
            return _on(lineage, _today())
        from lienthong.clock import localize

        return _on(lineage, localize(received).date())

    def codes(self) -> list[str]:
        """Every national code that resolves, current and old."""
        return sorted(self._by_code)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.procedures.values())

    def all_versions(self) -> list[Procedure]:
        return [p for vs in self.versions.values() for p in vs]

    def __len__(self) -> int:
        return len(self.versions)


def _today() -> date:
    from lienthong.clock import get_clock

    return get_clock().now().date()


def _on(versions: list[Procedure], day: date) -> Procedure:
    """The version in force on ``day``: before the first version, the first (history predating
    the catalog); after a gap-free chain, the last."""
    for p in versions:
        if p.in_force(day):
            return p
    return versions[0] if day < versions[0].effective_from else versions[-1]


def load_catalog(config_dir: Path) -> Catalog:
    agencies = load_agencies(config_dir)
    files = sorted((config_dir / "procedures").glob("*.yaml"))
    procs = [load_procedure(f, agencies) for f in files]
    seen: dict[tuple[str, str], str] = {}
    codes: dict[str, str] = {}
    for p in procs:
        if (p.id, p.version) in seen:
            raise CatalogError(f"{p.source}: {p.id} version {p.version!r} is already in {seen[(p.id, p.version)]}")
        seen[(p.id, p.version)] = p.source
        for code in (p.code, *p.replaces):
            if codes.setdefault(code, p.id) != p.id:
                raise CatalogError(f"{p.source}: code {code} already names procedure {codes[code]}")
    catalog = Catalog(procs, agencies)
    for vs in catalog.versions.values():
        _check_versions(vs)
    return catalog


def _check_versions(versions: list[Procedure]) -> None:
    """Versions of one procedure follow each other without overlap or gap: every superseded one
    ends the day before the next begins."""
    for old, new in itertools.pairwise(versions):
        if old.effective_to is None:
            raise CatalogError(f"{old.source}: superseded by {new.source} from {new.effective_from} "
                               f"but has no effective_to")
        if (new.effective_from - old.effective_to).days != 1:
            raise CatalogError(f"{old.source}: ends {old.effective_to} but {new.source} starts "
                               f"{new.effective_from} (versions must follow each other day to day)")


@lru_cache
def _cached(config_dir: str) -> Catalog:
    return load_catalog(Path(config_dir))


def get_catalog() -> Catalog:
    from lienthong.settings import get_settings

    return _cached(str(get_settings().config_dir))
