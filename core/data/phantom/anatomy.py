"""The geometry of a phantom chest: patient build, per-film anatomy, and the outlines of lungs, heart
and mediastinum in the patient frame of `frame.py`.

`layers.py` draws them (with the bones of `skeleton.py`) as X-ray attenuation (arbitrary units, about
0 for air and 1.6 for the thickest soft tissue); `acquisition.py` turns attenuation into a film.
Image left is the patient's right, as on a frontal radiograph. The numbers are fractions of the image
width chosen by eye against NIH ChestX-ray14 films: lungs from v ~ 0.12 (apex) to ~ 0.7 (costophrenic
angles), a cardiothoracic ratio around 0.45, ten posterior ribs a side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_attention.core.data.phantom.frame import Frame

RIGHT, LEFT = 0, 1  # the patient's sides: RIGHT is drawn on the image's left
LUNG_AIR = 0.78  # share of the body's attenuation removed by a full depth of aerated lung


@dataclass(frozen=True)
class PatientBuild:
    """What stays the same on every film of one patient (units: image widths)."""

    sex: str
    body_half_width: float  # skin to midline at the lung bases
    lung_half_width: float  # inner rib margin to midline (half the thoracic width)
    apex_v: float  # top of the lung apices
    dome_v: float  # right hemidiaphragm's peak at full inspiration
    heart_ctr: float  # cardiothoracic ratio when healthy
    rib_spacing: float  # vertical distance between posterior ribs at the spine
    breast: float  # 0 (none) .. 1 (large breast shadows)
    arms: bool  # upper arms alongside the chest, inside the field


@dataclass(frozen=True)
class Anatomy:
    """The geometry of one film's normal chest (may be altered by the findings it carries)."""

    build: PatientBuild
    view: str  # "PA" or "AP"
    lung_half_width: float
    medial_x: float  # half-width of the mediastinum where the lungs meet it
    apex_v: float
    dome_v: tuple[float, float]  # (right, left) peak of each hemidiaphragm
    dome_height: float  # how far each dome rises above its costophrenic angle
    heart_centre: tuple[float, float]
    heart_half: tuple[float, float]  # (half-width, half-height) before the diaphragm clips it
    heart_skew: float  # lower heart shifted to the patient's left: apex down and out
    clavicle_v: float
    rib_v0: float  # first posterior rib at the spine
    lung_lucency: float  # 1 normal; > 1 hyperinflated (emphysema)
    vessel_reach: float  # 1 normal; < 1 fewer peripheral markings
    stomach_bubble: bool

    def cp_v(self, side: int) -> float:
        """Height of the costophrenic angle (the lowest, most lateral point of a lung)."""
        return self.dome_v[side] + self.dome_height

    def to_u(self, side: int, x: np.ndarray | float) -> np.ndarray | float:
        """Distance from the midline (x) -> image coordinate u on the given side."""
        return 0.5 - x if side == RIGHT else 0.5 + x


def sample_build(rng: np.random.Generator, sex: str) -> PatientBuild:
    """A patient's body habitus."""
    female = sex == "F"
    lung = float(rng.uniform(0.395, 0.435) - 0.01 * female)
    return PatientBuild(
        sex=sex,
        body_half_width=lung + float(rng.uniform(0.06, 0.1)),
        lung_half_width=lung,
        apex_v=float(rng.uniform(0.075, 0.11)),
        dome_v=float(rng.uniform(0.6, 0.66)),
        heart_ctr=float(rng.uniform(0.39, 0.48)),
        rib_spacing=float(rng.uniform(0.058, 0.066)),
        breast=float(rng.uniform(0.4, 1.0)) if female else 0.0,
        arms=bool(rng.random() < 0.5),
    )


def sample_anatomy(
    rng: np.random.Generator,
    build: PatientBuild,
    view: str,
    findings: tuple[str, ...],
    enlarged_ctr: tuple[float, float] = (0.49, 0.62),
) -> Anatomy:
    """This film's chest: the patient's build, the breath held, the view, and mass effects.

    `enlarged_ctr`: the cardiothoracic ratio range of a heart with Cardiomegaly (PA view).
    """
    dome = build.dome_v + rng.normal(0.0, 0.012)
    dome_height = float(rng.uniform(0.06, 0.085))
    lucency, reach = 1.0, 1.0
    # Healthy hearts reach a CTR of 0.5 and enlarged ones start at 0.49: borderline films exist,
    # as with ChestX-ray14's report-mined labels, and the model must judge heart against chest.
    ctr = min(build.heart_ctr + rng.normal(0.0, 0.015), 0.5)
    if "Cardiomegaly" in findings:
        ctr = float(rng.uniform(*enlarged_ctr))
    if view == "AP":  # supine portable film: shallower breath, heart magnified
        dome += 0.03
        ctr *= 1.08
    if "Emphysema" in findings:  # hyperinflation: low flat domes, dark lungs, sparse markings
        dome += float(rng.uniform(0.02, 0.05))
        dome_height *= float(rng.uniform(0.5, 0.8))
        lucency = float(rng.uniform(1.05, 1.18))
        reach = 0.85
    if "Fibrosis" in findings:  # volume loss
        dome -= 0.03
    left_dome = dome + float(rng.uniform(0.015, 0.035))
    half_w = build.lung_half_width
    medial_x = float(rng.uniform(0.065, 0.078))
    heart_w = ctr * half_w
    knob_v = build.apex_v + 0.2
    top, bottom = knob_v + 0.065, left_dome + 0.035
    heart_h = (bottom - top) / 1.7  # the diaphragm hides the lowest 30% of the ellipse
    right_border = medial_x + 0.025 + 0.4 * max(heart_w - 0.165, 0.0)
    return Anatomy(
        build=build,
        view=view,
        lung_half_width=half_w,
        medial_x=medial_x,
        apex_v=build.apex_v + (0.015 if view == "AP" else 0.0),
        dome_v=(float(dome), float(left_dome)),
        dome_height=dome_height,
        heart_centre=(0.5 - right_border + heart_w, top + heart_h),
        heart_half=(heart_w, heart_h),
        heart_skew=float(rng.uniform(0.1, 0.22)),
        clavicle_v=float(rng.uniform(0.13, 0.16) - (0.03 if view == "AP" else 0.0)),
        rib_v0=build.apex_v + float(rng.uniform(0.0, 0.015)),
        lung_lucency=lucency,
        vessel_reach=reach,
        stomach_bubble=bool(rng.random() < 0.7),
    )


