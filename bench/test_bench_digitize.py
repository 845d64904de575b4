"""The digitization benchmark's scoring (bench/bench_digitize.py): per class, CER against the
generator's text, fields right, and the wrong fields the review gate let through."""

from pathlib import Path

from bench.bench_digitize import Page, Reading, cer, scores


def _pages() -> list[Page]:
    return [
        Page("upright", Path("u.jpg"), "birth_certificate", "Số: 12/GCS", {"number": "12/GCS", "weight": 3200}),
        Page("photo", Path("p.jpg"), "death_notice", "Số: 7/GBT", {"number": "7/GBT"}),
    ]


def test_cer_counts_edits_over_the_truths_characters() -> None:
    assert cer(["Số: 12/GCS"], ["Số: 12/GCS"]) == 0.0
    assert cer(["Số: 12/GC5"], ["Số: 12/GCS"]) == 0.1  # one substitution in ten characters
    assert cer(["Số:   12/GCS\n"], ["Số: 12/GCS"]) == 0.0  # spacing is not an error


def test_scores_per_class_and_the_wrong_fields_the_gate_let_through() -> None:
    pages = _pages()
    reading = Reading(
        texts=["Số: 12/GCS", "Số: 1/GBT"],
        fields=[{"number": "12/GCS", "weight": 3000}, {"number": "1/GBT"}],
        review=[False, True],
    )
    upright = scores(pages, reading, "upright")
    assert upright["right"] == 1 and upright["fields"] == 2
    assert upright["passed_wrong"] == 1 and upright["held"] == 0  # the wrong weight went onward
    photo = scores(pages, reading, "photo")
    assert photo["right"] == 0 and photo["passed_wrong"] == 0 and photo["held"] == 1  # held: caught
    everything = scores(pages, reading, "all")
    assert everything["fields"] == 3 and everything["passed_wrong"] == 1
    assert "passed_wrong" not in scores(pages, Reading(reading.texts, reading.fields), "all")  # no gate
