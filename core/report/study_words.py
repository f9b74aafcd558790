"""The mechanism study in plain words, computed from the figures the study tables show.

Nothing here is written in advance: whether a map "localizes" is the exact McNemar test of its
pointing game against the random control on the same truth units (p < 0.05, in either direction;
otherwise "at chance"), and whether blanking its region matters is the sign test of its drops
against a random region's. Shared by the comparison report and the app's Compare page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cxr_attention.core.report.study import ALPHA, StudyEntry, overall

MECHANISM_NOTE = (
    "How the mechanisms differ: a class-specific head's map for a finding is that finding's own "
    "evidence at each place, and the finding's score is pooled from it; a gate is one map shared "
    "by every finding, learnt without being told where any lesion is, and the finding's score "
    "comes from the features after it. What a gate learns instead is measured in "
    "docs/attention-diagnosis.md."
)


def pointing_verdict(entry: dict[str, Any]) -> str:
    """ "above chance", "below chance" or "at chance" for one map entry of study.json."""
    test = entry["pointing_vs_random"]
    p = float(test.get("p") if test.get("p") is not None else math.nan)
    if p < ALPHA and test["map_only"] > test["random_only"]:
        return "above chance"
    if p < ALPHA and test["map_only"] < test["random_only"]:
        return "below chance"
    return "at chance"


def _times(entry: dict[str, Any]) -> str:
    pointing = overall(entry, "localization", "pointing_game")
    control = overall(entry, "random", "pointing_game")
    if not control > 0:
        return f"{pointing:.2f} of the time (the random control never points inside)"
    return (
        f"{pointing:.2f} of the time, {pointing / control:.1f}x the random control ({control:.2f})"
    )


def _faithfulness(entry: dict[str, Any]) -> str:
    faith = entry["faithfulness"]
    drop, random = faith.get("mean_drop"), faith.get("random_mean_drop")
    if not faith.get("n") or drop is None or random is None:
        return ""
    p = faith.get("p")
    p = math.nan if p is None else float(p)
    if p < ALPHA and faith["map_larger"] > faith["random_larger"]:
        verdict = "more than a random region of the same size does"
    elif p < ALPHA and faith["map_larger"] < faith["random_larger"]:
        verdict = "less than a random region of the same size does"
    else:
        verdict = "no more than a random region of the same size does"
    return (
        f" Blanking the region it attends to lowers that finding's probability by {drop:.3f} on "
        f"average ({random:.3f} for the random region): {verdict}."
    )


def _truth_word(study: dict[str, Any]) -> str:
    return "lesion" if study["data"].get("truth") == "masks" else "box"


def own_map_sentence(e: StudyEntry) -> str:
    """One attention run's own map(s), in words; empty for a baseline."""
    maps = e.own_maps()
    if not maps:
        return ""
    (_, entry), rest = maps[0], maps[1:]
    stage = f" ({entry['stage']})" if not e.study.get("class_specific") else ""
    text = (
        f"{e.title}: its own map{stage} points into the {_truth_word(e.study)} {_times(entry)}: "
        f"{pointing_verdict(entry)}."
    )
    if rest:
        others = "; ".join(
            f"{m['stage']} {overall(m, 'localization', 'pointing_game'):.2f}, {pointing_verdict(m)}"
            for _, m in rest
        )
        text += f" Its other gate{'s' if len(rest) > 1 else ''}: {others}."
    return text + _faithfulness(entry)


def gradcam_sentence(entries: Sequence[StudyEntry]) -> str:
    """Grad-CAM of every run, one clause each."""
    clauses = []
    for e in entries:
        found = e.gradcam()
        if found is None:
            continue
        _, entry = found
        pointing = overall(entry, "localization", "pointing_game")
        control = overall(entry, "random", "pointing_game")
        ratio = f", {pointing / control:.1f}x" if control > 0 else ""
        clauses.append(f"{e.title} {pointing:.2f}{ratio} ({pointing_verdict(entry)})")
    if not clauses:
        return ""
    return "Grad-CAM points inside the truth: " + "; ".join(clauses) + "."


def study_in_words(entries: Sequence[StudyEntry]) -> list[str]:
    """Paragraphs: each attention run's own map, Grad-CAM of every run, and which localize."""
    if not entries:
        return []
    paragraphs = [s for s in (own_map_sentence(e) for e in entries) if s]
    if grad := gradcam_sentence(entries):
        paragraphs.append(grad)
    verdicts = {e.title: pointing_verdict(e.own()[1]) for e in entries if e.own()}
    good = [title for title, v in verdicts.items() if v == "above chance"]
    bad = [title for title, v in verdicts.items() if v != "above chance"]
    if verdicts:
        lines = []
        if good:
            lines.append(f"Own attention maps that localize (above chance): {', '.join(good)}.")
        if bad:
            lines.append(f"Own attention maps at or below chance: {', '.join(bad)}.")
        paragraphs.append(" ".join(lines))
    kinds = {e.kind for e in entries if e.own()}
    if "class" in kinds and kinds & {"spatial", "cbam"}:
        paragraphs.append(MECHANISM_NOTE)
    return paragraphs
