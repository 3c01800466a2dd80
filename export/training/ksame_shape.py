"""Dense alignment for the k-Same bank: 68 landmarks per aligned photo and a piecewise-affine warp onto a mean shape.

The bank's photos are aligned by the least-squares affine map of 5 points (ksame_bank.align); eight faces aligned
so still differ in where their brows, eyelids, nostrils, lips and jaw lie, and their pixel average ghosts there.
Here each photo's 68 points (dlib's shape predictor, run on the canvas drawn at SCALE times its size) are found
once, and a group is averaged after every member is warped, triangle by triangle (a Delaunay triangulation of the
group's mean shape plus fixed points on the canvas border), onto the group's mean shape: the classic way average
faces are made sharp. A photo whose fit is implausible (its eyes, nose or mouth far from the detector's) or whose
warp would fold a triangle is left as the affine alignment put it.

The 68-point model (shape_predictor_68_face_landmarks.dat, shipped by the face-recognition-models wheel) is
trained on iBUG 300-W, whose licence excludes commercial use: like UTKFace itself, fine for this research-only
bank, and used at build time only (the runtime never loads it).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from edgeanon.anonymize import ksame
from export.eval.utility import dlib_model

PREDICTOR = "shape_predictor_68_face_landmarks.dat"
# The predictor runs on the canvas drawn this many times larger (a UTKFace face is about that size in its photo).
SCALE = 2
# dlib's frontal detector's box for a face on the canvas template (x1, y1, x2, y2, canvas pixels at scale 1):
# the median of its boxes on 143 aligned tuning photos drawn at SCALE (HOG, one upsampling): the predictor was
# trained from such boxes.
RECT = (28.0, 38.5, 131.0, 142.0)
# A fit is plausible when its eye centres, nose tip and mouth corners lie within this share of the eye
# distance of the detector's 5 points.
MAX_OFFSET = 0.3
EYES = (slice(36, 42), slice(42, 48))
NOSE_TIP, MOUTH = 30, (48, 54)
# Fixed points on (just outside) the canvas border: the warp leaves the border where it is.
_LO, _HI = -1.0, ksame.REF_SIDE + 0.0
BORDER = np.array([[_LO, _LO], [ksame.REF_SIDE / 2, _LO], [_HI, _LO], [_LO, ksame.REF_SIDE / 2],
                   [_HI, ksame.REF_SIDE / 2], [_LO, _HI], [ksame.REF_SIDE / 2, _HI], [_HI, _HI]])


class ShapeFinder:
    """68 landmarks of a face on the canvas, or None where the fit is implausible."""

    def __init__(self):
        import dlib  # a large native library, loaded only when the bank is built

        self._dlib = dlib
        self.predictor = dlib.shape_predictor(dlib_model(PREDICTOR))
        self.rect = dlib.rectangle(*[int(round(v * SCALE)) for v in RECT])

    def __call__(self, image: np.ndarray, m: np.ndarray, mirrored: bool, landmarks: np.ndarray) -> np.ndarray | None:
        """Points of the photo `image` (drawn onto the canvas by the 2x3 map `m`, then mirrored if `mirrored`),
        checked against its 5 canvas `landmarks`; (68, 2) canvas pixels."""
        side = ksame.REF_SIDE * SCALE
        big = cv2.warpAffine(image, m * SCALE, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if mirrored:
            big = big[:, ::-1]
        grey = np.ascontiguousarray(cv2.cvtColor(big, cv2.COLOR_BGR2GRAY))
        shape = self.predictor(grey, self.rect)
        pts = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        if mirrored:  # column c of the mirrored big canvas is SCALE * (REF_SIDE - 1) - c before mirroring
            pts[:, 0] -= SCALE - 1
        pts /= SCALE  # pixel c of the canvas is pixel SCALE * c of the big one
        return pts if plausible(pts, landmarks) else None


def plausible(pts: np.ndarray, landmarks: np.ndarray) -> bool:
    """Whether 68 points agree with the detector's 5 (eyes, nose tip, mouth corners) within MAX_OFFSET."""
    lm = np.asarray(landmarks, np.float64)
    eye_dist = float(np.linalg.norm(lm[1] - lm[0]))
    found = np.array([pts[EYES[0]].mean(0), pts[EYES[1]].mean(0), pts[NOSE_TIP], pts[MOUTH[0]], pts[MOUTH[1]]])
    return bool(np.linalg.norm(found - lm, axis=1).max() <= MAX_OFFSET * eye_dist)


