"""Who is in the phantom set and what they have: patients, follow-ups, splits and findings.

The case mix imitates ChestX-ray14 (Wang et al., CVPR 2017) in shape, not in exact numbers: about half
the images show no finding, Infiltration and Effusion are the commonest findings and Hernia the rarest,
findings travel together (Effusion with Cardiomegaly or Edema, Infiltration with Pneumonia, ...), and
each patient has one to a dozen images, all in the same split.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cxr_attention.core.labels import ALL14

# Streams of the seed sequence; each image itself uses default_rng([seed, index]).
PLAN_STREAM = 0x504C414E  # "PLAN"
PATIENT_STREAM = 0x50415449  # "PATI"

TEST_FRACTION = 0.2
NORMAL_FRACTION = 0.5  # images drawn with no finding before co-occurrence adds any

# Probability of each finding in an abnormal image, before co-occurrence. Tuned so that the
# marginal prevalences (DESIGN_PREVALENCE) come out in ChestX-ray14's order, compressed so that the
# rare classes still have positives in a few thousand images.
BASE_RATE_ABNORMAL: dict[str, float] = {
    "Infiltration": 0.24,
    "Effusion": 0.15,
    "Atelectasis": 0.135,
    "Nodule": 0.13,
    "Mass": 0.10,
    "Pneumothorax": 0.082,
    "Consolidation": 0.075,
    "Pleural_Thickening": 0.052,
    "Cardiomegaly": 0.055,
    "Emphysema": 0.055,
    "Edema": 0.045,
    "Fibrosis": 0.04,
    "Pneumonia": 0.035,
    "Hernia": 0.012,
}

# (if present, then add, with probability): findings that travel together in ChestX-ray14.
CO_OCCURRENCE: tuple[tuple[str, str, float], ...] = (
    ("Cardiomegaly", "Effusion", 0.35),
    ("Cardiomegaly", "Edema", 0.15),
    ("Edema", "Effusion", 0.45),
    ("Edema", "Cardiomegaly", 0.25),
    ("Pneumonia", "Infiltration", 0.45),
    ("Pneumonia", "Consolidation", 0.2),
    ("Mass", "Nodule", 0.15),
    ("Effusion", "Atelectasis", 0.15),
    ("Emphysema", "Pneumothorax", 0.1),
    ("Fibrosis", "Pleural_Thickening", 0.2),
)

# The marginal prevalences this mix produces (measured over 200,000 draws, rounded); tests check
# the generated files against these.
DESIGN_PREVALENCE: dict[str, float] = {
    "Infiltration": 0.154,
    "Effusion": 0.114,
    "Atelectasis": 0.098,
    "Nodule": 0.088,
    "Mass": 0.061,
    "Pneumothorax": 0.055,
    "Consolidation": 0.050,
    "Cardiomegaly": 0.041,
    "Pleural_Thickening": 0.037,
    "Emphysema": 0.034,
    "Edema": 0.033,
    "Fibrosis": 0.025,
    "Pneumonia": 0.021,
    "Hernia": 0.007,
}


# The same for the teaching case mix (`base_rates(TEACHING.rare_floor)`), measured the same way.
TEACHING_PREVALENCE: dict[str, float] = {
    "Infiltration": 0.156,
    "Effusion": 0.115,
    "Atelectasis": 0.096,
    "Nodule": 0.084,
    "Mass": 0.060,
    "Pneumothorax": 0.052,
    "Consolidation": 0.052,
    "Cardiomegaly": 0.044,
    "Pleural_Thickening": 0.043,
    "Edema": 0.040,
    "Pneumonia": 0.036,
    "Fibrosis": 0.036,
    "Hernia": 0.036,
    "Emphysema": 0.035,
}


def design_prevalence(difficulty: str) -> dict[str, float]:
    """The marginal prevalences a phantom of this difficulty is drawn with."""
    return TEACHING_PREVALENCE if difficulty == "teaching" else DESIGN_PREVALENCE


@dataclass(frozen=True)
class PlannedImage:
    """One image of the set before it is drawn: its identity, patient and split."""

    index: int  # 0-based position in the set; the image's own generator is rng([seed, index])
    patient_id: int  # 1-based, as in ChestX-ray14
    follow_up: int  # 0, 1, 2, ... per patient
    age: int  # years
    sex: str  # "M" or "F"
    split: str  # "train_val" or "test"

    @property
    def image_id(self) -> str:
        """The ChestX-ray14 file name, e.g. 00000012_003.png."""
        return f"{self.patient_id:08d}_{self.follow_up:03d}.png"


def plan_dataset(n: int, seed: int) -> list[PlannedImage]:
    """Patients, follow-ups, ages, sexes and the patient-disjoint split for `n` images.

    Depends only on (n, seed). Patients have 1 + Geometric images (mean about 2.5, at most 12),
    so several images share a patient as in ChestX-ray14; about TEST_FRACTION of the patients
    (hence of the images) go to the test list.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(PLAN_STREAM,)))
    plan: list[PlannedImage] = []
    patient = 0
    while len(plan) < n:
        patient += 1
        count = min(int(rng.geometric(0.55)), 12, n - len(plan))
        sex = "M" if rng.random() < 0.56 else "F"
        age = float(np.clip(rng.normal(48.0, 16.0), 3.0, 88.0))
        split = "test" if rng.random() < TEST_FRACTION else "train_val"
        for follow_up in range(count):
            plan.append(PlannedImage(len(plan), patient, follow_up, int(age), sex, split))
            age += float(rng.exponential(0.6))  # years between films
    return _both_splits(plan)


def _both_splits(plan: list[PlannedImage]) -> list[PlannedImage]:
    """With two or more patients, make sure neither list is empty (tiny sets)."""
    patients = sorted({p.patient_id for p in plan})
    splits = {p.split for p in plan}
    if len(patients) < 2 or len(splits) == 2:
        return plan
    # all in one split: send the last patient to test, or the first one to train_val
    move, to = (patients[-1], "test") if "train_val" in splits else (patients[0], "train_val")
    return [replace(p, split=to) if p.patient_id == move else p for p in plan]


def base_rates(rare_floor: float = 0.0) -> dict[str, float]:
    """BASE_RATE_ABNORMAL with every rate below `rare_floor` raised to it (teaching phantoms)."""
    return {label: max(rate, rare_floor) for label, rate in BASE_RATE_ABNORMAL.items()}


def sample_findings(
    rng: np.random.Generator, rates: dict[str, float] = BASE_RATE_ABNORMAL
) -> tuple[str, ...]:
    """The findings of one image, in ALL14 order; empty means "No Finding".

    `rates`: each finding's probability in an abnormal image before co-occurrence (`base_rates`).
    The number of random draws does not depend on the rates.
    """
    if rng.random() < NORMAL_FRACTION:
        return ()
    draws = rng.random(len(ALL14))
    found = {label for label, u in zip(ALL14, draws, strict=True) if u < rates[label]}
    if not found:
        weights = np.array([rates[label] for label in ALL14])
        found.add(ALL14[int(rng.choice(len(ALL14), p=weights / weights.sum()))])
    pulls = rng.random(len(CO_OCCURRENCE))
    for (given, then, p), u in zip(CO_OCCURRENCE, pulls, strict=True):
        if given in found and u < p:
            found.add(then)
    return tuple(label for label in ALL14 if label in found)
