"""Every map held to the lung fields: the figures against hand-computed cases, and the words."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_attention.core.explain.lung_scores import (
    ABOVE,
    BELOW,
    BESIDE,
    BETWEEN,
    EDGE_PLACE,
    INSIDE,
    NOWHERE,
    PADDING,
    film_area,
    flag_line,
    score_in_lungs,
    summarize_lung_scores,
)

SIZE = 64


def two_lungs() -> np.ndarray:
    """Two 20 x 12 lungs: rows 16-35, columns 12-23 and 40-51."""
    lungs = np.zeros((SIZE, SIZE), bool)
    lungs[16:36, 12:24] = True
    lungs[16:36, 40:52] = True
    return lungs


def peak_at(row: int, col: int) -> np.ndarray:
    heat = np.zeros((SIZE, SIZE), np.float32)
    heat[row, col] = 1.0
    return heat


def test_a_map_inside_the_lungs_scores_its_share_of_mass_by_hand():
    lungs = two_lungs()
    heat = np.zeros((SIZE, SIZE), np.float32)
    heat[20, 15] = 3.0  # the peak, in the right lung
    heat[50, 30] = 1.0  # below the lungs
    heat[0:2, 0:2] = 0.5  # four pixels in a corner
    score = score_in_lungs(heat, lungs)
    assert score.inside and score.place == INSIDE and not score.flagged
    assert score.share == pytest.approx(3.0 / (3.0 + 1.0 + 4 * 0.5))


@pytest.mark.parametrize(
    ("row", "col", "place"),
    [
        (55, 20, BELOW),  # the abdomen
        (4, 20, ABOVE),  # the neck
        (25, 32, BETWEEN),  # the heart and spine between the two fields
        (25, 2, BESIDE),  # the chest wall, left of the right lung
        (25, 25, EDGE_PLACE),  # two pixels off the right lung: at its edge, not flagged
    ],
)
def test_where_a_peak_outside_lies_is_said_in_words(row, col, place):
    score = score_in_lungs(peak_at(row, col), two_lungs())
    assert not score.inside
    assert score.place == place
    assert score.flagged == (place != EDGE_PLACE)


def test_a_map_that_peaks_in_the_padding_is_flagged_with_a_plain_line():
    # a film 64 wide and 40 high is padded above and below: rows 0-11 are padding
    area = film_area(40, 64, SIZE)
    assert not area[:12].any() and area[12:52].all() and not area[52:].any()
    score = score_in_lungs(peak_at(2, 30), two_lungs(), area)
    assert score.place == PADDING and score.flagged
    line = flag_line(score)
    assert line.startswith("peaks in the padding around the film")
    assert "may be reading something other than the disease" in line
    assert flag_line(score_in_lungs(peak_at(20, 15), two_lungs(), area)) is None


def test_a_flat_map_points_nowhere_and_counts_as_outside():
    score = score_in_lungs(np.full((SIZE, SIZE), 0.3, np.float32), two_lungs())
    assert score.place == NOWHERE and not score.inside and score.flagged
    assert score.share == pytest.approx(two_lungs().mean())
    assert flag_line(score) == "the map is flat: it points at no place, inside the lungs or out"


def test_summary_counts_peaks_and_places():
    lungs = two_lungs()
    scores = [
        score_in_lungs(peak_at(20, 15), lungs),
        score_in_lungs(peak_at(20, 45), lungs),
        score_in_lungs(peak_at(55, 20), lungs),
        score_in_lungs(peak_at(25, 32), lungs),
    ]
    summary = summarize_lung_scores(scores)
    assert summary["n"] == 4
    assert summary["peak_inside"] == 0.5
    assert summary["flagged"] == 0.5
    assert summary["places"] == {INSIDE: 2, BELOW: 1, BETWEEN: 1}
    assert summary["mass_inside"] == pytest.approx(0.5)


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="differ in shape"):
        score_in_lungs(np.zeros((8, 8)), np.zeros((16, 16), bool))


def test_the_report_holds_every_map_to_the_lungs_as_the_study_measured():
    """The comparison report's in-lung table, from the shipped real-film zoo's study.json: one row
    per map, the study's own figures beside the random control's."""
    import json
    from pathlib import Path

    from cxr_attention.core.report.study import StudyEntry, study_lungs_table

    zoo = Path(__file__).resolve().parents[1] / "assets" / "zoo-pneumonia"
    name = "mobilenetv2_100+class"
    study = json.loads((zoo / name / "study.json").read_text())
    entry = StudyEntry(name, "mobilenetv2_100", "class", 0.0, study)
    table = study_lungs_table([entry])
    assert table is not None and len(table.rows) == len(study["maps"])
    for row, (key, m) in zip(table.rows, study["maps"].items(), strict=True):
        assert row[1].startswith(key)
        assert row[2] == m["lungs"]["map"]["n"]
        assert row[3] == m["lungs"]["map"]["peak_inside"]
        assert row[4] == m["lungs"]["random"]["peak_inside"]
    # the class map held by the lung term peaks inside far more often than a random map
    own = next(row for row in table.rows if row[1].endswith("(own)"))
    assert own[3] >= 0.9 > 0.5 > own[4]
    assert (
        study_lungs_table([StudyEntry(name, "mobilenetv2_100", "class", 0.0, {"maps": {}})]) is None
    )
