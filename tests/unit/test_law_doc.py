"""docs/law.md is the table of every rule the catalog and calendar apply (issue 16 §7)."""

from __future__ import annotations

from pathlib import Path

from lienthong.calendar import get_calendar
from lienthong.catalog import get_catalog
from lienthong.law import catalog_rules, law_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "law.md"


def test_docs_law_md_is_the_table_of_the_configuration():
    expected = law_markdown(get_catalog(), get_calendar(), range(2018, 2028))
    assert DOC.read_text(encoding="utf-8") == expected, "regenerate: python -m lienthong.law > docs/law.md"


def test_every_rule_has_a_basis_and_every_unconfirmed_rule_a_reason():
    for rule in catalog_rules(get_catalog()):
        assert rule.basis.strip(), rule
        assert rule.effective_from is not None, rule
        if not rule.confirmed and not rule.rule.startswith(("Thời hạn cả thủ tục", "Phí")):
            assert rule.reason, rule


def test_no_repealed_text_is_cited_as_in_force():
    # Decrees 61/2018 and 107/2021 and Circular 01/2018 were replaced on 01/07/2025 (Decree
    # 118/2025 Art. 40(1)); no rule in force cites them.
    for rule in catalog_rules(get_catalog()):
        for repealed in ("61/2018", "107/2021", "01/2018/TT-VPCP"):
            assert repealed not in rule.basis, rule
