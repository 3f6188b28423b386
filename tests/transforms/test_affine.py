"""The affine resamplers against NumPy references (NOTE [ Affine conventions ])."""

from __future__ import annotations

import numpy as np
import pytest

from batchfit.transforms import affine_matrices, warp_affine

BACKENDS = ["opencv", "torch"]
try:
    import cv2  # noqa: F401
except ImportError:  # OpenCV is optional: the torch path is always there
    BACKENDS = ["torch"]

NP_MODE = {"nearest": "edge", "reflect": "symmetric", "wrap": "wrap"}


def _matrices(n: int, h: int, w: int, **params: float | bool) -> np.ndarray:
    full = {
        "theta": 0.0,
        "tx": 0.0,
        "ty": 0.0,
        "shear": 0.0,
        "zx": 1.0,
        "zy": 1.0,
        "flip_horizontal": False,
        "flip_vertical": False,
    }
    full.update(params)
    return affine_matrices(h, w, **{k: np.full(n, v) for k, v in full.items()})


def _reference(img: np.ndarray, mat: np.ndarray, mode: str, cval: float) -> np.ndarray:
    """Bilinear resampling of a padded image: the definition the resamplers must meet.

    "constant" is scipy.ndimage's (Keras'): cval wherever the source point is outside
    the edge pixels' centres, the edge-padded bilinear value elsewhere."""
    h, w, _ = img.shape
    pad = 2 * max(h, w)
    padded = np.pad(
        img.astype(np.float64),
        ((pad, pad), (pad, pad), (0, 0)),
        NP_MODE["nearest" if mode == "constant" else mode],
    )
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = mat[0, 0] * xs + mat[0, 1] * ys + mat[0, 2] + pad
    sy = mat[1, 0] * xs + mat[1, 1] * ys + mat[1, 2] + pad
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    out = (
        padded[y0, x0] * (1 - fx) * (1 - fy)
        + padded[y0, x0 + 1] * fx * (1 - fy)
        + padded[y0 + 1, x0] * (1 - fx) * fy
        + padded[y0 + 1, x0 + 1] * fx * fy
    )
    if mode == "constant":
        outside = (sx < pad) | (sx > pad + w - 1) | (sy < pad) | (sy > pad + h - 1)
        out[outside] = cval
    return out


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).random((1, 7, 9, 3)).astype(np.float32) * 255


def _same(actual: np.ndarray, expected: np.ndarray, backend: str) -> None:
    """OpenCV maps integer coordinates exactly; grid_sample's normalised grid is off by ~1e-7."""
    if backend == "opencv":
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_flips_are_exact(image: np.ndarray, backend: str) -> None:
    h, w = image.shape[1:3]
    out = warp_affine(image, _matrices(1, h, w, flip_horizontal=True), backend=backend)
    _same(out, image[:, :, ::-1], backend)
    out = warp_affine(image, _matrices(1, h, w, flip_vertical=True), backend=backend)
    _same(out, image[:, ::-1], backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotation_by_90_degrees_is_rot90(backend: str, k: int) -> None:
    img = np.random.default_rng(1).random((1, 8, 8, 3)).astype(np.float32)
    out = warp_affine(img, _matrices(1, 8, 8, theta=90.0 * k), fill_mode="nearest", backend=backend)
    _same(out[0], np.rot90(img[0], k, axes=(0, 1)), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["constant", "nearest", "reflect", "wrap"])
@pytest.mark.parametrize(("tx", "ty"), [(2, 0), (0, -3), (-4, 5), (11, -8)])
def test_integer_shift_is_roll_with_the_fill(
    image: np.ndarray, backend: str, mode: str, tx: int, ty: int
) -> None:
    h, w = image.shape[1:3]
    out = warp_affine(
        image, _matrices(1, h, w, tx=tx, ty=ty), fill_mode=mode, cval=-7.0, backend=backend
    )
    if mode == "wrap":
        expected = np.roll(image[0], (-ty, -tx), axis=(0, 1))
    else:
        # Input = output + shift: pad by the shift, then read the shifted window.
        expected = _reference(image[0], _matrices(1, h, w, tx=tx, ty=ty)[0], mode, -7.0)
        rolled = np.roll(image[0], (-ty, -tx), axis=(0, 1))
        inside = np.zeros((h, w), bool)
        inside[max(0, -ty) : h - max(0, ty), max(0, -tx) : w - max(0, tx)] = True
        np.testing.assert_array_equal(expected[inside], rolled[inside])
        if mode == "constant":
            assert np.all(expected[~inside] == -7.0)
    _same(out[0], expected.astype(np.float32), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["constant", "nearest", "reflect", "wrap"])
def test_each_fill_mode_matches_numpy_on_a_general_map(
    image: np.ndarray, backend: str, mode: str
) -> None:
    h, w = image.shape[1:3]
    mat = _matrices(1, h, w, theta=23.0, tx=1.7, ty=-2.2, shear=9.0, zx=1.3, zy=0.8)
    out = warp_affine(image, mat, fill_mode=mode, cval=5.0, backend=backend)
    expected = _reference(image[0], mat[0], mode, 5.0)
    tolerance = 1e-3 * 255
    np.testing.assert_allclose(out[0], expected, atol=tolerance)


def test_backends_agree_on_a_batch() -> None:
    if BACKENDS == ["torch"]:
        pytest.skip("OpenCV is not installed")
    rng = np.random.default_rng(2)
    imgs = rng.random((5, 12, 10, 4)).astype(np.float32)
    mats = affine_matrices(
        12,
        10,
        rng.uniform(-30, 30, 5),
        rng.uniform(-3, 3, 5),
        rng.uniform(-3, 3, 5),
        rng.uniform(-10, 10, 5),
        rng.uniform(0.8, 1.2, 5),
        rng.uniform(0.8, 1.2, 5),
        rng.random(5) < 0.5,
        rng.random(5) < 0.5,
    )
    for mode in ("nearest", "reflect", "constant", "wrap"):
        a = warp_affine(imgs, mats, fill_mode=mode, cval=0.5, backend="opencv")
        b = warp_affine(imgs, mats, fill_mode=mode, cval=0.5, backend="torch")
        np.testing.assert_allclose(a, b, atol=2e-3)


def test_many_channels_and_bad_arguments() -> None:
    img = np.random.default_rng(3).random((2, 5, 5, 7)).astype(np.float32)
    out = warp_affine(img, _matrices(2, 5, 5, flip_horizontal=True))
    np.testing.assert_array_equal(out, img[:, :, ::-1])
    with pytest.raises(ValueError, match="fill_mode"):
        warp_affine(img, _matrices(2, 5, 5), fill_mode="mirror")
    with pytest.raises(ValueError, match="order"):
        warp_affine(img, _matrices(2, 5, 5), order=2)
