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
    document: str
    article: str = ""
    effective_date: date


class ResultSpec(_Model):
    code: str
    name: str
    data: str

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
    id: str
    code: str
    name: str
    name_en: str = ""
    version: str
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
    """Every procedure of ``config/procedures``, by id and by national code."""

    def __init__(self, procedures: Iterable[Procedure], agencies: Mapping[str, Any]) -> None:
        self.procedures = {p.id: p for p in procedures}
        self.agencies = dict(agencies)
        self._by_code = {p.code: p for p in self.procedures.values()}

    def get(self, key: str) -> Procedure:
        proc = self.procedures.get(key) or self._by_code.get(key)
        if proc is None:
            raise UnknownProcedure(
                f"no procedure {key!r} in the catalog (known: "
                f"{', '.join(f'{p.id} ({p.code})' for p in self.procedures.values())})",
                message_vi=f"Thủ tục {key!r} không có trong danh mục thủ tục liên thông.",
            )
        return proc

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.procedures.values())

    def __len__(self) -> int:
        return len(self.procedures)


def load_catalog(config_dir: Path) -> Catalog:
    agencies = load_agencies(config_dir)
    files = sorted((config_dir / "procedures").glob("*.yaml"))
    procs = [load_procedure(f, agencies) for f in files]
    seen: dict[str, str] = {}
    for p in procs:
        for key in (p.id, p.code):
            if key in seen:
                raise CatalogError(f"{p.source}: {key!r} is already used by {seen[key]}")
            seen[key] = p.source
    return Catalog(procs, agencies)


@lru_cache
def _cached(config_dir: str) -> Catalog:
    return load_catalog(Path(config_dir))


def get_catalog() -> Catalog:
    from lienthong.settings import get_settings

    return _cached(str(get_settings().config_dir))
