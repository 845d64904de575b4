"""`make bench` writes one table of figures with their anchors and ratios (bench/__main__.py); run by
`make test` (pytest's testpaths include bench/)."""

from collections.abc import Callable

import pytest

from bench.common import FIGURES, Figure, Pairs, alternating_pairs, figures_table, line, paired, record


def test_line_records_the_figure_with_its_anchor_and_ratio() -> None:
    FIGURES.clear()
    text = line("vault publication", 300.0, "/s", 600.0, "raw write", target=">= 0.5")
    assert "ratio 0.500 vs raw write" in text and "(target >= 0.5)" in text
    record("look-ups", 2500.0, "/s")
    assert [f.name for f in FIGURES] == ["vault publication", "look-ups"]
    assert FIGURES[0].ratio == 0.5 and FIGURES[1].ratio is None


def test_table_has_one_row_per_figure() -> None:
    table = figures_table([("bench_vault", Figure("publication", 300.0, "/s", 600.0, "raw write", ">= 0.5")),
                           ("bench_vault", Figure("look-ups", 2500.0, "/s"))])
    rows = table.strip().splitlines()
    assert rows[0].startswith("| benchmark | figure |")
    assert rows[2] == "| bench_vault | publication | 300.00 /s | raw write 600.00 | 0.500 | >= 0.5 |"
    assert rows[3] == "| bench_vault | look-ups | 2,500.00 /s |  |  |  |"
    assert "no figures" in figures_table([])



def _order_sensitive(cost: dict[str, float], second_pays: float) -> tuple[dict[str, Callable[[], float]], list[str]]:
    """Two fake contenders whose measured time depends on the order they run in: whichever runs
    second in a round pays ``second_pays`` times its cost (as if its neighbour flushed the cache)."""
    calls: list[str] = []

    def contender(name: str) -> Callable[[], float]:
        def run() -> float:
            second = len(calls) % 2 == 1
            calls.append(name)
            return cost[name] * (second_pays if second else 1.0)
        return run

    return {name: contender(name) for name in cost}, calls


def test_alternating_pairs_cancel_an_order_bias() -> None:
    # The same cost for both: the honest ratio is 1, though the second runner pays 1.5x.
    fakes, calls = _order_sensitive({"a": 2.0, "b": 2.0}, second_pays=1.5)
    pairs = alternating_pairs(fakes["a"], fakes["b"], rounds=6)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a", "a", "b", "b", "a"]
    assert pairs.ratios == pytest.approx([1 / 1.5, 1.5] * 3)
    assert pairs.median == pytest.approx(1.0)
    # Always a first (what the quality benchmark did before) reports a 1.5x faster than b.
    fakes, _ = _order_sensitive({"a": 2.0, "b": 2.0}, second_pays=1.5)
    a_first = [(fakes["a"](), fakes["b"]()) for _ in range(6)]
    assert Pairs([x for x, _ in a_first], [y for _, y in a_first]).median == pytest.approx(1 / 1.5)


def test_alternating_pairs_keep_a_true_difference_and_resist_one_hiccup() -> None:
    fakes, _ = _order_sensitive({"a": 3.0, "b": 2.0}, second_pays=1.2)
    pairs = alternating_pairs(fakes["a"], fakes["b"], rounds=4)
    assert pairs.median == pytest.approx(1.5)
    assert "1.500 ratio" in paired("a vs b", pairs, "")
    # One round where the machine stalled ten times over barely moves the median of 5 rounds.
    hiccup = Pairs([3.0, 3.0, 30.0, 3.0, 3.0], [2.0, 2.1, 2.0, 1.9, 2.0])
    assert hiccup.median == pytest.approx(1.5)
    assert sum(hiccup.a) / sum(hiccup.b) > 3  # the ratio of totals is at its mercy
    with pytest.raises(ValueError):
        alternating_pairs(fakes["a"], fakes["b"], rounds=0)
