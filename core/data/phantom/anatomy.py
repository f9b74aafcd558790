"""The normal chest of a phantom film: body, lungs, heart, mediastinum, diaphragm, bones, vessels.

Everything is drawn as X-ray attenuation (arbitrary units, about 0 for air and 1.6 for the thickest
soft tissue) in the patient frame of `frame.py`; `acquisition.py` turns attenuation into a film.
Image left is the patient's right, as on a frontal radiograph. The numbers are fractions of the image
width chosen by eye against NIH ChestX-ray14 films: lungs from v ~ 0.12 (apex) to ~ 0.7 (costophrenic
angles), a cardiothoracic ratio around 0.45, ten posterior ribs a side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.phantom.frame import Frame, ellipse_points, smooth_noise

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
    rng: np.random.Generator, build: PatientBuild, view: str, findings: tuple[str, ...]
) -> Anatomy:
    """This film's chest: the patient's build, the breath held, the view, and mass effects."""
    dome = build.dome_v + rng.normal(0.0, 0.012)
    dome_height = float(rng.uniform(0.06, 0.085))
    lucency, reach = 1.0, 1.0
    # Healthy hearts reach a CTR of 0.5 and enlarged ones start at 0.49: borderline films exist,
    # as with ChestX-ray14's report-mined labels, and the model must judge heart against chest.
    ctr = min(build.heart_ctr + rng.normal(0.0, 0.015), 0.5)
    if "Cardiomegaly" in findings:
        ctr = float(rng.uniform(0.49, 0.62))
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


# ---------------------------------------------------------------------------------------- layers
@dataclass
class AnatomyLayers:
    """A normal chest drawn on a frame; lesions are added to `density` and may edit `vessels`."""

    density: np.ndarray  # float32 (S, S): attenuation of everything but the lung vessels
    vessels: np.ndarray  # float32 (S, S): lung markings, already weighted by lung depth
    lung_depth: np.ndarray  # float32 (S, S) in [0, 1]: how much aerated lung lies along each ray
    aeration: np.ndarray  # float32 (S, S): attenuation the air in the lungs removes (>= 0)
    lung_field: np.ndarray  # bool (S, S): lung visible on the film (not behind heart/mediastinum)
    lung_side: np.ndarray  # int8 (S, S): -1 outside the lungs, RIGHT or LEFT inside a lung outline
    heart: np.ndarray  # bool (S, S): the cardiac silhouette


def lung_field_mask(anatomy: Anatomy, frame: Frame) -> np.ndarray:
    """Where lesions that sit in the lungs may lie: bool (S, S)."""
    lungs = frame.mask([lung_outline(anatomy, RIGHT), lung_outline(anatomy, LEFT)])
    covered = frame.mask([heart_outline(anatomy), mediastinum_outline(anatomy)])
    return lungs & ~covered


def render_anatomy(anatomy: Anatomy, frame: Frame, rng: np.random.Generator) -> AnatomyLayers:
    """Draw the normal chest of `anatomy` on `frame` as attenuation layers."""
    u, v = frame.grid
    size = frame.size
    x = np.abs(u - 0.5)

    # Body: an elliptic cylinder whose width follows the neck, shoulders and trunk.
    bw = anatomy.build.body_half_width
    ramp = _smoothstep(-0.12, 0.12, v)  # shoulders slope into the top corners
    axilla = _smoothstep(0.16, 0.4, v)
    half = 0.25 + (bw + 0.06 - 0.25) * ramp - 0.06 * axilla
    body = np.clip(1.0 - (x / half) ** 2, 0.0, 1.0) ** 0.7
    if anatomy.build.arms:  # upper arms hang beside the chest, a dark axilla between
        arm_x = bw + 0.075
        arm = np.clip(1.0 - ((x - arm_x) / 0.055) ** 2, 0.0, 1.0) ** 0.6
        body = np.maximum(body, 0.55 * arm * _smoothstep(0.02, 0.12, v))
    abdomen = _smoothstep(anatomy.dome_v[RIGHT] - 0.05, anatomy.dome_v[RIGHT] + 0.3, v)
    density = body * (1.2 + 0.4 * abdomen)

    # Lungs: aerated volume, thickest centrally, thin at the edges, partly hidden behind the heart.
    right, left = lung_outline(anatomy, RIGHT), lung_outline(anatomy, LEFT)
    mediastinum = frame.mask([mediastinum_outline(anatomy)])
    heart_poly = heart_outline(anatomy)
    heart = frame.mask([heart_poly])
    # The mediastinum cuts the lungs above the heart; behind the heart the lower lobes go on.
    cut = mediastinum & ~heart
    side_right = frame.mask([right]) & ~cut
    side_left = frame.mask([left]) & ~cut
    lungs = side_right | side_left
    depth = np.clip(frame.distance_inside(lungs) / 0.05, 0.0, 1.0) ** 0.6
    heart_soft = frame.blur(heart.astype(np.float32), 0.006)
    # The lower zones carry more soft tissue in front of and behind the lung.
    lower = _smoothstep(anatomy.apex_v + 0.25, anatomy.dome_v[RIGHT] + 0.05, v)
    depth = frame.blur(depth, 0.003) * (1.0 - 0.8 * heart_soft) * (1.0 - 0.2 * lower)
    lung_side = np.full((size, size), -1, np.int8)
    lung_side[side_right] = RIGHT
    lung_side[side_left] = LEFT
    # Air replaces most of the tissue along a ray through the full depth of a lung.
    aeration = np.minimum(LUNG_AIR * anatomy.lung_lucency * depth, 0.95) * density
    density -= aeration

    # Heart, great vessels, trachea and hila.
    heart_depth = np.clip(frame.distance_inside(heart) / 0.05, 0.0, 1.0) ** 0.5
    density += 0.05 * frame.blur(heart_depth, 0.003)
    density += 0.03 * frame.blur(mediastinum.astype(np.float32), 0.01)
    density -= 0.22 * _trachea(anatomy, frame)
    for hu, hv in hilum_points(anatomy):
        r2 = ((u - hu) / 0.035) ** 2 + ((v - hv) / 0.05) ** 2
        density += 0.16 * np.exp(-r2)

    density += _spine(anatomy, frame)
    below_domes = _smoothstep(anatomy.dome_v[RIGHT], anatomy.dome_v[RIGHT] + 0.1, v)
    dense = np.maximum(frame.blur((heart | mediastinum).astype(np.float32), 0.01), below_domes)
    density += _ribs_and_clavicles(anatomy, frame, dense)
    density += _soft_tissue_extras(anatomy, frame, rng)

    # Parenchymal texture and lung markings.
    texture = smooth_noise(rng, size, 16, octaves=3)
    density += 0.035 * texture * depth
    vessels = _vessel_tree(anatomy, frame, rng) * np.clip(depth * 1.6, 0.0, 1.0)

    return AnatomyLayers(
        density=density.astype(np.float32),
        vessels=vessels.astype(np.float32),
        lung_depth=depth.astype(np.float32),
        aeration=aeration.astype(np.float32),
        lung_field=lungs & ~heart & ~mediastinum,
        lung_side=lung_side,
        heart=heart,
    )


def _trachea(anatomy: Anatomy, frame: Frame) -> np.ndarray:
    carina_v = anatomy.heart_centre[1] - anatomy.heart_half[1] - 0.02
    (ru, rv), (lu, lv) = hilum_points(anatomy)
    airway = [
        np.array([(0.5, -0.05), (0.5, carina_v)]),
        np.array([(0.5, carina_v), (ru + 0.015, rv)]),
        np.array([(0.5, carina_v), (lu - 0.02, lv + 0.01)]),
    ]
    canvas = frame.strokes(airway[:1], 0.036)
    canvas = frame.strokes(airway[1:], 0.014, canvas, value=150)
    return frame.blur(canvas.astype(np.float32) / 255.0, 0.005)


def _spine(anatomy: Anatomy, frame: Frame) -> np.ndarray:
    """Vertebral column: bodies with end plates and paired pedicles, denser than soft tissue."""
    u, v = frame.grid
    out = np.zeros_like(u)
    # Only the columns the spine crosses are computed (a fifth of the image at most).
    cols = np.flatnonzero((np.abs(u - 0.5) < 0.045).any(axis=0))
    if cols.size == 0:
        return out
    band = slice(int(cols[0]), int(cols[-1]) + 1)
    dx, v = u[:, band] - 0.5, v[:, band]
    column = np.sqrt(np.clip(1.0 - (dx / 0.033) ** 2, 0.0, 1.0))
    period = anatomy.build.rib_spacing * 0.95
    phase = (v - anatomy.rib_v0) / period
    within = phase - np.floor(phase) - 0.5  # -0.5 .. 0.5, 0 = mid body
    disc = np.clip((np.abs(within) - 0.38) / 0.12, 0.0, 1.0)
    spine = column * (1.0 - 0.45 * disc)
    dy = within * period
    for side in (-1.0, 1.0):
        r = np.sqrt(((dx - side * 0.021) / 0.008) ** 2 + (dy / 0.011) ** 2)
        spine += 0.5 * np.exp(-(((r - 1.0) / 0.35) ** 2))
    out[:, band] = spine
    return 0.09 * frame.blur(out, 0.002)


RIBS_PER_SIDE = 10


def _bezier(points: np.ndarray, n: int) -> np.ndarray:
    """Cubic Bezier curves from control points (K, 4, 2), each sampled at n points: (K, n, 2)."""
    t = np.linspace(0.0, 1.0, n)[None, :, None]
    p0, p1, p2, p3 = (points[:, i, None, :] for i in range(4))
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def _rib_paths(anatomy: Anatomy, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Posterior arcs (10, 16, 2) and anterior courses (10, 12, 2) of one side's ribs.

    A posterior rib leaves the spine, arches upwards across the lung and bends down along the
    lateral chest wall; the anterior rib runs from there down and in towards the sternum.
    """
    k = np.arange(RIBS_PER_SIDE, dtype=np.float64)
    v0 = anatomy.rib_v0 + 0.045 + k * anatomy.build.rib_spacing
    reach = np.asarray(lateral_x(anatomy, side, v0 + 0.03)) + 0.008
    arch = np.where(k > 1, 0.06, 0.07)
    posterior = np.stack(
        [
            np.stack([np.full_like(v0, 0.02), v0], 1),
            np.stack([np.full_like(v0, 0.12), v0 - arch], 1),
            np.stack([reach - 0.03, v0 - 0.8 * arch], 1),
            np.stack([reach, v0 + 0.035], 1),
        ],
        1,
    )
    anterior = np.stack(
        [
            np.stack([reach, v0 + 0.035], 1),
            np.stack([reach - 0.03, v0 + 0.09], 1),
            np.stack([np.full_like(v0, 0.3), v0 + 0.14], 1),
            np.stack([0.13 + 0.012 * k, v0 + 0.2 + 0.006 * k], 1),
        ],
        1,
    )
    paths = []
    for controls, n in ((posterior, 16), (anterior, 12)):
        curve = _bezier(controls, n)
        curve[..., 0] = anatomy.to_u(side, curve[..., 0])
        paths.append(curve)
    return paths[0], paths[1]


