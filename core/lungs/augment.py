"""Training augmentation for the lung segmenter: the films it will meet, drawn from the ones it has.

The outlined films it learns from are adults' films of two centres, squashed to squares, with
mostly clear lungs. The films it must serve are padded rather than squashed, come from other
machines, carry bands and markers, and, above all, have dense lungs: a consolidation or an
effusion is still lung field (the mask is anatomical), and a segmenter that cuts it out makes a
map that rightly finds the pneumonia look as if it peaked outside the lungs. So every training film
may be:

- re-proportioned and padded (`reframe`): the true aspect ratio comes back, the padding is black;
- moved (`move`): rotation, scale and shift of film and mask together;
- opacified (`opacify`): consolidations, an effusion, a diffuse haze or a whited-out lung painted
  inside the lung field, at soft-tissue brightness, while the mask stays what it was;
- marked (`mark`): a black band along one edge, a text marker in a corner;
- exposed differently (`expose`): gamma, contrast, blur and noise.

Everything works on one (S, S) uint8 film and its bool mask with numpy and OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np

MARKERS = ("R", "L", "PA", "AP", "ERECT", "PORTABLE", "SUPINE")


def reframe(film: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
    """Stretch one axis by 0.8-1.25 and pad back to the square with black, centred."""
    size = film.shape[0]
    ratio = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    h, w = (size, round(size / ratio)) if ratio > 1 else (round(size * ratio), size)
    film = cv2.resize(film, (w, h), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    top, left = (size - h) // 2, (size - w) // 2
    out_f = np.zeros((size, size), np.uint8)
    out_m = np.zeros((size, size), bool)
    out_f[top : top + h, left : left + w] = film
    out_m[top : top + h, left : left + w] = mask
    return out_f, out_m


def move(film: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
    """Rotate by up to 8 degrees, scale by 0.85-1.12, shift by up to 6 % (film and mask alike)."""
    size = film.shape[0]
    matrix = cv2.getRotationMatrix2D(
        (size / 2, size / 2), float(rng.uniform(-8, 8)), float(rng.uniform(0.85, 1.12))
    )
    matrix[:, 2] += rng.uniform(-0.06, 0.06, 2) * size
    film = cv2.warpAffine(film, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    moved = cv2.warpAffine(
        mask.astype(np.uint8) * 255, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0
    )
    return film, moved >= 128


def _smooth_field(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Low-frequency noise in [0, 1]."""
    field = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def _sides(mask: np.ndarray) -> list[np.ndarray]:
    """The mask's halves left and right of its own centre (one lung each on a frontal film)."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return []
    middle = (cols[0] + cols[-1]) // 2
    left, right = mask.copy(), mask.copy()
    left[:, middle:] = False
    right[:, :middle] = False
    return [side for side in (left, right) if side.any()]


def opacity_shapes(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Where and how dense the painted opacities are: float (S, S) in [0, 1], 0 outside `mask`."""
    size = mask.shape[0]
    density = np.zeros(mask.shape, np.float32)
    sides = _sides(mask)
    if not sides:
        return density
    kind = rng.choice(["consolidation", "effusion", "haze", "whiteout"], p=[0.45, 0.25, 0.2, 0.1])
    if kind == "consolidation":
        for _ in range(int(rng.integers(1, 4))):
            field = _smooth_field(rng, size, size / rng.uniform(8, 16))
            blob = (field > rng.uniform(0.55, 0.8)).astype(np.float32)
            density = np.maximum(density, blob * rng.uniform(0.45, 1.0))
    elif kind == "effusion":
        side = sides[int(rng.integers(len(sides)))]
        rows = np.flatnonzero(side.any(axis=1))
        cols = np.flatnonzero(side.any(axis=0))
        level = rows[0] + rng.uniform(0.5, 0.9) * (rows[-1] - rows[0])
        yy, xx = np.mgrid[:size, :size].astype(np.float32)
        centre = (cols[0] + cols[-1]) / 2
        lateral = np.abs(xx - centre) / max(1.0, (cols[-1] - cols[0]) / 2)
        meniscus = level - 0.12 * (rows[-1] - rows[0]) * lateral**2  # higher at the chest wall
        density = np.clip((yy - meniscus) / (0.04 * size), 0, 1) * side * rng.uniform(0.6, 1.0)
    elif kind == "haze":
        field = _smooth_field(rng, size, size / 10)
        density = (0.4 + 0.6 * field) * rng.uniform(0.25, 0.55)
    else:
        side = sides[int(rng.integers(len(sides)))]
        density = side.astype(np.float32) * rng.uniform(0.7, 1.0)
    soft = cv2.GaussianBlur(density.astype(np.float32), (0, 0), size / 90)
    return np.clip(soft, 0, 1) * mask


def opacify(film: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The film with opacities painted in its lung field, towards soft-tissue brightness."""
    density = opacity_shapes(mask, rng)
    if not density.any():
        return film
    values = film.astype(np.float32)
    body = values[values > 10]
    tissue = float(np.percentile(body, rng.uniform(75, 92))) if body.size else 200.0
    texture = 1.0 + 0.08 * (_smooth_field(rng, film.shape[0], 2.0) - 0.5)
    painted = values * (1 - density) + np.maximum(values, tissue * texture) * density
    return np.clip(painted, 0, 255).astype(np.uint8)


def mark(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A black band along one edge and/or a white text marker in a corner."""
    film = film.copy()
    size = film.shape[0]
    if rng.random() < 0.4:
        depth = int(rng.uniform(0.03, 0.12) * size)
        edge = int(rng.integers(4))
        if edge == 0:
            film[-depth:] = 0
        elif edge == 1:
            film[:depth] = 0
        elif edge == 2:
            film[:, :depth] = 0
        else:
            film[:, -depth:] = 0
    if rng.random() < 0.5:
        text = str(rng.choice(MARKERS))
        scale = float(rng.uniform(0.3, 0.8)) * size / 256
        corner = (int(rng.uniform(0.02, 0.7) * size), int(rng.uniform(0.06, 0.15) * size))
        if rng.random() < 0.5:
            corner = (corner[0], size - corner[1] // 2)
        cv2.putText(film, text, corner, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1 + int(scale))
    return film


def expose(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gamma 0.6-1.6, contrast 0.75-1.3 about the mean, sometimes a blur, always a little noise."""
    values = film.astype(np.float32) / 255.0
    values = values ** float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
    values = (values - values.mean()) * rng.uniform(0.75, 1.3) + values.mean()
    if rng.random() < 0.3:
        values = cv2.GaussianBlur(values, (0, 0), float(rng.uniform(0.5, 1.5)))
    values += rng.normal(0, rng.uniform(0.0, 0.03), values.shape).astype(np.float32)
    return (np.clip(values, 0, 1) * 255).astype(np.uint8)


def augment_pair(
    film: np.ndarray, mask: np.ndarray, rng: np.random.Generator, opacity: float = 0.6
) -> tuple[np.ndarray, np.ndarray]:
    """One training pair made new: reframed (half the time), moved, opacified (with probability
    `opacity`), marked and exposed."""
    if rng.random() < 0.5:
        film, mask = reframe(film, mask, rng)
    film, mask = move(film, mask, rng)
    if rng.random() < opacity:
        film = opacify(film, mask, rng)
    film = mark(film, rng)
    return expose(film, rng), mask