def _barycentric(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (n, t, 3) of (n, 2) points in each of t triangles given as (t, 3, 2) corners."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    v0, v1 = b - a, c - a
    det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
    d = points[:, None, :] - a[None]
    u = (d[..., 0] * v1[:, 1] - d[..., 1] * v1[:, 0]) / det
    v = (v0[:, 0] * d[..., 1] - v0[:, 1] * d[..., 0]) / det
    return np.stack([1.0 - u - v, u, v], axis=-1)


class MeanShapeWarp:
    """Warps of photos onto one mean shape (68 points, canvas pixels), triangle by triangle."""

    def __init__(self, mean: np.ndarray):
        self.target = np.vstack([mean, BORDER])
        self.tri = Delaunay(self.target)
        side = ksame.REF_SIDE
        ys, xs = np.mgrid[0:side, 0:side]
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
        simplex = self.tri.find_simplex(grid)
        simplex = np.where(simplex < 0, self.tri.find_simplex(np.clip(grid, 0, side - 1)), simplex)
        t = self.tri.transform[simplex]  # (n, 3, 2): barycentric coordinates of each canvas pixel
        b = np.einsum("nij,nj->ni", t[:, :2], grid - t[:, 2])
        self._simplex = simplex
        self._bary = np.hstack([b, 1.0 - b.sum(1, keepdims=True)])
        self._area = self._signed_areas(self.target)

    def _signed_areas(self, pts: np.ndarray) -> np.ndarray:
        c = pts[self.tri.simplices]
        u, v = c[:, 1] - c[:, 0], c[:, 2] - c[:, 0]
        return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]

    def folds(self, shape: np.ndarray) -> bool:
        """Whether warping a photo of this shape would turn a triangle over."""
        return bool(np.any(self._signed_areas(np.vstack([shape, BORDER])) * self._area <= 0))

    def maps(self, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap maps (float32) that draw a photo of `shape` onto the mean shape."""
        source = np.vstack([shape, BORDER])[self.tri.simplices[self._simplex]]  # (n, 3, 2)
        xy = np.einsum("nj,njk->nk", self._bary, source).astype(np.float32)
        side = ksame.REF_SIDE
        return xy[:, 0].reshape(side, side), xy[:, 1].reshape(side, side)

    def carry(self, shape: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Where (n, 2) points of a photo of `shape` land on the mean shape (the warp's forward direction)."""
        source = np.vstack([shape, BORDER])[self.tri.simplices]
        bary = _barycentric(np.asarray(points, np.float64), source)  # (n, t, 3)
        inside = np.argmax(bary.min(-1), axis=1)  # the triangle each point is in (or nearest to being in)
        w = bary[np.arange(len(points)), inside]
        return np.einsum("nj,njk->nk", w, self.target[self.tri.simplices[inside]])


def photo_maps(mx: np.ndarray, my: np.ndarray, m: np.ndarray, mirrored: bool) -> tuple[np.ndarray, np.ndarray]:
    """Canvas remap maps (into the photo's canvas, mirrored if `mirrored`) turned into maps into the photo itself,
    which the 2x3 map `m` drew onto the canvas: one resampling instead of two."""
    x = (ksame.REF_SIDE - 1) - mx if mirrored else mx
    inv = cv2.invertAffineTransform(np.asarray(m, np.float64))
    return ((inv[0, 0] * x + inv[0, 1] * my + inv[0, 2]).astype(np.float32),
            (inv[1, 0] * x + inv[1, 1] * my + inv[1, 2]).astype(np.float32))


def warp_group(canvases: list[np.ndarray], valids: list[np.ndarray], shapes: list[np.ndarray | None],
               landmarks: list[np.ndarray], sources: list[tuple[np.ndarray, np.ndarray, bool]] | None = None,
               target: np.ndarray | None = None) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, int]:
    """The group's photos warped onto the mean of their 68-point shapes: (canvases, valid masks, the mean of their
    5 landmarks where the warp took them, how many were warped). Photos without a plausible shape, or whose warp
    would fold, stay as they are. With fewer than two shapes nothing is warped. `sources`, if given, holds each
    photo as (image, 2x3 map onto the canvas, mirrored): the warp then samples the photo itself (bicubic), not
    its canvas, which was resampled once already. `target`, if given, is the shape to warp onto instead of the
    group's mean (then even one shape is enough)."""
    have = [s for s in shapes if s is not None]
    if len(have) < (1 if target is not None else 2):
        return canvases, valids, np.mean(landmarks, axis=0), 0
    warp = MeanShapeWarp(np.mean(have, axis=0) if target is None else target)
    out_c, out_v, out_lm, warped = [], [], [], 0
    for i, (canvas, valid, shape, lm) in enumerate(zip(canvases, valids, shapes, landmarks, strict=True)):
        if shape is None or warp.folds(shape):
            out_c.append(canvas)
            out_v.append(valid)
            out_lm.append(np.asarray(lm, np.float64))
            continue
        mx, my = warp.maps(shape)
        if sources is None:
            out_c.append(cv2.remap(canvas, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT))
        else:
            image, m, mirrored = sources[i]
            px, py = photo_maps(mx, my, m, mirrored)
            out_c.append(cv2.remap(image, px, py, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT))
        out_v.append(cv2.remap(valid, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT))
        out_lm.append(warp.carry(shape, lm))
        warped += 1
    return out_c, out_v, np.mean(out_lm, axis=0), warped
