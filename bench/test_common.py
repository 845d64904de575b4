"""`make bench` writes one table of figures with their anchors and ratios (bench/__main__.py); run by
`make test` (pytest's testpaths include bench/)."""

from bench.common import FIGURES, Figure, figures_table, line, record


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
