"""Two engines that run a suite over a batch of rows and return, per rule, the failing rows.

``GxEngine`` is the production one: Great Expectations 1.x Core API with an ephemeral context,
every suite built once per process, a whole batch validated per call as one pandas DataFrame.
``PlainEngine`` evaluates the same rules in plain Python, row by row; it is the benchmark anchor
and the cross-check that GX and the configuration say the same thing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from lienthong.errors import ExitCode, LienThongError
from lienthong.quality import checks
from lienthong.quality.suites import QualityConfig, Rule, Suite

Failures = dict[str, set[int]]


class QualityEngineError(LienThongError):
    """An expectation could not be evaluated: a bug or a broken suite, never the citizen's fault."""

    code = "quality_engine_error"
    exit_code = ExitCode.INTERNAL


class Engine(Protocol):
    name: str

    def run(self, suite: Suite, rows: Sequence[dict[str, Any]]) -> Failures: ...


# --- plain Python ---------------------------------------------------------------------------------

_missing = checks.is_missing


def _cmp(a: Any, b: Any) -> tuple[Any, Any]:
    # A datetime against a date compares their (local) dates; pandas does the same on datetime64.
    if (
        isinstance(a, datetime) != isinstance(b, datetime)
        and isinstance(a, date)
        and isinstance(b, date)
    ):
        return checks.as_date(a), checks.as_date(b)
    return a, b


def _plain_check(rule: Rule) -> Callable[[dict[str, Any]], bool]:
    """A function row -> True when the row passes the rule (GX's null-skipping semantics)."""
    k = rule.kwargs
    e = rule.expectation
    if e == "expect_column_values_to_not_be_null":
        return lambda r: not _missing(r.get(k["column"]))
    if "column" in k:
        col = k["column"]
        if e == "expect_column_values_to_be_in_set":
            allowed = list(k["value_set"])
            test: Callable[[Any], bool] = lambda v: v in allowed  # noqa: E731
        elif e == "expect_column_values_to_not_be_in_set":
            banned = list(k["value_set"])
            test = lambda v: v not in banned  # noqa: E731
        elif e == "expect_column_values_to_match_regex":
            rx = re.compile(k["regex"])
            test = lambda v: rx.search(str(v)) is not None  # noqa: E731
        elif e == "expect_column_values_to_be_between":
            lo, hi = k.get("min_value"), k.get("max_value")
            test = lambda v: (lo is None or v >= lo) and (hi is None or v <= hi)  # noqa: E731
        elif e == "expect_column_values_to_be_valid_citizen_id":
            allow = bool(k.get("allow_legacy", True))
            test = lambda v: checks.citizen_id_well_formed(  # noqa: E731
                v, allow_legacy=allow, max_year=k.get("max_year")
            )
        elif e == "expect_column_values_to_be_vietnamese_name":
            params = {p: k[p] for p in ("min_words", "max_words", "max_length") if p in k}
            test = lambda v: checks.is_vietnamese_name(v, **params)  # noqa: E731
        else:
            raise QualityEngineError(f"rule {rule.id}: no plain-Python check for {e}")
        return lambda r: _missing(r.get(col)) or test(r.get(col))
    if "column_A" in k:
        a_col, b_col = k["column_A"], k["column_B"]
        ignore = k.get("ignore_row_if", "either_value_is_missing")
        pair: Callable[[Any, Any], bool]
        if e == "expect_column_pair_values_to_be_equal":
            pair = lambda a, b: a == b  # noqa: E731
        elif e == "expect_column_pair_values_a_to_be_greater_than_b":
            eq = bool(k.get("or_equal"))
            pair = lambda a, b: (lambda x, y: x >= y if eq else x > y)(*_cmp(a, b))  # noqa: E731
        elif e == "expect_column_pair_citizen_id_to_match_sex":
            pair = checks.citizen_id_sex_matches
        elif e == "expect_column_pair_citizen_id_to_match_birth_year":
            pair = checks.citizen_id_year_matches
        elif e == "expect_column_pair_dossier_code_to_match_reception_date":
            pair = checks.dossier_code_matches
        elif e == "expect_column_pair_days_from_a_to_b_to_be_at_most":
            days, years = int(k.get("max_days", 0)), int(k.get("max_years", 0))
            to_wd = bool(k.get("to_working_day", False))
            pair = lambda a, b: checks.days_between_at_most(  # noqa: E731
                a, b, days, max_years=years, to_working_day=to_wd)
        else:
            raise QualityEngineError(f"rule {rule.id}: no plain-Python check for {e}")

        def check_pair(r: dict[str, Any]) -> bool:
            a, b = r.get(a_col), r.get(b_col)
            ma, mb = _missing(a), _missing(b)
            if (ignore == "either_value_is_missing" and (ma or mb)) or (
                ignore == "both_values_are_missing" and ma and mb
            ):
                return True
            return pair(a, b)

        return check_pair
    if "column_list" in k:
        cols = list(k["column_list"])
        ignore = k.get("ignore_row_if", "all_values_are_missing")
        many: Callable[[list[Any]], bool]
        if e == "expect_select_column_values_to_be_unique_within_record":
            many = lambda vs: len(set(vs)) == len(vs)  # noqa: E731
        elif e == "expect_multicolumn_family_name_to_follow_parents":
            many = lambda vs: checks.family_name_follows(vs[0], *vs[1:])  # noqa: E731
        else:
            raise QualityEngineError(f"rule {rule.id}: no plain-Python check for {e}")

        def check_many(r: dict[str, Any]) -> bool:
            vs = [r.get(c) for c in cols]
            gone = [_missing(v) for v in vs]
            if (ignore == "any_value_is_missing" and any(gone)) or (
                ignore == "all_values_are_missing" and all(gone)
            ):
                return True
            return many(vs)

        return check_many
    raise QualityEngineError(f"rule {rule.id}: cannot tell the columns of {e}")


