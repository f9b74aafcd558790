"""The findings of ChestX-ray14 drawn into a phantom chest, each with its exact mask when localized.

Localized findings (Nodule, Mass, Effusion, Pneumothorax, Consolidation, Atelectasis, Infiltration,
Pneumonia) lie inside the visible lung fields and their masks are clipped to them; Cardiomegaly's mask
is the cardiac silhouette (the enlargement itself is made in `anatomy.sample_anatomy`). Diffuse
findings (Edema, Emphysema, Fibrosis, Pleural_Thickening, Hernia) change the film without a mask.
Contrasts are in attenuation units (aerated lung ~0.3, mediastinum ~1.2) and deliberately modest:
nodules 5-11 px across at 256 px, a few grey levels above the lung, must be learnable, not obvious.
Airspace disease (consolidation, pneumonia, infiltration, atelectasis, effusion) gives back part of
the attenuation the lung's air removed, so it is faint where the lung is thin, as on a real film.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from cxr_attention.core.data.phantom.anatomy import LEFT, RIGHT, Anatomy, hilum_points, lung_outline
from cxr_attention.core.data.phantom.frame import Frame, ellipse_points, smooth_noise
from cxr_attention.core.data.phantom.layers import AnatomyLayers

LOCALIZED: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
)


@dataclass
class LesionCanvas:
    """What findings draw on: extra attenuation, a gain on lung markings, and the masks."""

    anatomy: Anatomy
    frame: Frame
    layers: AnatomyLayers
    rng: np.random.Generator
    scale: float = 1.0  # multiplies lesions' sizes (see difficulty.py)
    density: np.ndarray = field(init=False)  # float32 (S, S), added to the chest's attenuation
    vessel_gain: np.ndarray = field(init=False)  # float32 (S, S), multiplies the lung markings
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # label -> bool (S, S)
    _field_distance: np.ndarray | None = None

    def __post_init__(self) -> None:
        size = self.frame.size
        self.density = np.zeros((size, size), np.float32)
        self.vessel_gain = np.ones((size, size), np.float32)

    @property
    def field_distance(self) -> np.ndarray:
        """Distance in pixels from each lung-field pixel to the field's edge."""
        if self._field_distance is None:
            lung = self.layers.lung_field.astype(np.uint8)
            self._field_distance = cv2.distanceTransform(lung, cv2.DIST_L2, 3)
        return self._field_distance

    def air(self, side: int) -> np.ndarray:
        """Attenuation the aerated lung of one side removes: what airspace disease gives back."""
        return self.layers.aeration * self.side_mask(side)

    def side_mask(self, side: int) -> np.ndarray:
        """Float coverage of one lung outline (behind the heart included), softened by a pixel."""
        return self.frame.blur((self.layers.lung_side == side).astype(np.float32), 0.003)

    def keep(self, label: str, mask: np.ndarray, fallback: tuple[float, float]) -> None:
        """Record a lung finding's mask, clipped to the lung field and never empty.

        On tiny images a lesion can miss every pixel centre; it then keeps the pixel under
        `fallback` (u, v) if that lies in the field, else the field's deepest pixel.
        """
        mask = mask & self.layers.lung_field
        if not mask.any():
            x, y = np.round(self.frame.to_pixels(np.array(fallback))).astype(int)
            size = self.frame.size
            if not (0 <= x < size and 0 <= y < size and self.layers.lung_field[y, x]):
                y, x = np.unravel_index(int(np.argmax(self.field_distance)), mask.shape)
            mask = np.zeros_like(mask)
            mask[y, x] = True
        self.masks[label] = self.masks.get(label, np.zeros_like(mask)) | mask

    def place(
        self,
        radius: float,
        weight: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ) -> tuple[float, float]:
        """A random centre (u, v) in the lung field, at least `radius` from its edge if possible.

        `weight(u, v)` in [0, 1] favours zones (rejection sampling).
        Falls back to the deepest point of the field when nothing fits (tiny images).
        """
        a = self.anatomy
        need = max(radius * self.frame.px_per_unit, 1.0)
        size = self.frame.size
        for _ in range(8):
            u = self.rng.uniform(0.5 - a.lung_half_width, 0.5 + a.lung_half_width, 64)
            v = self.rng.uniform(a.apex_v, max(a.cp_v(RIGHT), a.cp_v(LEFT)), 64)
            xy = np.round(self.frame.to_pixels(np.stack([u, v], 1))).astype(int)
            inside = np.all((xy >= 0) & (xy < size), axis=1)
            xy = np.clip(xy, 0, size - 1)
            ok = inside & (self.field_distance[xy[:, 1], xy[:, 0]] >= need)
            if weight is not None:
                ok &= self.rng.random(64) < weight(u, v)
            hits = np.flatnonzero(ok)
            if hits.size:
                return float(u[hits[0]]), float(v[hits[0]])
        y, x = np.unravel_index(int(np.argmax(self.field_distance)), self.field_distance.shape)
        inverse = cv2.invertAffineTransform(self.frame.matrix)
        return (
            float(inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2]),
            float(inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2]),
        )


