"""The bones of a phantom film: vertebral column, posterior and anterior ribs, clavicles.

Drawn as attenuation in the patient frame (see `anatomy.py`), strokes anti-aliased on the frame.
"""

from __future__ import annotations

import numpy as np

from cxr_attention.core.data.phantom.anatomy import LEFT, RIGHT, Anatomy, lateral_x
from cxr_attention.core.data.phantom.frame import Frame


def spine(anatomy: Anatomy, frame: Frame) -> np.ndarray:
    """Vertebral column (S, S): bodies with end plates and paired pedicles, denser than tissue."""
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


def ribs_and_clavicles(anatomy: Anatomy, frame: Frame, dense: np.ndarray) -> np.ndarray:
    """Ribs and clavicles (S, S); `dense` in [0, 1] marks mediastinum and abdomen, where ribs fade."""
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