# ----------------------------------------------------------------------------------------- shapes
APEX_SHARPNESS = 2.2  # superellipse exponent of the lateral lung border


def lateral_x(anatomy: Anatomy, side: int, v: np.ndarray | float) -> np.ndarray | float:
    """Distance from the midline to the lung's lateral border at height v."""
    x0 = anatomy.medial_x + 0.3 * (anatomy.lung_half_width - anatomy.medial_x)
    reach = anatomy.lung_half_width - x0
    height = anatomy.cp_v(side) - anatomy.apex_v
    t = np.clip((anatomy.cp_v(side) - np.asarray(v)) / height, 0.0, 1.0)
    return x0 + reach * (1.0 - t**APEX_SHARPNESS) ** (1.0 / APEX_SHARPNESS)


def lung_outline(anatomy: Anatomy, side: int) -> np.ndarray:
    """One lung field as a closed polygon (N, 2) in the patient frame.

    Lateral border a superellipse from the costophrenic angle to the apex, a rounded medial apex,
    a straight medial border along the mediastinum and the diaphragm's dome as the base.
    """
    xm, xl = anatomy.medial_x, anatomy.lung_half_width
    va, vcp = anatomy.apex_v, anatomy.cp_v(side)
    x0 = xm + 0.3 * (xl - xm)
    p = APEX_SHARPNESS
    theta = np.linspace(0.0, np.pi / 2, 28)
    lateral = np.stack(
        [x0 + (xl - x0) * np.cos(theta) ** (2 / p), vcp - (vcp - va) * np.sin(theta) ** (2 / p)], 1
    )
    cap_drop = 0.07
    theta = np.linspace(np.pi / 2, np.pi, 10)[1:]
    medial_cap = np.stack([x0 + (x0 - xm) * np.cos(theta), va + cap_drop * (1 - np.sin(theta))], 1)
    medial_base_v = anatomy.dome_v[side] + 0.025
    s = np.linspace(0.0, 1.0, 24)
    line_v = medial_base_v + (vcp - medial_base_v) * s
    bump = np.sin(np.pi * s) ** 0.8
    dome_rise = line_v[12] - anatomy.dome_v[side]
    dome = np.stack([xm + (xl - xm) * s, line_v - dome_rise * bump], 1)  # medial -> lateral
    x_v = np.vstack([lateral, medial_cap, dome[:-1]])
    return np.stack([anatomy.to_u(side, x_v[:, 0]), x_v[:, 1]], 1)


def heart_outline(anatomy: Anatomy) -> np.ndarray:
    """The cardiac silhouette (N, 2): a skewed ellipse resting on the left hemidiaphragm."""
    (uc, vc), (hw, hh) = anatomy.heart_centre, anatomy.heart_half
    t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    y = hh * np.sin(t)
    u = uc + hw * np.cos(t) + anatomy.heart_skew * y
    v = np.minimum(vc + y, anatomy.dome_v[LEFT] + 0.03)
    return np.stack([u, v], 1)


def mediastinum_outline(anatomy: Anatomy) -> np.ndarray:
    """Superior mediastinum with the aortic knob on the patient's left (N, 2)."""
    xm = anatomy.medial_x
    vc = anatomy.heart_centre[1]
    knob_v = anatomy.heart_centre[1] - anatomy.heart_half[1] - 0.065
    right = [(0.5 - 0.9 * xm, -0.1), (0.5 - xm, knob_v), (0.5 - xm, vc)]
    left = [
        (0.5 + xm + 0.07, vc),
        (0.5 + xm + 0.03, knob_v + 0.075),
        (0.5 + xm + 0.022, knob_v + 0.045),
        (0.5 + xm + 0.035, knob_v),
        (0.5 + xm + 0.01, knob_v - 0.045),
        (0.5 + 0.9 * xm, -0.1),
    ]
    return np.array(right + left, dtype=np.float64)


def hilum_points(anatomy: Anatomy) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where the pulmonary vessels leave the mediastinum, (right, left) in the patient frame."""
    top = anatomy.heart_centre[1] - anatomy.heart_half[1]
    return (0.5 - anatomy.medial_x - 0.025, top + 0.03), (
        0.5 + anatomy.medial_x + 0.035,
        top + 0.005,
    )


def lung_field_mask(anatomy: Anatomy, frame: Frame) -> np.ndarray:
    """Where lesions that sit in the lungs may lie: bool (S, S)."""
    lungs = frame.mask([lung_outline(anatomy, RIGHT), lung_outline(anatomy, LEFT)])
    covered = frame.mask([heart_outline(anatomy), mediastinum_outline(anatomy)])
    return lungs & ~covered
