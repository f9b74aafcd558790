"""One phantom film from its plan: findings, view, anatomy, lesions, exposure, masks and boxes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_attention.core.data.phantom.acquisition import (
    Acquisition,
    expose,
    make_frame,
    sample_acquisition,
    sample_view,
)
from cxr_attention.core.data.phantom.anatomy import Anatomy, sample_anatomy, sample_build
from cxr_attention.core.data.phantom.casemix import (
    PATIENT_STREAM,
    PlannedImage,
    base_rates,
    sample_findings,
)
from cxr_attention.core.data.phantom.difficulty import DEFAULT_DIFFICULTY, Difficulty
from cxr_attention.core.data.phantom.difficulty import difficulty as as_difficulty
from cxr_attention.core.data.phantom.layers import render_anatomy
from cxr_attention.core.data.phantom.lesions import PAINTERS, LesionCanvas
from cxr_attention.core.labels import ALL14

# Lung markings' share of attenuation (vessels are drawn in [0, 1] in anatomy.py).
VESSEL_CONTRAST = 0.14


@dataclass(frozen=True)
class PhantomCase:
    """A rendered phantom film with its ground truth.

    image: uint8 (S, S), 0 = black; masks: label -> bool (S, S) for the localized findings present;
    lung_field: bool (S, S), the visible lung where lung findings must lie; boxes: label ->
    (x, y, w, h) in pixels of this image (the masks' bounding boxes).
    """

    plan: PlannedImage
    findings: tuple[str, ...]  # in ALL14 order; empty = No Finding
    view: str
    image: np.ndarray
    masks: dict[str, np.ndarray]
    lung_field: np.ndarray
    heart: np.ndarray
    anatomy: Anatomy
    acquisition: Acquisition

    @property
    def boxes(self) -> dict[str, tuple[int, int, int, int]]:
        return {label: mask_box(mask) for label, mask in self.masks.items()}


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x, y, w, h) in pixels of a non-empty bool mask; w, h count pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def patient_rng(seed: int, patient_id: int) -> np.random.Generator:
    """The generator of a patient's build, shared by all their films."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(PATIENT_STREAM, patient_id))
    )


def render_case(
    plan: PlannedImage,
    size: int,
    seed: int,
    lesions: bool = True,
    difficulty: str | Difficulty = DEFAULT_DIFFICULTY,
) -> PhantomCase:
    """Draw one film. Depends only on (plan, size, seed): the image's own generator is
    `np.random.default_rng([seed, plan.index])`, the patient's build comes from the patient's.

    `difficulty` ("teaching" or "research", see difficulty.py) sets how visible the findings are.
    `lesions=False` draws the film's lesion-free twin: the same patient, view, exposure and noise,
    with nothing the findings paint (masks are still returned, to say where the lesions were).
    What a finding does to the anatomy itself stays: the enlarged heart of Cardiomegaly, the
    hyperinflation of Emphysema, the volume loss of Fibrosis. A model that still scores a
    finding on the twins has learnt something other than its lesion.
    """
    setting = as_difficulty(difficulty)
    rng = np.random.default_rng([seed, plan.index])
    build = sample_build(patient_rng(seed, plan.patient_id), plan.sex)
    findings = sample_findings(rng, base_rates(setting.rare_floor))
    view = sample_view(rng, abnormal=bool(findings))
    acquisition = sample_acquisition(rng, view)
    anatomy = sample_anatomy(rng, build, view, findings, setting.enlarged_ctr)
    frame = make_frame(acquisition, size)
    layers = render_anatomy(anatomy, frame, rng)
    canvas = LesionCanvas(anatomy, frame, layers, rng, scale=setting.lesion_scale)
    for label in findings:
        PAINTERS[label](canvas)
    if lesions:
        attenuation = layers.density + setting.lesion_contrast * canvas.density
        attenuation += VESSEL_CONTRAST * layers.vessels * canvas.vessel_gain
    else:  # the painters ran all the same, so the noise drawn next is the same
        attenuation = layers.density + VESSEL_CONTRAST * layers.vessels
    image = expose(attenuation, acquisition, frame, rng)
    masks = {label: canvas.masks[label] for label in ALL14 if label in canvas.masks}
    return PhantomCase(
        plan, findings, view, image, masks, layers.lung_field, layers.heart, anatomy, acquisition
    )
