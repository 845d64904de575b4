"""Validate dossiers against the suites and turn failures into one request for supplement.

``validate_submissions`` flattens a batch of submissions, runs each asset's suite once over all
the rows that feed it, and returns one :class:`Outcome` per dossier: ``ok`` when no error rule
fails, the Vietnamese Form 02 lines (one per failing rule, in suite order), and the flags (e.g. a
late registration, a different case rather than an error). It is the two halves
:func:`flatten_batch` (the rows, the same for either engine) and :func:`validate_flattened`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from lienthong.payloads import Submission
from lienthong.quality.engines import Engine, GxEngine, PlainEngine
from lienthong.quality.records import declaration_of, flatten
from lienthong.quality.suites import QualityConfig, Rule, get_quality_config

EngineName = Literal["gx", "plain"]


@dataclass(frozen=True)
class Outcome:
    """The verdict on one dossier (or one digitized component / agency result)."""

    errors: tuple[Rule, ...] = ()
    flag_rules: tuple[Rule, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def failed_rules(self) -> list[str]:
        return [r.id for r in self.errors]

    @property
    def lines_vi(self) -> list[str]:
        """One Vietnamese line per failing rule, naming the field and what to fix (Form 02)."""
        return [r.line_vi for r in self.errors]

    @property
    def flags(self) -> list[str]:
        return [r.id for r in self.flag_rules]

    @property
    def flags_vi(self) -> list[str]:
        return [r.line_vi for r in self.flag_rules]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "lines_vi": self.lines_vi,
            "flags": self.flags,
            "failed_rules": self.failed_rules,
            "flags_vi": self.flags_vi,
        }


@dataclass
class _Collected:
    errors: list[Rule] = field(default_factory=list)
    flags: list[Rule] = field(default_factory=list)


@lru_cache(maxsize=4)
def _engine(name: EngineName, config_id: int) -> Engine:
    config = _configs[config_id]
    return GxEngine(config) if name == "gx" else PlainEngine(config)


_configs: dict[int, QualityConfig] = {}


def get_engine(name: EngineName = "gx", config: QualityConfig | None = None) -> Engine:
    """The engine of this process for a configuration: GX suites are built once, then reused."""
    config = config or get_quality_config()
    _configs[id(config)] = config
    return _engine(name, id(config))


def _outcomes(
    config: QualityConfig,
    engine: Engine,
    assets: Mapping[str, list[tuple[int, dict[str, Any]]]],
    n: int,
) -> list[Outcome]:
    collected = [_Collected() for _ in range(n)]
    for asset, suite in config.suites.items():  # suite order = the order of lines
        entries = assets.get(asset)
        if not entries:
            continue
        failures = engine.run(suite, [row for _, row in entries])
        for rule in suite.rules:
            for pos in sorted(failures.get(rule.id, ())):
                target = collected[entries[pos][0]]
                (target.flags if rule.severity == "flag" else target.errors).append(rule)
    return [Outcome(tuple(c.errors), tuple(c.flags)) for c in collected]


def _order(config: QualityConfig) -> list[str]:
    # The header first, then the declarations in file order: the general part reads first.
    names = list(config.suites)
    return ["header", *[a for a in names if a != "header"]] if "header" in names else names


def _ordered(config: QualityConfig) -> QualityConfig:
    return QualityConfig({a: config.suites[a] for a in _order(config)}, config.form02)


@dataclass(frozen=True)
class Flattened:
    """A batch flattened once and routed to the assets whose suites apply: the rows either engine
    validates (:func:`validate_flattened`)."""

    config: QualityConfig  # the configuration whose suites apply (and whose engines validate)
    assets: dict[str, list[tuple[int, dict[str, Any]]]]  # asset -> (dossier's position, row)
    n: int


def flatten_batch(
    submissions: Sequence[Submission | Mapping[str, Any]],
    *,
    dossier_codes: Sequence[str | None] | None = None,
    appointments: Sequence[datetime | None] | None = None,
    config: QualityConfig | None = None,
) -> Flattened:
    """Flatten every submission and hand each row to the suites that apply to its declaration."""
    config = config or get_quality_config()
    ordered = _ordered(config)
    assets: dict[str, list[tuple[int, dict[str, Any]]]] = {a: [] for a in ordered.suites}
    for i, s in enumerate(submissions):
        sub = s if isinstance(s, Submission) else Submission.model_validate(s)
        flat = flatten(
            sub,
            dossier_code=dossier_codes[i] if dossier_codes else None,
            appointment_at=appointments[i] if appointments else None,
        )
        declaration, options = declaration_of(flat)
        for asset, suite in ordered.suites.items():
            if suite.applies(declaration, options):
                assets[asset].append((i, flat))
    return Flattened(config, assets, len(submissions))


def validate_flattened(batch: Flattened, *, engine: EngineName = "gx") -> list[Outcome]:
    """Run each asset's suite once over its rows; one :class:`Outcome` per dossier."""
    engine_of_config = get_engine(engine, batch.config)
    return _outcomes(_ordered(batch.config), engine_of_config, batch.assets, batch.n)


def validate_submissions(
    submissions: Sequence[Submission | Mapping[str, Any]],
    *,
    dossier_codes: Sequence[str | None] | None = None,
    appointments: Sequence[datetime | None] | None = None,
    engine: EngineName = "gx",
    config: QualityConfig | None = None,
) -> list[Outcome]:
    """Validate many dossiers in one call (one GX validation per asset, not per dossier)."""
    batch = flatten_batch(
        submissions, dossier_codes=dossier_codes, appointments=appointments, config=config
    )
    return validate_flattened(batch, engine=engine)


def validate_submission(
    submission: Submission | Mapping[str, Any],
    *,
    dossier_code: str | None = None,
    appointment_at: datetime | None = None,
    engine: EngineName = "gx",
) -> Outcome:
    return validate_submissions(
        [submission], dossier_codes=[dossier_code], appointments=[appointment_at], engine=engine
    )[0]


def validate_rows(
    asset: str,
    rows: Sequence[dict[str, Any]],
    *,
    engine: EngineName = "gx",
    config: QualityConfig | None = None,
) -> list[Outcome]:
    """Validate rows of one asset directly (``digitized`` components, ``agency_results``)."""
    config = config or get_quality_config()
    suite = config.suites[asset]
    return _outcomes(
        QualityConfig({asset: suite}, config.form02),
        get_engine(engine, config),
        {asset: list(enumerate(rows))},
        len(rows),
    )


def supplement_text(
    outcome: Outcome, *, round_no: int = 1, config: QualityConfig | None = None
) -> str:
    """The request for supplement (Form 02): a heading, then one numbered line per failing rule."""
    config = config or get_quality_config()
    heading = (
        config.form02["heading"]
        if round_no <= 1
        else config.form02["second_round"].format(round=round_no)
    )
    return "\n".join([heading, *(f"{i}. {line}" for i, line in enumerate(outcome.lines_vi, 1))])
