"""Scenes made of textured planes, and pinhole views of them.

World coordinates are the main camera's frame: x right, y down, z forward, metres. A
``Layer`` is a planar patch ``X = O + u*e1 + v*e2`` ((u, v) in metres on the plane) with a
texture mapped onto the plane and an outline (a polygon in (u, v)), or unbounded (a back
wall, a floor that ends at depth ``z_max``). Because every surface is a plane, its image in any
pinhole view is an exact homography of its texture, and its inverse depth is an affine
function of the pixel coordinates: both are evaluated in closed form, so ground truth
(depth, parallax, occlusion) is exact.

Pixel convention (as OpenCV's remap): pixel centres at integer coordinates, (0, 0) is
the centre of the top-left pixel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .textures import Texture, make_texture, random_texture_name


@dataclass
class View:
    """A pinhole camera: intrinsics K, rotation R (world -> camera), centre C (world)."""

    K: np.ndarray
    R: np.ndarray
    C: np.ndarray
    width: int
    height: int

    @staticmethod
    def make(focal_px: float, width: int, height: int, C: Any = (0, 0, 0), R: Any = None,
             principal: tuple[float, float] | None = None) -> "View":
        cx, cy = principal if principal is not None else ((width - 1) / 2.0, (height - 1) / 2.0)
        K = np.array([[focal_px, 0, cx], [0, focal_px, cy], [0, 0, 1]], np.float64)
        return View(K, np.eye(3) if R is None else np.asarray(R, np.float64), np.asarray(C, np.float64),
                    int(width), int(height))

    @property
    def focal_px(self) -> float:
        return float(self.K[0, 0])

    def project(self, X: np.ndarray) -> np.ndarray:
        """World points (N,3) -> pixel coordinates (N,2) and depth (N,)."""
        Xc = (np.asarray(X, np.float64) - self.C) @ self.R.T
        x = Xc @ self.K.T
        return x[:, :2] / x[:, 2:3], Xc[:, 2]

    def scaled(self, s: float) -> "View":
        """The same camera with s times the pixel count per axis (for supersampling/binning)."""
        w, h = int(round(self.width * s)), int(round(self.height * s))
        S = np.array([[s, 0, (s - 1) / 2.0], [0, s, (s - 1) / 2.0], [0, 0, 1]])
        return View(S @ self.K, self.R, self.C, w, h)


def rot_xyz(rx: float, ry: float, rz: float) -> np.ndarray:
    """Rotation matrix from small angles in radians (about x, then y, then z)."""
    R, _ = cv2.Rodrigues(np.array([rx, ry, rz], np.float64))
    return R


@dataclass
class Layer:
    name: str
    O: np.ndarray  # plane origin (world, m)
    e1: np.ndarray  # plane axes (world, m per unit u / v)
    e2: np.ndarray
    texture: str  # texture name (see textures.py)
    texture_seed: int
    texel_m: float  # metres per texel on the plane
    tex_angle: float = 0.0  # texture rotation on the plane (radians)
    tex_offset: tuple[float, float] = (0.0, 0.0)  # texels
    outline: np.ndarray | None = None  # polygon (N,2) in (u,v) metres; None = unbounded
    z_max: float | None = None  # unbounded layers: only where depth <= z_max (floor ends at the wall)
    gain: Any = 1.0  # reflectance multiplier (lighting): a number or an RGB triple
    image: np.ndarray | None = None  # HxWx4 straight RGBA texture (from-rgbd), texel = (u, v)
    image_border: int = cv2.BORDER_CONSTANT  # how ``image`` extends beyond its edges
    _tex: Texture | None = field(default=None, repr=False, compare=False)

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(self.e1, self.e2)
        return n / np.linalg.norm(n)

    def tex(self) -> Texture:
        if self.image is not None:
            return Texture("image", self.image, self.image_border)
        if self._tex is None:
            self._tex = make_texture(self.texture, np.random.default_rng(self.texture_seed))
        return self._tex

    def plane_to_pixel(self, view: View) -> np.ndarray:
        """Homography (u, v, 1) -> pixel (x, y, 1) of this plane in ``view``."""
        M = np.stack([self.e1, self.e2, self.O - view.C], axis=1)
        return view.K @ view.R @ M

    def plane_to_texel(self) -> np.ndarray:
        c, s = np.cos(self.tex_angle), np.sin(self.tex_angle)
        k = 1.0 / self.texel_m
        return np.array([[k * c, -k * s, self.tex_offset[0]], [k * s, k * c, self.tex_offset[1]], [0, 0, 1]])

    def inv_depth_coeffs(self, view: View) -> np.ndarray:
        """(a, b, c) with 1/Z = a*x + b*y + c at pixel (x, y) of ``view`` (Z along its axis)."""
        n = self.normal
        den = float(n @ (self.O - view.C))
        g = (view.R.T @ np.linalg.inv(view.K)).T @ n / den
        return g

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "origin_m": self.O.tolist(), "e1": self.e1.tolist(), "e2": self.e2.tolist(),
                "texture": self.texture, "texture_seed": self.texture_seed, "texel_m": self.texel_m,
                "tex_angle": self.tex_angle, "tex_offset": list(self.tex_offset),
                "outline_uv_m": None if self.outline is None else np.round(self.outline, 6).tolist(),
                "z_max": self.z_max, "gain": np.asarray(self.gain, float).tolist(),
                "image": None if self.image is None else list(self.image.shape)}


@dataclass
class Scene:
    layers: list[Layer]  # back to front (painter's order is valid in every view used)
    seed: int
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, **self.info, "layers": [l.to_dict() for l in self.layers]}


@dataclass
class LayerImage:
    """One layer seen from one view, not yet blurred, cropped to where it has coverage."""

    layer: Layer
    rgba: np.ndarray  # (y1-y0)x(x1-x0)x4 float32: linear colour premultiplied by alpha, alpha
    inv_depth: np.ndarray  # (a, b, c): 1/Z = a x + b y + c (full-frame pixel coordinates)
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of alpha > 0

    @property
    def alpha(self) -> np.ndarray:
        return self.rgba[..., 3]

    @property
    def empty(self) -> bool:
        x0, y0, x1, y1 = self.bbox
        return x1 <= x0 or y1 <= y0


def grid_inv_depth(coeffs: np.ndarray, width: int, height: int, bbox: tuple[int, int, int, int] | None = None) -> np.ndarray:
    x0, y0, x1, y1 = bbox or (0, 0, width, height)
    xs = np.arange(x0, x1, dtype=np.float32) * np.float32(coeffs[0])
    ys = np.arange(y0, y1, dtype=np.float32) * np.float32(coeffs[1]) + np.float32(coeffs[2])
    return ys[:, None] + xs[None, :]


def _outline_alpha(layer: Layer, view: View) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Coverage of the layer in ``view``, cropped to its bounding box, and the box."""
    w, h = view.width, view.height
    if layer.outline is None:
        if layer.z_max is None:
            return np.ones((h, w), np.float32), (0, 0, w, h)
        # the plane stops at depth z_max (a floor ending at the wall): coverage from the
        # affine inverse depth, with a one-pixel soft edge
        g = layer.inv_depth_coeffs(view)
        inv = grid_inv_depth(g, w, h)
        zmax = float(layer.z_max)  # (in this view's depth: views differ by mm and < 0.3 deg)
        grad = float(np.hypot(g[0], g[1])) + 1e-12
        a = np.clip((inv - np.float32(1.0 / zmax)) * np.float32(1.0 / grad) + np.float32(0.5), 0.0, 1.0)
        rows = np.nonzero(a.max(axis=1) > 0)[0]
        cols = np.nonzero(a.max(axis=0) > 0)[0]
        if len(rows) == 0 or len(cols) == 0:
            return np.zeros((0, 0), np.float32), (0, 0, 0, 0)
        x0, x1, y0, y1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
        return np.ascontiguousarray(a[y0:y1, x0:x1]), (x0, y0, x1, y1)
    P = layer.plane_to_pixel(view)
    uv1 = np.column_stack([layer.outline, np.ones(len(layer.outline))])
    p = uv1 @ P.T
    if np.any(p[:, 2] <= 1e-6):
        raise ValueError(f"layer {layer.name} crosses the camera plane")
    xy = p[:, :2] / p[:, 2:3]
    x0 = max(int(np.floor(xy[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(xy[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(xy[:, 0].max())) + 2, w)
    y1 = min(int(np.ceil(xy[:, 1].max())) + 2, h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), np.float32), (0, 0, 0, 0)
    # 4x4 supersampled coverage inside the bounding box (OpenCV's LINE_AA fill only
    # antialiases the outline stroke), area-averaged to partial coverage
    ss = 4
    bw, bh = x1 - x0, y1 - y0
    m = np.zeros((bh * ss, bw * ss), np.uint8)
    pts = ((xy - [x0, y0]) * ss + (ss - 1) / 2.0) * 16.0
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=4)
    small = cv2.resize(m, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32) * np.float32(1 / 255.0)
    return small, (x0, y0, x1, y1)


def render_layer(layer: Layer, view: View, prefilter: bool = True) -> LayerImage:
    """The layer's sharp image in ``view``: perspective-exact texture warp and coverage."""
    if layer.image is not None:
        return _render_image_layer(layer, view)
    alpha, bbox = _outline_alpha(layer, view)
    x0, y0, x1, y1 = bbox
    g = layer.inv_depth_coeffs(view)
    if x1 <= x0 or y1 <= y0:
        return LayerImage(layer, np.zeros((0, 0, 4), np.float32), g, (0, 0, 0, 0))
    tex = layer.tex()
    M = layer.plane_to_texel() @ np.linalg.inv(layer.plane_to_pixel(view))  # pixel -> texel
    T = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    src4 = cv2.cvtColor(tex.pixels * np.asarray(layer.gain, np.float32), cv2.COLOR_RGB2RGBA)
    size = (x1 - x0, y1 - y0)
    k = _minification(M @ T, size) if prefilter else None
    if k is None or float(k.max()) <= 1.3:
        rgba = cv2.warpPerspective(src4, M @ T, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=tex.border)
    else:
        rgba = _mip_warp(src4, k, M @ T, size, tex.border)
    rgba[..., 3] = alpha
    rgba[..., :3] *= alpha[..., None]
    return LayerImage(layer, rgba, g, bbox)


def _minification(MT: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Texels per pixel along the most minified direction (the larger singular value of the
    pixel -> texel Jacobian) at every pixel of a ``size`` (w, h) grid, float32."""
    w, h = size
    step = 8  # smooth: evaluated every 8 px and interpolated
    if w > 4 * step and h > 4 * step:
        gw, gh = -(-w // step), -(-h // step)
        c = (step - 1) / 2  # cv2.resize by exactly `step` puts coarse sample i at i * step + c
        coarse = _minification_at(MT, np.arange(gw) * step + c, np.arange(gh) * step + c)
        big = cv2.resize(coarse, (gw * step, gh * step), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(big[:h, :w])
    return _minification_at(MT, np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))


def _minification_at(MT: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xs = x[None, :]
    ys = y[:, None]
    q0 = MT[0, 0] * xs + MT[0, 1] * ys + MT[0, 2]
    q1 = MT[1, 0] * xs + MT[1, 1] * ys + MT[1, 2]
    q2 = MT[2, 0] * xs + MT[2, 1] * ys + MT[2, 2]
    inv = 1.0 / (q2 * q2)
    a = (MT[0, 0] * q2 - q0 * MT[2, 0]) * inv
    b = (MT[0, 1] * q2 - q0 * MT[2, 1]) * inv
    c = (MT[1, 0] * q2 - q1 * MT[2, 0]) * inv
    d = (MT[1, 1] * q2 - q1 * MT[2, 1]) * inv
    fro = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return np.sqrt(0.5 * (fro + np.sqrt(np.maximum(fro * fro - 4 * det * det, 0)))).astype(np.float32)


def _mip_warp(src4: np.ndarray, k: np.ndarray, MT: np.ndarray, size: tuple[int, int], border: int,
              max_level: int = 8) -> np.ndarray:
    """Trilinear mip-mapping: a pyramid of the texture (``cv2.pyrDown``, the tiling border
    kept by padding each level with ``border`` first) is warped for every level l that some
    pixel needs, and each pixel blends the two levels around log2(k). One blur for a whole
    plane (the old way, chosen at its centre) left the far part of a ground plane seen at a
    grazing angle aliased into a striped moiré that differed between cameras of different
    pixel density, so no flow could match them. OpenCV has no mip-mapped warp, hence by
    hand.
    """
    lv = np.minimum(np.log2(np.maximum(k, 1.0)), max_level)
    top = int(np.ceil(float(lv.max())))
    out = np.zeros(k.shape + (4,), np.float32)
    img = src4
    for level in range(top + 1):
        if level > 0:
            if min(img.shape[:2]) < 16:
                break
            pad = cv2.copyMakeBorder(img, 8, 8, 8, 8, border)
            img = cv2.pyrDown(pad)[4:-4, 4:-4]
        wgt = np.clip(1.0 - np.abs(lv - level), 0.0, 1.0)
        if level == top or min(img.shape[:2]) < 32:
            wgt = np.where(lv >= level, 1.0, wgt)
        if not wgt.any():
            continue
        sc = 0.5 ** level  # texel centres of level l: (x + 0.5) / 2^l - 0.5
        A = np.array([[sc, 0, 0.5 * sc - 0.5], [0, sc, 0.5 * sc - 0.5], [0, 0, 1]], np.float64)
        rows, cols = np.flatnonzero(wgt.any(axis=1)), np.flatnonzero(wgt.any(axis=0))
        ya, yb, xa, xb = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # only where this level counts
        Tl = np.array([[1, 0, xa], [0, 1, ya], [0, 0, 1]], np.float64)
        warped = cv2.warpPerspective(img, A @ MT @ Tl, (int(xb - xa), int(yb - ya)),
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border)
        out[ya:yb, xa:xb] += warped * wgt[ya:yb, xa:xb, None].astype(np.float32)
        if level == top or min(img.shape[:2]) < 32:
            break
    return out


def _render_image_layer(layer: Layer, view: View) -> LayerImage:
    """An RGBA image on a plane (from-rgbd): coverage comes from the image's alpha."""
    w, h = view.width, view.height
    g = layer.inv_depth_coeffs(view)
    M = layer.plane_to_texel() @ np.linalg.inv(layer.plane_to_pixel(view))
    ih, iw = layer.image.shape[:2]
    if layer.image_border == cv2.BORDER_CONSTANT:
        corners = np.array([[-1, -1, 1], [iw, -1, 1], [iw, ih, 1], [-1, ih, 1]], np.float64)
        P = np.linalg.inv(M)
        q = corners @ P.T
        xy = q[:, :2] / q[:, 2:3]
        x0, y0 = max(int(np.floor(xy[:, 0].min())), 0), max(int(np.floor(xy[:, 1].min())), 0)
        x1, y1 = min(int(np.ceil(xy[:, 0].max())) + 1, w), min(int(np.ceil(xy[:, 1].max())) + 1, h)
    else:
        x0, y0, x1, y1 = 0, 0, w, h
    if x1 <= x0 or y1 <= y0:
        return LayerImage(layer, np.zeros((0, 0, 4), np.float32), g, (0, 0, 0, 0))
    T = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    rgba = cv2.warpPerspective(layer.image, M @ T, (x1 - x0, y1 - y0),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=layer.image_border,
                               borderValue=(0, 0, 0, 0))
    rgba[..., :3] *= rgba[..., 3:4]
    return LayerImage(layer, rgba, g, (x0, y0, x1, y1))


def blob_outline(rng: np.random.Generator, half_w: float, half_h: float, n: int = 96,
                 roughness: float = 0.18, kind: str = "blob") -> np.ndarray:
    """A closed outline (n,2) around (0,0): a Fourier-perturbed ellipse, a rectangle or a leaf."""
    if kind == "rect":
        return np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones_like(t)
    for k in range(2, 7):
        r += roughness / k * rng.normal() * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    r = np.clip(r, 0.45, 1.6)
    return np.column_stack([half_w * r * np.cos(t), half_h * r * np.sin(t)])


def random_scene(rng: np.random.Generator, seed: int, fov_x: float, fov_y: float, px_angle: float, *,
                 near: float = 0.12, far: float = 30.0, n_cards: int | None = None,
                 floor: bool | None = None, wall_depth: float | None = None,
                 floor_height: tuple[float, float] = (0.25, 1.6),
                 ramp: tuple[float, float] | None = None) -> Scene:
    """A random scene of a back wall, an optional floor and cards from ``near`` to ``far``.

    ``ramp`` (bursts): instead of a level floor, a ground plane that runs from depth ``near``
    at image height ``ramp[0]`` (in units of the half field, 1 = bottom edge) up to the
    wall at height ``ramp[1]``: a table top seen from above, filling the frame with a
    continuous range of depths.
    ``fov_x``, ``fov_y``: half-field tangents of the main view (cards are placed in it;
    the wall and floor are unbounded and fill any view). ``px_angle``: the main view's
    pixel size in radians (1 / focal_px); textures are scaled to 0.8-2.5 pixels per texel
    at their depth, so every output size gets detail down to its pixels. Cards are placed so that painter's order (back to front) is right
    in every view whose centre lies on the x axis near the origin: their depth ranges do
    not overlap, and they float above the floor's line at their depth.
    """
    layers: list[Layer] = []
    if wall_depth is not None:
        wall_z = float(wall_depth)
    else:
        wall_z = float(np.exp(rng.uniform(np.log(max(far * 0.25, 3.0)), np.log(far))))
    ex, ey = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])

    def tex_seed() -> int:
        return int(rng.integers(0, 2**31 - 1))

    # back wall: fronto-parallel or gently slanted about the vertical axis
    yaw = float(rng.uniform(-0.25, 0.25)) if rng.random() < 0.5 else 0.0
    e1 = np.array([np.cos(yaw), 0, np.sin(yaw)])
    wall_tex = random_texture_name(rng, 0.5, tileable=True)
    layers.append(Layer("wall", np.array([0, 0, wall_z]), e1, ey, wall_tex, tex_seed(),
                        texel_m=wall_z * px_angle * float(rng.uniform(1.0, 2.5)),
                        tex_angle=float(rng.uniform(-0.2, 0.2)),
                        tex_offset=(float(rng.uniform(0, 512)), float(rng.uniform(0, 512))),
                        gain=float(rng.uniform(0.7, 1.1))))
    floor_h = None
    floor_y = None  # Y (down) of the ground's surface as a function of depth, for card placement
    if ramp is not None:
        layers[0].e1 = ex
        Pb = near * np.array([0.0, fov_y * ramp[0], 1.0])
        Pt = wall_z * 0.999 * np.array([0.0, fov_y * ramp[1], 1.0])
        e2 = (Pt - Pb) / np.linalg.norm(Pt - Pb)
        layers.append(Layer("floor", Pb, ex, e2, random_texture_name(rng, 0.6, tileable=True), tex_seed(),
                            texel_m=near * px_angle * float(rng.uniform(1.0, 2.5)),
                            tex_angle=float(rng.uniform(0, np.pi)), z_max=wall_z * 0.999,
                            gain=float(rng.uniform(0.6, 1.0))))
        floor_h = float(Pb[1])

        def floor_y(z: float) -> float:
            t = (z - Pb[2]) / (Pt[2] - Pb[2])
            return float(Pb[1] + t * (Pt[1] - Pb[1]))
    elif floor if floor is not None else rng.random() < 0.6:
        # a floor meets a fronto-parallel wall along one image row in every view
        layers[0].e1 = ex
        floor_h = float(rng.uniform(*floor_height))  # camera height above the floor (m)
        # floor: X = (u, h, v); v (depth) runs to the wall. Slanted: depth varies per row
        layers.append(Layer("floor", np.array([0, floor_h, 0.0]), ex, np.array([0, 0, 1.0]),
                            random_texture_name(rng, 0.6, tileable=True), tex_seed(),
                            texel_m=floor_h / fov_y * px_angle * float(rng.uniform(1.0, 2.5)),
                            tex_angle=float(rng.uniform(0, np.pi)), z_max=wall_z * 0.999,
                            gain=float(rng.uniform(0.6, 1.0))))

        def floor_y(z: float) -> float:
            return float(floor_h)
    n = int(n_cards if n_cards is not None else rng.integers(3, 7))
    # depth slots in inverse depth, far to near, not overlapping
    inv_lo = 1.0 / (wall_z * (0.8 if wall_z * 0.8 > near * 1.5 else 0.98))
    inv_hi = 1.0 / near
    edges = np.sort(rng.uniform(inv_lo, inv_hi, n - 1)) if n > 1 else np.array([])
    edges = np.concatenate([[inv_lo], edges, [inv_hi]])
    for i in range(n):
        a, b = edges[i], edges[i + 1]
        if b - a < 1e-6:
            continue
        inv_c = a + (b - a) * float(rng.uniform(0.35, 0.65))
        z = 1.0 / inv_c
        slab = (1.0 / a - 1.0 / b) * 0.3  # depth budget for slant within the slot
        # size on the image: 10-45 % of the field height
        half_h = z * fov_y * float(rng.uniform(0.1, 0.45))
        half_w = half_h * float(rng.uniform(0.6, 1.6))
        cx = z * fov_x * float(rng.uniform(-0.75, 0.75))
        cy = z * fov_y * float(rng.uniform(-0.7, 0.5))
        if floor_y is not None:  # keep the card above the floor at its depth
            cy = min(cy, floor_y(z) - half_h * 1.7)
        kind = "rect" if rng.random() < 0.25 else "blob"
        yaw = 0.0
        if rng.random() < 0.4 and slab > 0:
            yaw = float(np.clip(np.arcsin(min(slab / max(half_w * 1.7, 1e-6), 0.95)), 0, 1.0)) * float(rng.choice([-1, 1]))
        e1 = np.array([np.cos(yaw), 0, np.sin(yaw)])
        outline = blob_outline(rng, half_w, half_h, kind=kind)
        name = random_texture_name(rng, 0.65)
        texel = z * px_angle * float(rng.uniform(0.8, 2.0))
        layers.append(Layer(f"card{i}", np.array([cx, cy, z]), e1, ey, name, tex_seed(), texel_m=texel,
                            tex_angle=float(rng.uniform(-0.3, 0.3)),
                            tex_offset=(float(rng.uniform(0, 200)), float(rng.uniform(0, 200))),
                            outline=outline, gain=float(rng.uniform(0.7, 1.2))))
    return Scene(layers, seed, {"wall_depth_m": wall_z, "floor_height_m": floor_h, "near_m": near, "far_m": far})
