"""The drawing frame: from the patient's normalised coordinates to the pixels of one image.

Anatomy and lesions are described in a patient frame (u, v) in [0, 1] x [0, 1]: u runs from the
image's left (the patient's right on a frontal film) to its right, v from top to bottom. A `Frame`
maps that frame onto a square image of `size` pixels with the acquisition's slight rotation, scale
and shift, so that shapes are drawn once, exactly, in their final place (no resampling of masks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

SUBPIXEL_BITS = 4  # OpenCV's fixed-point `shift`: polygon vertices carry 1/16 pixel


@dataclass
class Frame:
    """An affine map patient frame -> pixels, plus helpers to draw in it.

    size: image side in pixels; rotation in radians (counter-clockwise on screen); scale around the
    centre (1 = the patient frame fills the image); shift in image widths.
    """

    size: int
    rotation: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    matrix: np.ndarray = field(init=False)  # (2, 3): [x, y] = matrix @ [u, v, 1], in pixels

    def __post_init__(self) -> None:
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        linear = self.size * self.scale * np.array([[c, s], [-s, c]])
        centre = np.array([0.5, 0.5])
        offset = self.size * (centre + np.asarray(self.shift)) - linear @ centre - 0.5
        self.matrix = np.hstack([linear, offset[:, None]])

    @property
    def px_per_unit(self) -> float:
        """Pixels per unit of the patient frame (lengths, radii, blur sizes)."""
        return float(self.size * self.scale)

    @cached_property
    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(U, V): the patient-frame coordinates of every pixel centre, each float32 (size, size)."""
        inverse = cv2.invertAffineTransform(self.matrix)
        ys, xs = np.mgrid[0 : self.size, 0 : self.size].astype(np.float32)
        u = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
        v = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
        return u.astype(np.float32), v.astype(np.float32)

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Patient-frame points (..., 2) -> pixel coordinates (..., 2), float."""
        points = np.asarray(points, dtype=np.float64)
        return points @ self.matrix[:, :2].T + self.matrix[:, 2]

    def fixed(self, points: np.ndarray) -> np.ndarray:
        """Patient-frame points -> int32 fixed-point pixel coordinates for OpenCV drawing."""
        return np.round(self.to_pixels(points) * (1 << SUBPIXEL_BITS)).astype(np.int32)

    def fill(self, polygons: list[np.ndarray], antialias: bool = True) -> np.ndarray:
        """Filled polygons (patient frame) as float32 (size, size) coverage in [0, 1]."""
        canvas = np.zeros((self.size, self.size), np.uint8)
        line = cv2.LINE_AA if antialias else cv2.LINE_8
        cv2.fillPoly(canvas, [self.fixed(p) for p in polygons], 255, line, SUBPIXEL_BITS)
        return canvas.astype(np.float32) * (1.0 / 255.0)

    def mask(self, polygons: list[np.ndarray]) -> np.ndarray:
        """Filled polygons as a bool (size, size) mask (pixel centres inside)."""
        canvas = np.zeros((self.size, self.size), np.uint8)
        cv2.fillPoly(canvas, [self.fixed(p) for p in polygons], 1, cv2.LINE_8, SUBPIXEL_BITS)
        return canvas.astype(bool)

    def strokes(
        self,
        paths: list[np.ndarray] | np.ndarray,
        width: float,
        canvas: np.ndarray | None = None,
        value: int = 255,
    ) -> np.ndarray:
        """Open polylines of `width` (patient units) drawn anti-aliased on a uint8 canvas.

        `paths` is a list of (N_i, 2) arrays or one (K, N, 2) array of K paths.
        """
        if canvas is None:
            canvas = np.zeros((self.size, self.size), np.uint8)
        thickness = max(1, int(round(width * self.px_per_unit)))
        if isinstance(paths, np.ndarray):
            fixed = list(self.fixed(paths))
        else:
            fixed = [self.fixed(p) for p in paths]
        cv2.polylines(
            canvas,
            fixed,
            False,
            int(value),
            thickness,
            cv2.LINE_AA,
            SUBPIXEL_BITS,
        )
        return canvas

    def blur(self, image: np.ndarray, sigma: float) -> np.ndarray:
        """Gaussian blur with `sigma` in patient units (no-op below a tenth of a pixel).

        Wide blurs run on a shrunken copy (a smooth result loses nothing), which keeps their cost
        independent of the width.
        """
        sigma_px = sigma * self.px_per_unit
        if sigma_px < 0.1:
            return image
        factor = int(sigma_px // 3)
        if factor < 2 or self.size // factor < 8:
            return cv2.GaussianBlur(image, (0, 0), sigma_px, borderType=cv2.BORDER_REPLICATE)
        small_side = self.size // factor
        small = cv2.resize(image, (small_side, small_side), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(
            small, (0, 0), sigma_px * small_side / self.size, borderType=cv2.BORDER_REPLICATE
        )
        return cv2.resize(small, (self.size, self.size), interpolation=cv2.INTER_LINEAR)

    def distance_inside(self, mask: np.ndarray) -> np.ndarray:
        """Distance (patient units) from each pixel of a bool mask to the mask's edge; 0 outside."""
        dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
        return dist * (1.0 / self.px_per_unit)


def chaikin(points: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Corner-cutting smoothing of an open polyline (N, 2); keeps both end points."""
    for _ in range(iterations):
        a, b = points[:-1], points[1:]
        q = 0.75 * a + 0.25 * b
        r = 0.25 * a + 0.75 * b
        inner = np.stack([q, r], axis=1).reshape(-1, 2)
        points = np.vstack([points[:1], inner[1:-1], points[-1:]])
    return points


def ellipse_points(
    centre: tuple[float, float], axes: tuple[float, float], angle: float = 0.0, n: int = 48
) -> np.ndarray:
    """Closed ellipse outline (n, 2) in patient units; `angle` in radians."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)


def smooth_noise(rng: np.random.Generator, size: int, cells: int, octaves: int = 1) -> np.ndarray:
    """Smooth random field (size, size) float32, about zero mean and unit spread.

    `cells` is the number of random values across the image at the coarsest octave; each further
    octave doubles it at half the amplitude.
    """
    total = np.zeros((size, size), np.float32)
    amplitude = 1.0
    for octave in range(octaves):
        n = cells * (2**octave) + 3
        coarse = rng.standard_normal((n, n)).astype(np.float32)
        total += amplitude * cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        amplitude *= 0.5
    return total


def smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    """0 below lo, 1 above hi, a smooth cubic ramp between (Hermite smoothstep)."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