def _ribs_and_clavicles(anatomy: Anatomy, frame: Frame, dense: np.ndarray) -> np.ndarray:
    sides = [_rib_paths(anatomy, side) for side in (RIGHT, LEFT)]
    posterior = np.concatenate([p for p, _ in sides])
    anterior = np.concatenate([a for _, a in sides])
    width = 0.032
    # The lateral bend is seen end-on and overlaps its neighbours: draw it fainter.
    body, bend = posterior[:, :13], posterior[:, 12:]
    outer = frame.strokes(bend, width, value=140)
    outer = frame.strokes(body, width, outer).astype(np.float32)
    inner = frame.strokes(body, width * 0.55).astype(np.float32)
    ribs = (outer - 0.35 * inner) / 255.0
    front = frame.strokes(anterior, width * 1.1).astype(np.float32) / 255.0

    clavicles = []
    for side in (RIGHT, LEFT):
        t = np.linspace(0.0, 1.0, 16)
        x = 0.05 + 0.42 * t
        v = anatomy.clavicle_v + 0.045 - 0.1 * t + 0.012 * np.sin(2 * np.pi * t)
        clavicles.append(np.stack([anatomy.to_u(side, x), v], 1))
    c_outer = frame.strokes(clavicles, 0.024).astype(np.float32)
    c_inner = frame.strokes(clavicles, 0.012).astype(np.float32)
    heads = [c[:3] for c in clavicles]
    c_outer = frame.strokes(heads, 0.034, c_outer.astype(np.uint8)).astype(np.float32)
    clav = (c_outer - 0.4 * c_inner) / 255.0

    ribs = 0.11 * frame.blur(ribs, 0.003) + 0.06 * frame.blur(front, 0.006)
    # Processed films show ribs crisply over the lungs and barely over mediastinum and abdomen.
    ribs *= 1.0 - 0.75 * dense
    return frame.blur(ribs + 0.11 * clav, 0.002)


