"""How hard the phantom's findings are to see: "teaching" (the default) or "research".

"research" is the phantom as first designed: lesions as modest as on real films (nodules 2-4.5 % of
the image width, a few grey levels above the lung), borderline hearts (a cardiothoracic ratio from
0.49, where healthy hearts reach 0.5), a case mix with ChestX-ray14's long tail (Hernia 0.7 %).
Measured in docs/attention-diagnosis.md: a MobileNetV2 trained from scratch at 128 px for 4 epochs
reads these lesions (its AUC falls to chance when they are removed) but only weakly (test macro
AUC about 0.68), too weakly for its attention to have anything to find.

"teaching" keeps the anatomy, views, noise and co-occurrence, and makes the findings plain enough to
learn on a laptop CPU in minutes: focal lesions larger and denser, enlarged hearts clearly enlarged,
and the rare findings common enough to learn and to score.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxr_attention.core.errors import ConfigError


@dataclass(frozen=True)
class Difficulty:
    """The knobs that set how visible the findings are."""

    name: str
    lesion_scale: float  # multiplies lesion sizes: nodules, masses, airspace opacities, plates,
    # bullae, effusion height, pneumothorax depth, pleural bands, hiatal hernia
    lesion_contrast: float  # multiplies the attenuation every finding adds or removes
    enlarged_ctr: tuple[float, float]  # cardiothoracic ratio range of Cardiomegaly
    rare_floor: float  # base rate in abnormal films below which a finding is raised to this


RESEARCH = Difficulty(
    "research", lesion_scale=1.0, lesion_contrast=1.0, enlarged_ctr=(0.49, 0.62), rare_floor=0.0
)
TEACHING = Difficulty(
    "teaching", lesion_scale=1.7, lesion_contrast=2.0, enlarged_ctr=(0.55, 0.65), rare_floor=0.06
)
DIFFICULTIES: dict[str, Difficulty] = {d.name: d for d in (TEACHING, RESEARCH)}
DEFAULT_DIFFICULTY = TEACHING.name


def difficulty(name: str | Difficulty) -> Difficulty:
    """The setting called `name` ("teaching" or "research")."""
    if isinstance(name, Difficulty):
        return name
    try:
        return DIFFICULTIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown phantom difficulty {name!r}: choose one of {', '.join(DIFFICULTIES)}"
        ) from None
