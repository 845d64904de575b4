"""Custom Great Expectations for the rules GX has no built-in for.

Each expectation is a thin GX wrapper around a predicate of :mod:`lienthong.quality.checks`;
importing this module registers them with GX (``expect_column_values_to_be_valid_citizen_id`` ...).
Only the pandas engine is implemented: the suites validate in-memory batches of dossiers.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
    multicolumn_condition_partial,
)

from lienthong.quality import checks

_PAIR_DOMAIN = (
    "batch_id",
    "table",
    "column_A",
    "column_B",
    "row_condition",
    "condition_parser",
    "ignore_row_if",
)
PairIgnore = Literal["both_values_are_missing", "either_value_is_missing", "neither"]


def _pairwise(fn: Any, a: pd.Series, b: pd.Series) -> pd.Series:
    return pd.Series([bool(fn(x, y)) for x, y in zip(a, b, strict=True)], index=a.index, dtype=bool)


# --- citizen ID -----------------------------------------------------------------------------------


class ColumnValuesValidCitizenId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.lienthong_valid_citizen_id"
    condition_value_keys = ("allow_legacy", "max_year")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls,
        column: pd.Series,
        allow_legacy: bool = True,
        max_year: int | None = None,
        **kwargs: Any,
    ) -> pd.Series:
        return column.map(
            lambda v: checks.citizen_id_well_formed(v, allow_legacy=allow_legacy, max_year=max_year)
        ).astype(bool)


class ExpectColumnValuesToBeValidCitizenId(ColumnMapExpectation):
    """Personal ID number: 12 digits as a string, province code in the table, century digit giving
    a birth year not in the future (Circular 59/2021/TT-BCA); an old 9-digit CMND when allowed."""

    allow_legacy: bool = True
    max_year: int | None = None
    map_metric: ClassVar[str] = "column_values.lienthong_valid_citizen_id"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "allow_legacy", "max_year")


class ColumnPairCitizenIdSex(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.lienthong_citizen_id_sex"
    condition_domain_keys = _PAIR_DOMAIN

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> pd.Series:
        return _pairwise(checks.citizen_id_sex_matches, column_A, column_B)


class ExpectColumnPairCitizenIdToMatchSex(ColumnPairMapExpectation):
    """The ID's 4th digit (column_A) gives the sex declared in column_B."""

    ignore_row_if: PairIgnore = "either_value_is_missing"
    map_metric: ClassVar[str] = "column_pair_values.lienthong_citizen_id_sex"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "ignore_row_if")


class ColumnPairCitizenIdYear(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.lienthong_citizen_id_birth_year"
    condition_domain_keys = _PAIR_DOMAIN

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> pd.Series:
        return _pairwise(checks.citizen_id_year_matches, column_A, column_B)


class ExpectColumnPairCitizenIdToMatchBirthYear(ColumnPairMapExpectation):
    """The ID's digits 4-6 (column_A) give the birth year declared in column_B."""

    ignore_row_if: PairIgnore = "either_value_is_missing"
    map_metric: ClassVar[str] = "column_pair_values.lienthong_citizen_id_birth_year"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "ignore_row_if")


# --- names ----------------------------------------------------------------------------------------


class ColumnValuesVietnameseName(ColumnMapMetricProvider):
    condition_metric_name = "column_values.lienthong_vietnamese_name"
    condition_value_keys = ("min_words", "max_words", "max_length")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls,
        column: pd.Series,
        min_words: int = 2,
        max_words: int = 7,
        max_length: int = 50,
        **kwargs: Any,
    ) -> pd.Series:
        return column.map(
            lambda v: checks.is_vietnamese_name(
                v, min_words=min_words, max_words=max_words, max_length=max_length
            )
        ).astype(bool)


class ExpectColumnValuesToBeVietnameseName(ColumnMapExpectation):
    """A full name (họ, chữ đệm và tên): NFC, letters only, no digits, a sensible length."""

    min_words: int = 2
    max_words: int = 7
    max_length: int = 50
    map_metric: ClassVar[str] = "column_values.lienthong_vietnamese_name"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "min_words", "max_words", "max_length")


class MulticolumnFamilyNameFollowsParents(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.lienthong_family_name_follows_parents"
    condition_domain_keys = (
        "batch_id",
        "table",
        "column_list",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: Any) -> pd.Series:
        rows = column_list.itertuples(index=False, name=None)
        return pd.Series(
            [checks.family_name_follows(r[0], *r[1:]) for r in rows],
            index=column_list.index,
            dtype=bool,
        )


class ExpectMulticolumnFamilyNameToFollowParents(MulticolumnMapExpectation):
    """The first column's family name is that of one of the other columns (the parents)."""

    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = (
        "all_values_are_missing"
    )
    map_metric: ClassVar[str] = "multicolumn_values.lienthong_family_name_follows_parents"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "ignore_row_if")


# --- codes and dates ------------------------------------------------------------------------------


class ColumnPairDossierCodeDate(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.lienthong_dossier_code_date"
    condition_domain_keys = _PAIR_DOMAIN

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> pd.Series:
        return _pairwise(checks.dossier_code_matches, column_A, column_B)


class ExpectColumnPairDossierCodeToMatchReceptionDate(ColumnPairMapExpectation):
    """The dossier code (column_A) follows ``<unit>-YYMMDD-NNNN`` (Circular 01/2018 Art. 19) with
    its date equal to the reception date (column_B)."""

    ignore_row_if: PairIgnore = "either_value_is_missing"
    map_metric: ClassVar[str] = "column_pair_values.lienthong_dossier_code_date"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "ignore_row_if")


class ColumnPairDaysAtMost(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.lienthong_days_at_most"
    condition_domain_keys = _PAIR_DOMAIN
    condition_value_keys = ("max_days", "max_years", "to_working_day")

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls, column_A: pd.Series, column_B: pd.Series, max_days: int = 0, max_years: int = 0,
        to_working_day: bool = False, **kwargs: Any
    ) -> pd.Series:
        return _pairwise(
            lambda a, b: checks.days_between_at_most(a, b, max_days, max_years=max_years,
                                                     to_working_day=to_working_day),
            column_A, column_B,
        )


class ExpectColumnPairDaysFromAToBToBeAtMost(ColumnPairMapExpectation):
    """At most ``max_days`` calendar days from the date in column_A to the date in column_B
    (registration within 60 days of birth, 15 days of death; allowance within 90 days)."""

    max_days: int = 0
    max_years: int = 0
    to_working_day: bool = False
    ignore_row_if: PairIgnore = "either_value_is_missing"
    map_metric: ClassVar[str] = "column_pair_values.lienthong_days_at_most"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly", "ignore_row_if", "max_days", "max_years",
                                               "to_working_day")


CUSTOM_EXPECTATIONS: dict[str, type] = {
    "expect_column_values_to_be_valid_citizen_id": ExpectColumnValuesToBeValidCitizenId,
    "expect_column_pair_citizen_id_to_match_sex": ExpectColumnPairCitizenIdToMatchSex,
    "expect_column_pair_citizen_id_to_match_birth_year": ExpectColumnPairCitizenIdToMatchBirthYear,
    "expect_column_values_to_be_vietnamese_name": ExpectColumnValuesToBeVietnameseName,
    "expect_multicolumn_family_name_to_follow_parents": (
        ExpectMulticolumnFamilyNameToFollowParents
    ),
    "expect_column_pair_dossier_code_to_match_reception_date": (
        ExpectColumnPairDossierCodeToMatchReceptionDate
    ),
    "expect_column_pair_days_from_a_to_b_to_be_at_most": ExpectColumnPairDaysFromAToBToBeAtMost,
}