class PlainEngine:
    """The same rules in plain Python, one row at a time."""

    name = "plain"

    def __init__(self, config: QualityConfig) -> None:
        self._checks: dict[str, list[tuple[Rule, Callable[[dict[str, Any]], bool]]]] = {
            asset: [(r, _plain_check(r)) for r in suite.rules]
            for asset, suite in config.suites.items()
        }

    def run(self, suite: Suite, rows: Sequence[dict[str, Any]]) -> Failures:
        out: Failures = {}
        for rule, check in self._checks[suite.asset]:
            when = rule.when_present
            failed = {
                i
                for i, r in enumerate(rows)
                if not (when and _missing(r.get(when))) and not check(r)
            }
            if failed:
                out[rule.id] = failed
        return out


# --- Great Expectations ---------------------------------------------------------------------------


def _gx_class(name: str) -> type:
    import great_expectations.expectations as gxe

    from lienthong.quality.expectations import CUSTOM_EXPECTATIONS

    if name in CUSTOM_EXPECTATIONS:
        return CUSTOM_EXPECTATIONS[name]
    camel = "".join(part.capitalize() for part in name.split("_"))
    cls = getattr(gxe, camel, None)
    if cls is None:
        raise QualityEngineError(f"no Great Expectations expectation named {name!r}")
    return cls  # type: ignore[no-any-return]


