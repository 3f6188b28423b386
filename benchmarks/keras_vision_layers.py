"""Compare batchfit's conv/activation/image layers with real Keras 3 (torch backend).

Run from the repository root:

    .venv/bin/python benchmarks/keras_vision_layers.py

It runs itself under /work/keras-venv (`KERAS_BACKEND=torch`) with `--keras`:
Keras builds each layer on a seeded input, and writes the input, its weights
(`get_weights()`) and the output to a temporary .npz. Then batchfit builds the
same layer, takes those weights through `set_weights()` (same order and
shapes, checked), and the script prints the max abs difference of the outputs
and whether `count_params()` agrees. Augmentation layers are compared on a fixed
transformation (Keras' `transform_images` with a given angle/zoom/shift).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

KERAS_PYTHON = "/work/keras-venv/bin/python"

# (name, constructor text evaluated with `layers` bound to keras.layers or batchfit.layers, shape)
CASES = [
    ("conv1d_valid", "layers.Conv1D(4, 3)", (2, 11, 3)),
    ("conv1d_same_s2", "layers.Conv1D(4, 4, strides=2, padding='same')", (2, 11, 3)),
    ("conv1d_same_even", "layers.Conv1D(4, 4, padding='same')", (2, 10, 3)),
    ("conv1d_causal_d2", "layers.Conv1D(4, 3, padding='causal', dilation_rate=2)", (2, 10, 3)),
    ("conv1d_groups", "layers.Conv1D(6, 3, groups=3, padding='same')", (2, 9, 6)),
    ("conv2dT_valid_s2", "layers.Conv2DTranspose(3, 3, strides=2)", (2, 5, 6, 2)),
    ("conv2dT_same_s2", "layers.Conv2DTranspose(3, 3, strides=2, padding='same')", (2, 5, 6, 2)),
    ("conv2dT_same_k4s2", "layers.Conv2DTranspose(3, 4, strides=2, padding='same')", (2, 5, 6, 2)),
    ("conv2dT_same_k2s3", "layers.Conv2DTranspose(3, 2, strides=3, padding='same')", (2, 4, 5, 2)),
    ("conv2dT_op", "layers.Conv2DTranspose(3, 3, strides=2, output_padding=1)", (2, 4, 5, 2)),
    (
        "conv2dT_same_op",
        "layers.Conv2DTranspose(3, 3, strides=2, padding='same', output_padding=1)",
        (2, 4, 5, 2),
    ),
    ("conv1dT_same_s2", "layers.Conv1DTranspose(3, 3, strides=2, padding='same')", (2, 7, 2)),
    ("depthwise", "layers.DepthwiseConv2D(3, depth_multiplier=2, padding='same')", (2, 6, 7, 3)),
    ("depthwise_s2", "layers.DepthwiseConv2D(4, strides=2, padding='same')", (2, 7, 8, 3)),
    ("separable", "layers.SeparableConv2D(5, 3, depth_multiplier=2, padding='same')", (2, 6, 7, 3)),
    ("separable_valid_s2", "layers.SeparableConv2D(4, 3, strides=2)", (2, 9, 8, 3)),
    ("maxpool1d_same", "layers.MaxPooling1D(3, strides=2, padding='same')", (2, 10, 3)),
    ("avgpool1d_same", "layers.AveragePooling1D(3, strides=2, padding='same')", (2, 10, 3)),
    ("avgpool2d_same", "layers.AveragePooling2D(3, strides=2, padding='same')", (2, 6, 5, 3)),
    ("avgpool2d_same_sym", "layers.AveragePooling2D(3, strides=1, padding='same')", (2, 6, 5, 3)),
    ("maxpool2d_same", "layers.MaxPooling2D(2, padding='same')", (2, 5, 5, 3)),
    ("avgpool1d_valid", "layers.AveragePooling1D(2)", (2, 9, 3)),
    ("gap1d_keep", "layers.GlobalAveragePooling1D(keepdims=True)", (2, 9, 3)),
    ("gmp1d", "layers.GlobalMaxPooling1D()", (2, 9, 3)),
    ("gap2d_keep", "layers.GlobalAveragePooling2D(keepdims=True)", (2, 5, 4, 3)),
    ("upsampling1d", "layers.UpSampling1D(3)", (2, 4, 3)),
    ("upsampling2d", "layers.UpSampling2D((2, 3))", (2, 4, 3, 2)),
    ("upsampling2d_bilinear", "layers.UpSampling2D(2, interpolation='bilinear')", (2, 4, 5, 2)),
    ("zeropadding1d", "layers.ZeroPadding1D((1, 2))", (2, 4, 3)),
    ("zeropadding2d", "layers.ZeroPadding2D(((1, 2), (3, 0)))", (2, 4, 3, 2)),
    ("cropping1d", "layers.Cropping1D((1, 2))", (2, 6, 3)),
    ("cropping2d", "layers.Cropping2D(((1, 0), (2, 1)))", (2, 5, 6, 2)),
    ("relu_all", "layers.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2)", (2, 50)),
    ("relu_thr", "layers.ReLU(threshold=0.5)", (2, 50)),
    ("relu_slope", "layers.ReLU(negative_slope=0.2)", (2, 50)),
    ("relu_cap", "layers.ReLU(max_value=0.7)", (2, 50)),
    ("leaky", "layers.LeakyReLU()", (2, 50)),
    (
        "prelu_shared",
        "layers.PReLU(alpha_initializer='random_normal', shared_axes=[1, 2])",
        (2, 4, 5, 3),
    ),
    ("elu", "layers.ELU(alpha=0.7)", (2, 50)),
    ("softmax_axis1", "layers.Softmax(axis=1)", (2, 5, 4)),
    ("softmax_axes", "layers.Softmax(axis=(1, 2))", (2, 5, 4)),
    ("permute", "layers.Permute((2, 3, 1))", (2, 3, 4, 5)),
    ("repeat", "layers.RepeatVector(3)", (2, 5)),
    ("rescaling", "layers.Rescaling(1 / 127.5, offset=-1)", (2, 4, 5, 3)),
    ("resizing", "layers.Resizing(7, 5)", (2, 10, 9, 3)),
    ("resizing_nearest", "layers.Resizing(7, 5, interpolation='nearest')", (2, 10, 9, 3)),
    ("resizing_crop", "layers.Resizing(6, 6, crop_to_aspect_ratio=True)", (2, 10, 7, 3)),
    ("centercrop", "layers.CenterCrop(5, 4)", (2, 8, 7, 3)),
    ("centercrop_up", "layers.CenterCrop(9, 12)", (2, 8, 7, 3)),
]

# augmentation layers on a fixed transformation: (name, constructor, transformation, shape)
AUGMENT = [
    ("rotation_reflect", "layers.RandomRotation(0.2)", {"angle": [30.0, -65.0]}, (2, 9, 8, 3)),
    (
        "rotation_constant",
        "layers.RandomRotation(0.2, fill_mode='constant', fill_value=0.5)",
        {"angle": [30.0, -65.0]},
        (2, 9, 8, 3),
    ),
    (
        "rotation_wrap_nearest",
        "layers.RandomRotation(0.2, fill_mode='wrap', interpolation='nearest')",
        {"angle": [41.0, 100.0]},
        (2, 9, 8, 3),
    ),
    (
        "rotation_nearest_fill",
        "layers.RandomRotation(0.2, fill_mode='nearest')",
        {"angle": [41.0, 100.0]},
        (2, 9, 8, 3),
    ),
    ("zoom", "layers.RandomZoom(0.3, 0.3)", {"zoom": [[1.25, 0.8], [0.7, 1.3]]}, (2, 9, 8, 3)),
    (
        "translation",
        "layers.RandomTranslation(0.3, 0.3)",
        {"shift": [[2.5, -1.25], [-3.0, 2.0]]},
        (2, 9, 8, 3),
    ),
    ("contrast", "layers.RandomContrast(0.5)", {"contrast": [0.6, 1.4]}, (2, 9, 8, 3)),
    ("brightness", "layers.RandomBrightness(0.5)", {"brightness": [0.1, -0.3]}, (2, 9, 8, 3)),
]


def _keras_augment(layer, x, spec):  # type: ignore[no-untyped-def]
    from keras import ops

    b = x.shape[0]
    if "angle" in spec:
        angle = ops.convert_to_tensor(np.asarray(spec["angle"], "float32"))
        h, w = x.shape[1], x.shape[2]
        matrix = layer._compute_affine_matrix(
            0.5, 0.5, angle, ops.zeros([b]), ops.zeros([b]), ops.ones([b]),
            ops.zeros([b]), ops.zeros([b]), h, w,
        )  # fmt: skip
        t = {"angle": angle, "rotation_matrix": matrix, "image_height": h, "image_width": w,
             "batch_size": b}  # fmt: skip
    elif "zoom" in spec:
        z = np.asarray(spec["zoom"], "float32")  # (width, height) zoom per image
        t = {"width_zoom": z[:, :1], "height_zoom": z[:, 1:], "input_shape": x.shape}
    elif "shift" in spec:
        s = np.asarray(spec["shift"], "float32")  # (dx, dy) in pixels
        t = {"translations": s, "input_shape": x.shape}
    elif "contrast" in spec:
        t = {"contrast_factor": np.asarray(spec["contrast"], "float32").reshape(-1, 1, 1, 1)}
    else:
        t = {"rgb_delta": np.asarray(spec["brightness"], "float32").reshape(-1, 1, 1, 1) * 255.0}
    t = {k: ops.convert_to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in t.items()}
    return ops.convert_to_numpy(layer.transform_images(ops.convert_to_tensor(x), t, training=True))


def _batchfit_augment(layer, x, spec):  # type: ignore[no-untyped-def]
    import torch

    from batchfit.layers._augment_layers import (
        rotation_transforms,
        translation_transforms,
        zoom_transforms,
    )
    from batchfit.layers._image_ops import affine_transform

    xt = torch.as_tensor(x)
    h, w = x.shape[1], x.shape[2]
    if "contrast" in spec or "brightness" in spec:
        key = "contrast" if "contrast" in spec else "brightness"
        value = torch.tensor(spec[key], dtype=torch.float32)
        if key == "contrast":
            mean = xt.mean(dim=(1, 2), keepdim=True)
            out = ((xt - mean) * value.view(-1, 1, 1, 1) + mean).clamp(*layer.value_range)
        else:
            out = (xt + value.view(-1, 1, 1, 1) * 255.0).clamp(*layer.value_range)
        return out.numpy()
    if "angle" in spec:
        t = rotation_transforms(torch.tensor(spec["angle"]), h, w)
    elif "zoom" in spec:
        z = torch.tensor(spec["zoom"])
        t = zoom_transforms(z[:, 0], z[:, 1], h, w)
    else:
        s = torch.tensor(spec["shift"])
        t = translation_transforms(s[:, 0], s[:, 1])
    return affine_transform(xt, t, layer.interpolation, layer.fill_mode, layer.fill_value).numpy()


def run_keras(path: str) -> None:
    import keras
    from keras import layers  # noqa: F401  (used by eval of the table)

    keras.utils.set_random_seed(0)
    out: dict[str, np.ndarray] = {}
    for name, text, shape in CASES:
        x = np.random.default_rng(len(name)).normal(size=shape).astype("float32")
        layer = eval(text)  # the fixed table above
        y = keras.ops.convert_to_numpy(layer(x))
        out[f"{name}/x"], out[f"{name}/y"] = x, y
        out[f"{name}/params"] = np.asarray(layer.count_params())
        for i, w in enumerate(layer.get_weights()):
            out[f"{name}/w{i}"] = w
    for name, text, spec, shape in AUGMENT:
        x = np.random.default_rng(len(name)).uniform(0, 255, size=shape).astype("float32")
        layer = eval(text)
        out[f"{name}/x"], out[f"{name}/y"] = x, _keras_augment(layer, x, spec)
    np.savez(path, **out)


def main() -> None:
    import torch

    from batchfit import layers  # noqa: F401  (used by eval of the table)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "keras.npz")
        env = {**os.environ, "KERAS_BACKEND": "torch"}
        subprocess.run([KERAS_PYTHON, __file__, "--keras", path], check=True, env=env)
        ref = dict(np.load(path))
    worst = 0.0
    for name, text, _shape in CASES:
        x = ref[f"{name}/x"]
        layer = eval(text)
        layer(torch.as_tensor(x))  # builds
        weights = [ref[k] for k in sorted(k for k in ref if k.startswith(f"{name}/w"))]
        layer.set_weights(weights)
        y = layer(torch.as_tensor(x)).detach().numpy()
        params = sum(int(np.prod(w.shape)) for w in layer.get_weights())
        same_shape = y.shape == ref[f"{name}/y"].shape
        diff = float(np.abs(y - ref[f"{name}/y"]).max()) if same_shape else float("inf")
        worst = max(worst, diff)
        ok = params == int(ref[f"{name}/params"])
        print(f"{name:24s} max|diff| {diff:.2e}  params {params} {'==' if ok else '!='} Keras")
    for name, text, spec, _shape in AUGMENT:
        layer = eval(text)
        y = _batchfit_augment(layer, ref[f"{name}/x"], spec)
        diff = float(np.abs(y - ref[f"{name}/y"]).max())
        worst = max(worst, diff / 255.0)
        print(f"{name:24s} max|diff| {diff:.2e} (pixel values 0..255)")
    print(f"worst (augmentations relative to 255): {worst:.2e}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--keras":
        run_keras(sys.argv[2])
    else:
        main()