# ----------------------------------------------------------------------------- helper profiles
def _sphere(d: np.ndarray) -> np.ndarray:
    """Projected thickness of a ball of radius 1 at normalised distance d from its centre."""
    return np.sqrt(np.clip(1.0 - d * d, 0.0, 1.0))


def _lower_zones(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.clip((v - 0.3) / 0.3, 0.15, 1.0)


def _blob_field(
    canvas: LesionCanvas,
    centre: tuple[float, float],
    axes: tuple[float, float],
    rough: float,
    cells: int,
) -> np.ndarray:
    """An irregular blob: a soft ellipse plus smooth noise, > 0.5 inside. float32 (S, S)."""
    u, v = canvas.frame.grid
    angle = canvas.rng.uniform(-0.6, 0.6)
    c, s = np.cos(angle), np.sin(angle)
    du, dv = u - centre[0], v - centre[1]
    r = np.sqrt(((c * du + s * dv) / axes[0]) ** 2 + ((-s * du + c * dv) / axes[1]) ** 2)
    noise = smooth_noise(canvas.rng, canvas.frame.size, cells, octaves=2)
    return (1.0 - 0.5 * r * r) + rough * 0.35 * noise


# ------------------------------------------------------------------------------ localized
def draw_nodule(canvas: LesionCanvas) -> None:
    """Small round, faint opacity: 2-4.5 % of the image width across."""
    rng = canvas.rng
    radius = rng.uniform(0.01, 0.022) * canvas.scale
    centre = canvas.place(radius * 1.2)
    u, v = canvas.frame.grid
    d = np.sqrt((u - centre[0]) ** 2 + (v - centre[1]) ** 2) / radius
    # A solid ball displaces lung: its contrast is a share of the air the lung removed there.
    contrast = rng.uniform(0.2, 0.45)
    air = canvas.layers.aeration
    canvas.density += contrast * canvas.frame.blur(_sphere(d), 0.002) * air
    canvas.keep("Nodule", d <= 1.0, centre)


def draw_mass(canvas: LesionCanvas) -> None:
    """Larger lobulated opacity, 6-12 % of the image width across."""
    rng = canvas.rng
    radius = rng.uniform(0.03, 0.06) * canvas.scale
    centre = canvas.place(radius * 1.1)
    u, v = canvas.frame.grid
    du, dv = u - centre[0], v - centre[1]
    theta = np.arctan2(dv, du)
    lobes = 1.0 + sum(
        rng.uniform(0.03, 0.1) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)
    )
    d = np.sqrt(du * du + dv * dv) / (radius * lobes)
    contrast = rng.uniform(0.35, 0.65)
    air = canvas.layers.aeration
    canvas.density += contrast * canvas.frame.blur(_sphere(d) ** 0.7, 0.003) * air
    canvas.keep("Mass", d <= 1.0, centre)