class GxEngine:
    """Great Expectations, ephemeral context; suites built once, one DataFrame per call."""

    name = "gx"

    def __init__(self, config: QualityConfig) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.config = config
        self._lock = threading.Lock()
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self.context.data_sources.add_pandas("lienthong")
        self._batch_defs: dict[str, Any] = {}
        self._suites: dict[str, Any] = {}
        self._docs: dict[str, Any] = {}
        for asset, suite in config.suites.items():
            data_asset = self._source.add_dataframe_asset(asset)
            self._batch_defs[asset] = data_asset.add_batch_definition_whole_dataframe(asset)
            gx_suite = self.context.suites.add(
                gx.ExpectationSuite(
                    name=asset,
                    meta={"title_vi": suite.title_vi, "legal_basis": list(suite.legal_basis)},
                )
            )
            for rule in suite.rules:
                kwargs = dict(rule.kwargs)
                if rule.when_present:
                    kwargs["row_condition"] = f"`{rule.when_present}`.notnull()"
                    kwargs["condition_parser"] = "pandas"
                gx_suite.add_expectation(
                    _gx_class(rule.expectation)(
                        **kwargs,
                        meta={
                            "rule": rule.id,
                            "severity": rule.severity,
                            "legal_basis": rule.legal_basis,
                        },
                    )
                )
            self._suites[asset] = gx_suite

    def frame(self, suite: Suite, rows: Sequence[dict[str, Any]]) -> Any:
        import pandas as pd

        df = pd.DataFrame.from_records(list(rows), columns=list(suite.columns))
        for col in df.columns:
            sample = next((v for v in df[col] if v is not None and v == v), None)
            if isinstance(sample, datetime):
                df[col] = pd.to_datetime(df[col], utc=True)
            elif isinstance(sample, date):
                df[col] = pd.to_datetime(df[col])
        return df

    def run(
        self, suite: Suite, rows: Sequence[dict[str, Any]], *, result_format: Any = None
    ) -> Failures:
        if not rows:
            return {}
        df = self.frame(suite, rows)
        with self._lock:
            batch = self._batch_defs[suite.asset].get_batch(batch_parameters={"dataframe": df})
            result = batch.validate(
                self._suites[suite.asset],
                result_format=result_format or {"result_format": "COMPLETE"},
            )
        return _failures(result)

    def run_with_docs(
        self, suite: Suite, rows: Sequence[dict[str, Any]], docs_dir: Path
    ) -> Failures:
        """Validate through a Checkpoint whose action renders static Data Docs into ``docs_dir``.

        The docs show rule outcomes and counts, not the unexpected values: no personal data.
        """
        import great_expectations as gx
        from great_expectations.checkpoint import UpdateDataDocsAction

        if not rows:
            return {}
        site = f"lienthong-{abs(hash(str(docs_dir.resolve())))}"
        df = self.frame(suite, rows)
        with self._lock:
            if site not in {s for s in (self.context.variables.data_docs_sites or {})}:
                self.context.add_data_docs_site(
                    site_name=site,
                    site_config={
                        "class_name": "SiteBuilder",
                        "store_backend": {
                            "class_name": "TupleFilesystemStoreBackend",
                            "base_directory": str(docs_dir),
                        },
                        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    },
                )
            key = (site, suite.asset)
            checkpoint = self._docs.get(str(key))
            if checkpoint is None:
                vd = self.context.validation_definitions.add(
                    gx.ValidationDefinition(
                        name=f"{suite.asset}-{site}",
                        data=self._batch_defs[suite.asset],
                        suite=self._suites[suite.asset],
                    )
                )
                checkpoint = self.context.checkpoints.add(
                    gx.Checkpoint(
                        name=f"daily-{suite.asset}-{site}",
                        validation_definitions=[vd],
                        actions=[UpdateDataDocsAction(name="docs", site_names=[site])],
                        result_format={
                            "result_format": "COMPLETE",
                            "partial_unexpected_count": 0,
                            "include_unexpected_rows": False,
                        },
                    )
                )
                self._docs[str(key)] = checkpoint
            result = checkpoint.run(batch_parameters={"dataframe": df})
        out: Failures = {}
        for run_result in result.run_results.values():
            out.update(_failures(run_result))
        return out


def _failures(result: Any) -> Failures:
    out: Failures = {}
    for r in result.results:
        rule_id = r.expectation_config.meta["rule"]
        info = r.exception_info or {}
        if info.get("raised_exception"):
            raise QualityEngineError(f"rule {rule_id}: {info.get('exception_message')}")
        if not r.success:
            out[rule_id] = {int(i) for i in r.result.get("unexpected_index_list") or []}
    return out
