"""A normal chest drawn on a frame as attenuation layers: body, lungs, heart, airways, bones, vessels.

`render_anatomy` composes the shapes of `anatomy.py` and the bones of `skeleton.py`; lesions are then
added by `lesions.py` and the film exposed by `acquisition.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_attention.core.data.phantom.anatomy import (
    LEFT,
    LUNG_AIR,
    RIGHT,
    Anatomy,
    heart_outline,
    hilum_points,
    lung_outline,
    mediastinum_outline,
)
from cxr_attention.core.data.phantom.frame import Frame, ellipse_points, smooth_noise, smoothstep
from cxr_attention.core.data.phantom.skeleton import ribs_and_clavicles, spine


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


def render_anatomy(anatomy: Anatomy, frame: Frame, rng: np.random.Generator) -> AnatomyLayers:
    """Draw the normal chest of `anatomy` on `frame` as attenuation layers."""
    u, v = frame.grid
    size = frame.size
    x = np.abs(u - 0.5)

    # Body: an elliptic cylinder whose width follows the neck, shoulders and trunk.
    bw = anatomy.build.body_half_width
    ramp = smoothstep(-0.12, 0.12, v)  # shoulders slope into the top corners
    axilla = smoothstep(0.16, 0.4, v)
    half = 0.25 + (bw + 0.06 - 0.25) * ramp - 0.06 * axilla
    body = np.clip(1.0 - (x / half) ** 2, 0.0, 1.0) ** 0.7
    if anatomy.build.arms:  # upper arms hang beside the chest, a dark axilla between
        arm_x = bw + 0.075
        arm = np.clip(1.0 - ((x - arm_x) / 0.055) ** 2, 0.0, 1.0) ** 0.6
        body = np.maximum(body, 0.55 * arm * smoothstep(0.02, 0.12, v))
    abdomen = smoothstep(anatomy.dome_v[RIGHT] - 0.05, anatomy.dome_v[RIGHT] + 0.3, v)
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
    lower = smoothstep(anatomy.apex_v + 0.25, anatomy.dome_v[RIGHT] + 0.05, v)
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

    density += spine(anatomy, frame)
    below_domes = smoothstep(anatomy.dome_v[RIGHT], anatomy.dome_v[RIGHT] + 0.1, v)
    dense = np.maximum(frame.blur((heart | mediastinum).astype(np.float32), 0.01), below_domes)
    density += ribs_and_clavicles(anatomy, frame, dense)
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
    extra -= 0.15 * bowel * smoothstep(anatomy.dome_v[LEFT] + 0.08, anatomy.dome_v[LEFT] + 0.2, v)
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