def _soft_tissue_extras(anatomy: Anatomy, frame: Frame, rng: np.random.Generator) -> np.ndarray:
    """Scapulae, breast shadows, gastric and bowel gas under the domes."""
    u, v = frame.grid
    extra = np.zeros_like(u)
    # Scapulae: over the lateral upper lungs on AP films, mostly rotated clear on PA films.
    inset = 0.05 if anatomy.view == "AP" else 0.0
    for side in (RIGHT, LEFT):
        scapula = ellipse_points(
            (anatomy.to_u(side, anatomy.lung_half_width + 0.03 - inset), 0.27),
            (0.05, 0.14),
            0.25 if side == RIGHT else -0.25,
        )
        extra += 0.06 * frame.blur(frame.fill([scapula]), 0.01)
    if anatomy.build.breast > 0:
        for side in (RIGHT, LEFT):
            cu = anatomy.to_u(side, 0.29)
            r = np.sqrt(((u - cu) / 0.15) ** 2 + ((v - anatomy.dome_v[side] + 0.04) / 0.12) ** 2)
            extra += 0.14 * anatomy.build.breast * np.sqrt(np.clip(1 - r * r, 0.0, 1.0))
    bowel = np.clip(smooth_noise(rng, frame.size, 14) - 1.0, 0.0, 0.5)
    extra -= 0.15 * bowel * _smoothstep(anatomy.dome_v[LEFT] + 0.08, anatomy.dome_v[LEFT] + 0.2, v)
    if anatomy.stomach_bubble:
        bubble = ellipse_points((0.5 + 0.14, anatomy.dome_v[LEFT] + 0.06), (0.05, 0.025))
        extra -= 0.2 * frame.fill([bubble])
    return frame.blur(extra, 0.004)


