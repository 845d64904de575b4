"""Expectation suites as configuration: ``config/expectations/<asset>.yaml`` loaded into rules.

A suite lists rules for one data asset. A rule is one expectation (a GX built-in or one of
:mod:`lienthong.quality.expectations`), a severity (``error`` asks the citizen for a supplement,
``flag`` marks a different case) and the one Vietnamese line of the request for supplement
(Form 02) that names the field and what to fix. Shorthand kinds expand into several rules:
``required`` (not null), ``citizen_id`` (placeholder, structure, sex, birth year), ``name`` and
``components`` (the catalog's required components).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from lienthong.catalog import get_catalog
from lienthong.codes import _reference
from lienthong.errors import ExitCode, LienThongError

Severity = Literal["error", "flag"]
PAIR_EXPECTATIONS = ("expect_column_pair_",)


class QualityConfigError(LienThongError):
    """An expectation suite file is not acceptable; the message names the file and the rule."""

    code = "quality_config_error"
    exit_code = ExitCode.CONFIG


@dataclass(frozen=True)
class Rule:
    id: str
    asset: str
    expectation: str
    kwargs: dict[str, Any]
    line_vi: str
    severity: Severity = "error"
    legal_basis: str | None = None
    # Only rows where this column is present are checked (e.g. the father's fields, where known).
    when_present: str | None = None

    @property
    def columns(self) -> list[str]:
        k = self.kwargs
        cols = [k[c] for c in ("column", "column_A", "column_B") if c in k]
        cols += list(k.get("column_list", []))
        if self.when_present:
            cols.append(self.when_present)
        return cols

    @property
    def field(self) -> str:
        return self.columns[0]


@dataclass(frozen=True)
class Suite:
    asset: str
    title_vi: str
    applies_to: Any
    rules: tuple[Rule, ...]
    legal_basis: tuple[str, ...] = ()
    columns: tuple[str, ...] = field(default=())

    def applies(self, declaration: str | None, options: dict[str, Any]) -> bool:
        """Whether a dossier of this declaration kind with these options feeds this asset."""
        if self.applies_to == "all":
            return True
        if not isinstance(self.applies_to, dict):
            return False  # digitized components and agency results are fed separately
        if self.applies_to.get("declaration") != declaration:
            return False
        return all(options.get(k) in vals for k, vals in self.applies_to.get("options", {}).items())


@dataclass(frozen=True)
class QualityConfig:
    suites: dict[str, Suite]
    form02: dict[str, str]

    def rule(self, rule_id: str) -> Rule:
        for suite in self.suites.values():
            for r in suite.rules:
                if r.id == rule_id:
                    return r
        raise KeyError(rule_id)


def _lower_first(label: str) -> str:
    return label[:1].lower() + label[1:]


def _expand(asset: str, raw: dict[str, Any], common: dict[str, Any], where: str) -> list[Rule]:
    templates: dict[str, str] = common["templates"]
    kind = raw.get("kind")
    if kind is None:
        missing = [k for k in ("id", "expectation", "line_vi") if k not in raw]
        if missing:
            raise QualityConfigError(f"{where}: rule {raw.get('id', '?')!r} lacks {missing}")
        kwargs = dict(raw.get("kwargs", {}))
        if kwargs.get("regex") == "@catalog_codes":
            codes = "|".join(re.escape(c) for c in get_catalog().codes())  # old codes too
            kwargs["regex"] = rf"^(?:{codes})(?:\.\d{{3}}\.\d{{2}}\.\d{{2}}\.[A-Z]\d{{2}})?$"
        if raw["expectation"].startswith(PAIR_EXPECTATIONS):
            kwargs.setdefault("ignore_row_if", "either_value_is_missing")
        severity = raw.get("severity", "error")
        if severity not in ("error", "flag"):
            raise QualityConfigError(f"{where}: rule {raw['id']!r} severity must be error or flag")
        return [
            Rule(
                raw["id"],
                asset,
                raw["expectation"],
                kwargs,
                raw["line_vi"].strip(),
                severity,
                raw.get("legal_basis"),
                when_present=raw.get("when_present"),
            )
        ]
    if kind == "required":
        when = raw.get("when_present")
        return [
            Rule(
                f"{asset}.required.{col}",
                asset,
                "expect_column_values_to_not_be_null",
                {"column": col},
                templates["required"].format(label=label, label_lower=_lower_first(label)),
                when_present=when,
            )
            for col, label in raw["fields"].items()
        ]
    if kind == "citizen_id":
        p, label = raw["person"], raw["label"]
        cid = f"{p}.citizen_id"
        pair = {"ignore_row_if": "either_value_is_missing"}
        return [
            Rule(
                f"{asset}.citizen_id.placeholder.{p}",
                asset,
                "expect_column_values_to_not_be_in_set",
                {
                    "column": cid,
                    "value_set": list(_reference("codes")["citizen_id"]["placeholders"]),
                },
                templates["citizen_id_placeholder"].format(label=label),
                legal_basis="Thông tư 59/2021/TT-BCA",
            ),
            Rule(
                f"{asset}.citizen_id.structure.{p}",
                asset,
                "expect_column_values_to_be_valid_citizen_id",
                {"column": cid, "allow_legacy": bool(raw.get("allow_legacy", True))},
                templates["citizen_id_structure"].format(label=label),
                legal_basis="Thông tư 59/2021/TT-BCA",
            ),
            Rule(
                f"{asset}.citizen_id.sex.{p}",
                asset,
                "expect_column_pair_citizen_id_to_match_sex",
                {"column_A": cid, "column_B": f"{p}.sex", **pair},
                templates["citizen_id_sex"].format(label=label),
                legal_basis="Thông tư 59/2021/TT-BCA",
            ),
            Rule(
                f"{asset}.citizen_id.birth_year.{p}",
                asset,
                "expect_column_pair_citizen_id_to_match_birth_year",
                {"column_A": cid, "column_B": f"{p}.birth_year", **pair},
                templates["citizen_id_birth_year"].format(label=label),
                legal_basis="Thông tư 59/2021/TT-BCA",
            ),
        ]
    if kind == "name":
        params = {k: int(v) for k, v in common["name"].items()}
        return [
            Rule(
                f"{asset}.name.{col}",
                asset,
                "expect_column_values_to_be_vietnamese_name",
                {"column": col, **params},
                templates["name"].format(label=label, **params),
                legal_basis="Luật Hộ tịch Điều 14; phiếu thủ tục 1.001193",
            )
            for col, label in raw["fields"].items()
        ]
    if kind == "components":
        declaration = raw.get("declaration")
        rules = []
        seen = set()
        for proc in get_catalog():
            if declaration and proc.declaration != declaration:
                continue
            if not declaration and proc.declaration != asset:
                continue
            for comp in proc.components:
                if comp.required and comp.code not in seen:
                    seen.add(comp.code)
                    rules.append(
                        Rule(
                            f"{asset}.component.{comp.code}",
                            asset,
                            "expect_column_values_to_be_in_set",
                            {"column": f"components.{comp.code}", "value_set": [True]},
                            templates["component"].format(label=comp.name),
                            legal_basis=f"{proc.source}: components",
                        )
                    )
        return rules
    raise QualityConfigError(f"{where}: unknown rule kind {kind!r}")


def load_quality_config(directory: Path) -> QualityConfig:
    common_path = directory / "_common.yaml"
    common = yaml.safe_load(common_path.read_text(encoding="utf-8"))
    suites: dict[str, Suite] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        asset = raw.get("asset") or path.stem
        rules: list[Rule] = []
        for item in raw.get("rules", []):
            rules.extend(_expand(asset, item, common, path.name))
        ids = [r.id for r in rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise QualityConfigError(f"{path.name}: rule id {dupes[0]!r} is defined twice")
        columns = tuple(dict.fromkeys(c for r in rules for c in r.columns))
        suites[asset] = Suite(
            asset,
            raw.get("title_vi", asset),
            raw.get("applies_to", "all"),
            tuple(rules),
            tuple(raw.get("legal_basis", [])),
            columns,
        )
    return QualityConfig(suites, dict(common["form02"]))


@lru_cache
def _cached(directory: str) -> QualityConfig:
    return load_quality_config(Path(directory))


def get_quality_config() -> QualityConfig:
    from lienthong.settings import get_settings

    return _cached(str(get_settings().config_dir / "expectations"))