def draw_effusion(canvas: LesionCanvas) -> None:
    """Fluid at one lung base: a blunted costophrenic angle up to a basal meniscus."""
    rng, a = canvas.rng, canvas.anatomy
    side = RIGHT if rng.random() < 0.55 else LEFT
    u, v = canvas.frame.grid
    x = np.abs(u - 0.5)
    lateral = np.clip((x - a.medial_x) / (a.lung_half_width - a.medial_x), 0.0, 1.0)
    height = rng.uniform(0.04, 0.2) * canvas.scale  # above the costophrenic angle, at the wall
    dip = rng.uniform(0.06, 0.14)  # the meniscus: lowest medially
    level = a.cp_v(side) - height + dip * (1.0 - lateral) ** 1.2
    fluid = np.clip((v - level) / 0.08, 0.0, 1.0)
    # Fluid layers behind the lung: it hides the air of the base and the dome's edge.
    soft = canvas.frame.blur(fluid, 0.008)
    thick = rng.uniform(0.15, 0.3) * canvas.side_mask(side)
    canvas.density += soft * (rng.uniform(0.8, 1.0) * canvas.air(side) + thick)
    canvas.vessel_gain *= 1.0 - fluid * (canvas.layers.lung_side == side)
    mask = (v >= level) & (canvas.layers.lung_side == side)
    canvas.keep("Effusion", mask, (a.to_u(side, a.lung_half_width - 0.03), a.cp_v(side) - 0.03))


def draw_pneumothorax(canvas: LesionCanvas) -> None:
    """Air between lung and chest wall: an apical-lateral lucent rim without lung markings.

    The collapsed lung is the lung outline shrunk towards its medial base; a thin visceral pleural
    line marks its edge.
    """
    rng, a, frame = canvas.rng, canvas.anatomy, canvas.frame
    side = RIGHT if rng.random() < 0.5 else LEFT
    outline = lung_outline(a, side)
    anchor = np.array([a.to_u(side, a.medial_x), a.dome_v[side] + 0.02])
    shrink = 1.0 - (1.0 - rng.uniform(0.78, 0.94)) * canvas.scale  # the collapsed lung's size
    collapsed = anchor + shrink * (outline - anchor)
    lung = canvas.layers.lung_side == side
    rim = lung & ~frame.mask([collapsed])
    rim_soft = frame.blur(rim.astype(np.float32), 0.002)
    canvas.density -= rng.uniform(0.04, 0.1) * rim_soft
    canvas.vessel_gain *= 1.0 - rim_soft
    pleura = frame.strokes([np.vstack([collapsed, collapsed[:1]])], 0.004, value=255)
    canvas.density += rng.uniform(0.05, 0.12) * (pleura.astype(np.float32) / 255.0) * lung
    canvas.keep("Pneumothorax", rim, (a.to_u(side, a.lung_half_width - 0.01), a.apex_v + 0.15))


def draw_consolidation(canvas: LesionCanvas) -> None:
    """Dense, fairly homogeneous airspace opacity with irregular but sharp-ish margins."""
    rng = canvas.rng
    axes = (rng.uniform(0.04, 0.08) * canvas.scale, rng.uniform(0.035, 0.07) * canvas.scale)
    centre = canvas.place(min(axes) * 0.6, _lower_zones)
    blob = _blob_field(canvas, centre, axes, rough=1.0, cells=10) > 0.5
    side = _side_of(centre)
    soft = canvas.frame.blur(blob.astype(np.float32), 0.007)
    bronchi = 1.0 - 0.25 * np.clip(smooth_noise(canvas.rng, canvas.frame.size, 30), 0.0, 1.0)
    canvas.density += rng.uniform(0.5, 0.8) * soft * bronchi * canvas.air(side)
    canvas.keep("Consolidation", blob & (canvas.layers.lung_side == side), centre)


def draw_pneumonia(canvas: LesionCanvas) -> None:
    """Patchy, ill-defined airspace opacity, mostly in the lower zones."""
    rng = canvas.rng
    axes = (rng.uniform(0.05, 0.1) * canvas.scale, rng.uniform(0.05, 0.09) * canvas.scale)
    centre = canvas.place(min(axes) * 0.5, _lower_zones)
    field_ = _blob_field(canvas, centre, axes, rough=1.8, cells=14)
    side = _side_of(centre)
    patchy = np.clip((field_ - 0.35) / 0.4, 0.0, 1.0)
    soft = canvas.frame.blur(patchy, 0.008)
    canvas.density += rng.uniform(0.4, 0.7) * soft * canvas.air(side)
    canvas.keep("Pneumonia", (field_ > 0.5) & (canvas.layers.lung_side == side), centre)