def _vessel_tree(anatomy: Anatomy, frame: Frame, rng: np.random.Generator) -> np.ndarray:
    """Branching pulmonary vessels from each hilum, tapering towards the periphery."""
    canvas = np.zeros((frame.size, frame.size), np.float32)
    levels = 5
    for side, (hu, hv) in zip((RIGHT, LEFT), hilum_points(anatomy), strict=True):
        n_roots = 5
        # angles in image terms (0 = towards image right, pi/2 = down)
        angles = np.linspace(-np.pi * 0.4, np.pi * 0.4, n_roots) + rng.normal(0, 0.12, n_roots)
        if side == RIGHT:
            angles = np.pi - angles
        starts = np.tile([hu, hv], (n_roots, 1))
        length, width = 0.06 * anatomy.vessel_reach, 0.012
        for _ in range(levels):
            n = len(angles)
            seg_len = length * rng.uniform(0.6, 1.4, n)
            ends = starts + np.stack([np.cos(angles), np.sin(angles)], 1) * seg_len[:, None]
            layer = frame.strokes(np.stack([starts, ends], 1), width).astype(np.float32) / 255.0
            canvas = np.maximum(canvas, layer * (width / 0.012) ** 0.8)
            spread = rng.uniform(0.3, 0.7, n)
            angles = np.concatenate([angles - spread, angles + spread * rng.uniform(0.5, 1.0, n)])
            angles += rng.normal(0, 0.15, angles.shape)
            starts = np.concatenate([ends, ends])
            length *= 0.78
            width *= 0.68
    return frame.blur(canvas, 0.002)


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