def draw_infiltration(canvas: LesionCanvas) -> None:
    """Faint, hazy, patchy opacity over a lung zone."""
    rng = canvas.rng
    axes = (rng.uniform(0.06, 0.11) * canvas.scale, rng.uniform(0.06, 0.12) * canvas.scale)
    centre = canvas.place(min(axes) * 0.4)
    field_ = _blob_field(canvas, centre, axes, rough=1.5, cells=18)
    side = _side_of(centre)
    haze = np.clip((field_ - 0.3) / 0.5, 0.0, 1.0)
    soft = canvas.frame.blur(haze, 0.006)
    canvas.density += rng.uniform(0.2, 0.4) * soft * canvas.air(side)
    canvas.keep("Infiltration", (field_ > 0.5) & (canvas.layers.lung_side == side), centre)


def draw_atelectasis(canvas: LesionCanvas) -> None:
    """Plate-like (linear) or basal segmental collapse."""
    rng, frame = canvas.rng, canvas.frame
    if rng.random() < 0.6:
        length = rng.uniform(0.035, 0.07) * canvas.scale
        thick = rng.uniform(0.006, 0.014) * canvas.scale
        centre = canvas.place(thick * 2, _lower_zones)
        shape = ellipse_points(centre, (length, thick), rng.uniform(-0.35, 0.35), n=32)
        blur, contrast = 0.003, rng.uniform(0.3, 0.5)
    else:
        size = rng.uniform(0.04, 0.07) * canvas.scale
        centre = canvas.place(size * 0.5, lambda u, v: np.clip((v - 0.45) / 0.15, 0.0, 1.0))
        angle = rng.uniform(0, 2 * np.pi)
        corners = [
            (
                centre[0] + size * np.cos(angle + k * 2.1),
                centre[1] + 0.8 * size * np.sin(angle + k * 2.1),
            )
            for k in range(3)
        ]
        shape = np.array(corners)
        blur, contrast = 0.006, rng.uniform(0.35, 0.6)
    region = frame.mask([shape])
    side = _side_of(centre)
    canvas.density += contrast * frame.blur(region.astype(np.float32), blur) * canvas.air(side)
    canvas.keep("Atelectasis", region & (canvas.layers.lung_side == side), centre)


def draw_cardiomegaly(canvas: LesionCanvas) -> None:
    """The heart was enlarged when the anatomy was drawn (CTR 0.49-0.62); its mask is the heart."""
    canvas.masks["Cardiomegaly"] = canvas.layers.heart.copy()


# -------------------------------------------------------------------------------- diffuse
def draw_edema(canvas: LesionCanvas) -> None:
    """Bilateral perihilar haze, upper-lobe vessel prominence and septal (Kerley B) lines."""
    rng, a, frame = canvas.rng, canvas.anatomy, canvas.frame
    u, v = frame.grid
    depth = canvas.layers.lung_depth
    haze = np.zeros_like(u)
    for hu, hv in hilum_points(a):
        haze += np.exp(-(((u - hu) / 0.13) ** 2 + ((v - hv) / 0.16) ** 2))
    canvas.density += rng.uniform(0.06, 0.16) * haze * np.clip(depth * 2.0, 0.0, 1.0)
    canvas.vessel_gain *= 1.0 + 0.4 * np.clip((0.45 - v) / 0.2, 0.0, 1.0)
    lines = []
    for side in (RIGHT, LEFT):
        for _ in range(int(rng.integers(3, 8))):
            vv = a.cp_v(side) - rng.uniform(0.02, 0.12)
            edge = a.lung_half_width - 0.005
            length = rng.uniform(0.015, 0.03)
            lines.append(np.array([(a.to_u(side, edge), vv), (a.to_u(side, edge - length), vv)]))
    kerley = frame.strokes(lines, 0.003).astype(np.float32) / 255.0
    canvas.density += 0.12 * kerley * (canvas.layers.lung_side >= 0)


def draw_emphysema(canvas: LesionCanvas) -> None:
    """Hyperinflation is in the anatomy (dark lungs, flat low domes); add a few apical bullae."""
    rng, a, frame = canvas.rng, canvas.anatomy, canvas.frame
    u, v = frame.grid
    for _ in range(int(rng.integers(0, 3))):
        r = rng.uniform(0.02, 0.045) * canvas.scale
        side = RIGHT if rng.random() < 0.5 else LEFT
        cu = a.to_u(side, rng.uniform(0.15, a.lung_half_width - r))
        cv = a.apex_v + rng.uniform(0.05, 0.15)
        d = np.sqrt((u - cu) ** 2 + (v - cv) ** 2) / r
        inside = (canvas.layers.lung_side >= 0) & (d < 1.0)
        canvas.density -= 0.05 * frame.blur(inside.astype(np.float32), 0.004)
        canvas.vessel_gain *= 1.0 - inside
        canvas.density += 0.03 * np.exp(-(((d - 1.0) / 0.06) ** 2)) * (canvas.layers.lung_side >= 0)


def draw_fibrosis(canvas: LesionCanvas) -> None:
    """Coarse reticular (net-like) opacities, peripheral and basal; volume loss is in the anatomy."""
    rng, frame = canvas.rng, canvas.frame
    u, v = frame.grid
    lungs = canvas.layers.lung_side >= 0
    edge = frame.distance_inside(lungs)
    where = np.clip(1.0 - edge / 0.1, 0.0, 1.0) * np.clip((v - 0.3) / 0.3, 0.2, 1.0) * lungs
    noise = smooth_noise(rng, frame.size, 28, octaves=1)
    net = np.exp(-((noise / 0.22) ** 2))  # thin ridges along the noise's zero crossings
    canvas.density += rng.uniform(0.12, 0.22) * frame.blur(net, 0.0015) * where


def draw_pleural_thickening(canvas: LesionCanvas) -> None:
    """A smooth band of soft tissue along the lateral chest wall or over an apex."""
    rng, a, frame = canvas.rng, canvas.anatomy, canvas.frame
    u, v = frame.grid
    lungs = canvas.layers.lung_side >= 0
    edge = frame.distance_inside(lungs)
    width = rng.uniform(0.008, 0.018) * canvas.scale
    band = np.clip(1.0 - edge / width, 0.0, 1.0) * lungs
    sides = [RIGHT, LEFT] if rng.random() < 0.4 else [RIGHT if rng.random() < 0.5 else LEFT]
    region = np.zeros_like(u)
    for side in sides:
        on_side = canvas.layers.lung_side == side
        if rng.random() < 0.5:  # apical cap
            region += on_side * np.clip((a.apex_v + 0.09 - v) / 0.03, 0.0, 1.0)
        else:  # lateral wall
            lateral = np.abs(u - 0.5) > 0.2
            lo, hi = sorted(rng.uniform(a.apex_v + 0.08, a.cp_v(side), 2))
            region += on_side * lateral * ((v > lo - 0.05) & (v < hi + 0.05))
    canvas.density += rng.uniform(0.2, 0.35) * frame.blur(band * region, 0.003)


def draw_hernia(canvas: LesionCanvas) -> None:
    """Hiatal hernia: a round retrocardiac opacity with an air-fluid level."""
    rng, a, frame = canvas.rng, canvas.anatomy, canvas.frame
    u, v = frame.grid
    cu = 0.5 + rng.uniform(-0.01, 0.05)
    cv = a.dome_v[LEFT] - rng.uniform(0.02, 0.06)
    rx, ry = rng.uniform(0.045, 0.07) * canvas.scale, rng.uniform(0.035, 0.05) * canvas.scale
    d = np.sqrt(((u - cu) / rx) ** 2 + ((v - cv) / ry) ** 2)
    canvas.density += 0.22 * frame.blur(_sphere(d), 0.003)
    gas = (d < 0.92) & (v < cv - rng.uniform(0.0, 0.4) * ry)
    canvas.density -= 0.3 * frame.blur(gas.astype(np.float32), 0.002)


def _side_of(point: tuple[float, float]) -> int:
    return RIGHT if point[0] < 0.5 else LEFT


PAINTERS: dict[str, Callable[[LesionCanvas], None]] = {
    "Atelectasis": draw_atelectasis,
    "Cardiomegaly": draw_cardiomegaly,
    "Effusion": draw_effusion,
    "Infiltration": draw_infiltration,
    "Mass": draw_mass,
    "Nodule": draw_nodule,
    "Pneumonia": draw_pneumonia,
    "Pneumothorax": draw_pneumothorax,
    "Consolidation": draw_consolidation,
    "Edema": draw_edema,
    "Emphysema": draw_emphysema,
    "Fibrosis": draw_fibrosis,
    "Pleural_Thickening": draw_pleural_thickening,
    "Hernia": draw_hernia,
}
