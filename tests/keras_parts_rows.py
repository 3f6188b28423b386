"""The table of Keras parts batchfit offers, shared by `test_keras_parts_table.py` and
`benchmarks/keras_reference/keras_parts.py` (which runs each row in real Keras 3.15.1).

Plain data and NumPy only (the reference script imports it under Keras' venv). A
row is `(kind, row_id, expression, data)`: `expression` is Python text evaluated
with `layers`, `metrics`, `losses`, `optimizers`, `constraints` and `regularizers`
bound to Keras' modules on one side and batchfit's on the other; `data` names the
seeded arrays the row uses (see `make_data`). The arrays come from
`np.random.default_rng(crc32(row_id))`, so both sides draw the same numbers.

Kinds:
- layer: build on `inputs`, call in inference mode; compare the output, then the
  gradients of `sum(output * R)` (R seeded) for the inputs and each trainable
  weight, with Keras' weights loaded through `set_weights`.
- layer_losses: the same layer's `sum(layer.losses)` after one call (regularizers).
- train: `Sequential([Input, layer])` compiled with SGD(0.1) and mse, Keras' weights
  loaded, 3 `train_on_batch` steps; the weights after (constraints included).
- metric: `update_state` on two batches (the second with `sample_weight` when given),
  then `result()`.
- loss: `loss(y_true, y_pred[, sample_weight])`; function forms give per-sample values.
- optimizer: `apply` of 5 seeded gradients to two seeded variables; the variables after.
- constraint: `constraint(w)` of a seeded weight.
- regularizer: `regularizer(w)` of a seeded weight.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

Spec = tuple[Any, ...]


def _array(spec: Spec, rng: np.random.Generator) -> np.ndarray:
    kind, shape = spec[0], tuple(spec[1])
    if kind == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "uniform":  # in (0, 1): probabilities
        return rng.uniform(0.02, 0.98, shape).astype(np.float32)
    if kind == "positive":
        return rng.uniform(0.1, 3.0, shape).astype(np.float32)
    if kind == "int":
        return rng.integers(0, spec[2], shape).astype(np.int64)
    if kind == "binary":
        return (rng.uniform(size=shape) > 0.5).astype(np.float32)
    if kind == "onehot":
        return np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], shape[:-1])]
    if kind == "softmax":
        z = np.exp(rng.standard_normal(shape))
        return (z / z.sum(-1, keepdims=True)).astype(np.float32)
    if kind == "sign":
        return np.where(rng.uniform(size=shape) > 0.5, 1.0, -1.0).astype(np.float32)
    raise ValueError(f"unknown data spec {spec!r}")


def make_data(row_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The row's arrays: each key of `data` is a spec or a list of specs (several inputs)."""
    rng = np.random.default_rng(zlib.crc32(row_id.encode()))
    out: dict[str, Any] = {}
    for key in sorted(data):
        spec = data[key]
        out[key] = [_array(s, rng) for s in spec] if isinstance(spec, list) else _array(spec, rng)
    return out


def N(*shape: int) -> Spec:
    return ("normal", shape)


def _layer(row_id: str, expr: str, *shapes: Spec | tuple[int, ...]) -> tuple[str, str, str, dict]:
    inputs = [s if isinstance(s[0], str) else ("normal", s) for s in shapes]
    return ("layer", row_id, expr, {"inputs": inputs})


IMG = (2, 5, 6, 3)
SEQ = (2, 5, 4)
VOL = (2, 3, 4, 5, 2)

LAYERS = [
    _layer("Dense", "layers.Dense(3, activation='tanh')", (4, 5)),
    _layer("Dense_rank3", "layers.Dense(3)", SEQ),
    _layer("Activation", "layers.Activation('softplus')", (3, 4)),
    _layer("Dropout", "layers.Dropout(0.5)", (3, 4)),
    _layer("Flatten", "layers.Flatten()", IMG),
    _layer("Reshape", "layers.Reshape((6, 5, 3))", IMG),
    _layer("Conv1D", "layers.Conv1D(4, 3, padding='causal', dilation_rate=2)", (2, 9, 3)),
    _layer("Conv2D", "layers.Conv2D(4, 3, strides=2, padding='same')", IMG),
    _layer("Conv3D", "layers.Conv3D(4, 3)", VOL),
    _layer("Conv3D_same_s2", "layers.Conv3D(2, (2, 3, 3), strides=2, padding='same')", VOL),
    _layer("Conv3D_dilated", "layers.Conv3D(2, 2, dilation_rate=2, padding='same')", VOL),
    _layer("Conv3D_groups", "layers.Conv3D(4, 2, groups=2)", (2, 3, 4, 4, 4)),
    _layer("Conv1DTranspose", "layers.Conv1DTranspose(3, 3, strides=2, padding='same')", SEQ),
    _layer("Conv2DTranspose", "layers.Conv2DTranspose(3, 3, strides=2)", IMG),
    _layer("Conv3DTranspose", "layers.Conv3DTranspose(3, 2, strides=2)", VOL),
    _layer(
        "Conv3DTranspose_same",
        "layers.Conv3DTranspose(2, (3, 2, 3), strides=(1, 2, 2), padding='same')",
        VOL,
    ),
    _layer(
        "Conv3DTranspose_output_padding",
        "layers.Conv3DTranspose(2, 3, strides=2, padding='same', output_padding=1)",
        VOL,
    ),
    _layer("Conv3DTranspose_dilated", "layers.Conv3DTranspose(2, 2, dilation_rate=2)", VOL),
    _layer("DepthwiseConv2D", "layers.DepthwiseConv2D(3, depth_multiplier=2)", IMG),
    _layer("SeparableConv2D", "layers.SeparableConv2D(4, 3, padding='same')", IMG),
    _layer("MaxPooling1D", "layers.MaxPooling1D(2, padding='same')", SEQ),
    _layer("AveragePooling1D", "layers.AveragePooling1D(3, strides=2, padding='same')", SEQ),
    _layer("MaxPooling2D", "layers.MaxPooling2D(3, strides=2, padding='same')", IMG),
    _layer("AveragePooling2D", "layers.AveragePooling2D(2)", IMG),
    _layer("MaxPooling3D", "layers.MaxPooling3D(2)", VOL),
    _layer("MaxPooling3D_same", "layers.MaxPooling3D(3, strides=2, padding='same')", VOL),
    _layer("AveragePooling3D", "layers.AveragePooling3D((2, 2, 3))", VOL),
    _layer("AveragePooling3D_same", "layers.AveragePooling3D(3, strides=2, padding='same')", VOL),
    _layer("AveragePooling3D_same_s1", "layers.AveragePooling3D(3, 1, padding='same')", VOL),
    _layer("GlobalAveragePooling1D", "layers.GlobalAveragePooling1D()", SEQ),
    _layer("GlobalMaxPooling1D", "layers.GlobalMaxPooling1D()", SEQ),
    _layer("GlobalAveragePooling2D", "layers.GlobalAveragePooling2D()", IMG),
    _layer("GlobalMaxPooling2D", "layers.GlobalMaxPooling2D(keepdims=True)", IMG),
    _layer("GlobalAveragePooling3D", "layers.GlobalAveragePooling3D()", VOL),
    _layer("GlobalMaxPooling3D", "layers.GlobalMaxPooling3D()", VOL),
    _layer("GlobalMaxPooling3D_keepdims", "layers.GlobalMaxPooling3D(keepdims=True)", VOL),
    _layer("UpSampling1D", "layers.UpSampling1D(2)", SEQ),
    _layer("UpSampling2D", "layers.UpSampling2D(2)", IMG),
    _layer("ZeroPadding1D", "layers.ZeroPadding1D(2)", SEQ),
    _layer("ZeroPadding2D", "layers.ZeroPadding2D(((1, 0), (2, 1)))", IMG),
    _layer("Cropping1D", "layers.Cropping1D((1, 2))", SEQ),
    _layer("Cropping2D", "layers.Cropping2D(((1, 2), (0, 3)))", IMG),
    _layer("UpSampling3D", "layers.UpSampling3D((1, 2, 3))", VOL),
    _layer("ZeroPadding3D", "layers.ZeroPadding3D(((1, 0), (2, 1), (0, 3)))", VOL),
    _layer("ZeroPadding3D_int", "layers.ZeroPadding3D(1)", VOL),
    _layer("Cropping3D", "layers.Cropping3D(((1, 0), (1, 2), (0, 3)))", VOL),
    _layer("Cropping3D_triple", "layers.Cropping3D((1, 1, 2))", VOL),
    _layer("BatchNormalization", "layers.BatchNormalization()", IMG),
    _layer("LayerNormalization", "layers.LayerNormalization()", SEQ),
    _layer("GroupNormalization", "layers.GroupNormalization(groups=2)", (2, 5, 6, 4)),
    _layer("GroupNormalization_axis1", "layers.GroupNormalization(2, axis=1)", (3, 6, 5)),
    _layer("GroupNormalization_noscale", "layers.GroupNormalization(-1, scale=False)", SEQ),
    _layer(
        "GroupNormalization_eps",
        "layers.GroupNormalization(groups=1, epsilon=0.5, center=False)",
        (2, 4, 3, 6),
    ),
    _layer(
        "Normalization", "layers.Normalization(mean=[1, 2, 3, 4], variance=[1, 4, 9, 2])", (3, 4)
    ),
    _layer("Embedding", "layers.Embedding(10, 3)", ("int", (2, 5), 10)),
    _layer("Masking", "layers.Masking(0.0)", SEQ),
    _layer("SimpleRNN", "layers.SimpleRNN(3, return_sequences=True)", SEQ),
    _layer("LSTM", "layers.LSTM(3)", SEQ),
    _layer("GRU", "layers.GRU(3, return_sequences=True)", SEQ),
    _layer("GRU_reset_before", "layers.GRU(3, reset_after=False)", SEQ),
    _layer("Bidirectional", "layers.Bidirectional(layers.LSTM(2))", SEQ),
    _layer("TimeDistributed", "layers.TimeDistributed(layers.Dense(2))", SEQ),
    _layer("Attention", "layers.Attention()", (2, 3, 4), (2, 5, 4)),
    _layer("MultiHeadAttention", "layers.MultiHeadAttention(2, 3)", (2, 3, 4), (2, 5, 4)),
    _layer("Concatenate", "layers.Concatenate()", SEQ, SEQ),
    _layer("Add", "layers.Add()", SEQ, SEQ, SEQ),
    _layer("Subtract", "layers.Subtract()", SEQ, SEQ),
    _layer("Multiply", "layers.Multiply()", SEQ, SEQ),
    _layer("Average", "layers.Average()", SEQ, SEQ),
    _layer("Maximum", "layers.Maximum()", SEQ, SEQ),
    _layer("Minimum", "layers.Minimum()", SEQ, SEQ),
    _layer("Dot", "layers.Dot(axes=-1)", (3, 4), (3, 4)),
    _layer("Dot_normalize", "layers.Dot(axes=1, normalize=True)", (3, 4), (3, 4)),
    _layer("Dot_rank3", "layers.Dot(axes=(2, 2))", (2, 3, 4), (2, 5, 4)),
    _layer("Dot_rank3_mixed", "layers.Dot(axes=(1, 2))", (2, 5, 4), (2, 3, 5)),
    _layer("Dot_rank2_rank3", "layers.Dot(axes=(1, 2))", (2, 4), (2, 3, 4)),
    _layer(
        "Dot_rank4_normalize", "layers.Dot(axes=(3, 1), normalize=True)", (2, 2, 3, 4), (2, 4, 3)
    ),
    _layer("ReLU", "layers.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2)", (3, 4)),
    _layer("LeakyReLU", "layers.LeakyReLU(negative_slope=0.2)", (3, 4)),
    _layer("PReLU", "layers.PReLU()", (3, 4)),
    _layer("ELU", "layers.ELU(alpha=0.5)", (3, 4)),
    _layer("Softmax", "layers.Softmax()", (3, 4)),
    _layer("Permute", "layers.Permute((2, 1))", SEQ),
    _layer("RepeatVector", "layers.RepeatVector(3)", (2, 4)),
    _layer("SpatialDropout1D", "layers.SpatialDropout1D(0.5)", SEQ),
    _layer("SpatialDropout2D", "layers.SpatialDropout2D(0.5)", IMG),
    _layer("GaussianNoise", "layers.GaussianNoise(0.5)", (3, 4)),
    _layer("GaussianDropout", "layers.GaussianDropout(0.5)", (3, 4)),
    _layer("ActivityRegularization", "layers.ActivityRegularization(l1=0.1)", (3, 4)),
    _layer("Identity", "layers.Identity()", (3, 4)),
    _layer("Lambda", "layers.Lambda(lambda t: t * 2 + 1)", (3, 4)),
    _layer("Rescaling", "layers.Rescaling(1 / 255.0, offset=-1)", IMG),
    _layer("Resizing", "layers.Resizing(3, 4)", IMG),
    _layer("CenterCrop", "layers.CenterCrop(3, 4)", IMG),
    _layer("RandomCrop", "layers.RandomCrop(3, 4)", IMG),
    _layer("RandomFlip", "layers.RandomFlip()", IMG),
    _layer("RandomRotation", "layers.RandomRotation(0.2)", IMG),
    _layer("RandomZoom", "layers.RandomZoom(0.2)", IMG),
    _layer("RandomTranslation", "layers.RandomTranslation(0.2, 0.2)", IMG),
    _layer("RandomContrast", "layers.RandomContrast(0.2)", IMG),
    _layer("RandomBrightness", "layers.RandomBrightness(0.2)", IMG),
    _layer(
        "CategoryEncoding",
        "layers.CategoryEncoding(num_tokens=6, output_mode='multi_hot')",
        ("int", (3, 4), 6),
    ),
    _layer("Discretization", "layers.Discretization(bin_boundaries=[-0.5, 0.0, 0.7])", (3, 4)),
]

LAYER_LOSSES = [
    ("layer_losses", "Dense_regularizers", expr, {"inputs": [N(4, 5)]})
    for expr in [
        "layers.Dense(3, kernel_regularizer=regularizers.L1L2(0.01, 0.02), "
        "bias_regularizer='l2', activity_regularizer=regularizers.L1(0.05))"
    ]
] + [
    (
        "layer_losses",
        "Conv1D_regularizers",
        "layers.Conv1D(3, 2, kernel_regularizer='l2', bias_regularizer=regularizers.L1(0.3), "
        "activity_regularizer=regularizers.L2(0.1))",
        {"inputs": [N(2, 6, 3)]},
    ),
    (
        "layer_losses",
        "Conv3D_regularizers",
        "layers.Conv3D(2, 2, kernel_regularizer=regularizers.L1(0.02), activity_regularizer='l2')",
        {"inputs": [N(*VOL)]},
    ),
    (
        "layer_losses",
        "Conv2DTranspose_regularizers",
        "layers.Conv2DTranspose(2, 3, kernel_regularizer='l1', bias_regularizer='l2')",
        {"inputs": [N(*IMG)]},
    ),
    (
        "layer_losses",
        "DepthwiseConv2D_regularizers",
        "layers.DepthwiseConv2D(3, depthwise_regularizer=regularizers.L2(0.2), "
        "activity_regularizer=regularizers.L1(0.01))",
        {"inputs": [N(*IMG)]},
    ),
    (
        "layer_losses",
        "SeparableConv2D_regularizers",
        "layers.SeparableConv2D(2, 3, depthwise_regularizer='l1', "
        "pointwise_regularizer=regularizers.L2(0.3), bias_regularizer='l2')",
        {"inputs": [N(*IMG)]},
    ),
    (
        "layer_losses",
        "Embedding_regularizers",
        "layers.Embedding(10, 3, embeddings_regularizer=regularizers.L2(0.1), "
        "activity_regularizer=regularizers.L1(0.02))",
        {"inputs": [("int", (2, 5), 10)]},
    ),
    (
        "layer_losses",
        "LSTM_regularizers",
        "layers.LSTM(3, kernel_regularizer='l2', recurrent_regularizer=regularizers.L1(0.02), "
        "bias_regularizer='l1', activity_regularizer=regularizers.L2(0.3))",
        {"inputs": [N(*SEQ)]},
    ),
    (
        "layer_losses",
        "GRU_regularizers",
        "layers.GRU(3, kernel_regularizer='l1', recurrent_regularizer='l2')",
        {"inputs": [N(*SEQ)]},
    ),
    (
        "layer_losses",
        "SimpleRNN_regularizers",
        # no activity_regularizer: Keras 3.15.1's SimpleRNN takes it and never applies it
        "layers.SimpleRNN(3, recurrent_regularizer=regularizers.L1L2(0.01, 0.01), "
        "kernel_regularizer='l1', return_sequences=True)",
        {"inputs": [N(*SEQ)]},
    ),
    (
        "layer_losses",
        "GroupNormalization_regularizers",
        "layers.GroupNormalization(2, gamma_regularizer='l2', beta_regularizer='l1')",
        {"inputs": [N(2, 3, 4)]},
    ),
]

TRAIN = [
    ("train", f"train_{name}", expr, {"x": x if isinstance(x[0], str) else N(*x), "y": N(*y)})
    for name, expr, x, y in [
        (
            "Dense_MaxNorm",
            "layers.Dense(3, kernel_constraint=constraints.MaxNorm(0.4))",
            (8, 5),
            (8, 3),
        ),
        (
            "Dense_NonNeg_UnitNorm",
            "layers.Dense(3, kernel_constraint='non_neg', bias_constraint=constraints.UnitNorm())",
            (8, 5),
            (8, 3),
        ),
        (
            "Conv1D_MinMaxNorm",
            "layers.Conv1D(2, 3, kernel_constraint=constraints.MinMaxNorm(0.5, 0.6, rate=0.7, "
            "axis=[0, 1]))",
            (4, 6, 3),
            (4, 4, 2),
        ),
        (
            "Conv2D_MaxNorm",
            "layers.Conv2D(2, 3, kernel_constraint=constraints.MaxNorm(0.5, axis=[0, 1, 2]))",
            (4, 5, 5, 2),
            (4, 3, 3, 2),
        ),
        (
            "Conv3D_UnitNorm",
            "layers.Conv3D(2, 2, kernel_constraint=constraints.UnitNorm(axis=[0, 1, 2, 3]), "
            "bias_constraint='non_neg')",
            (4, 3, 3, 3, 2),
            (4, 2, 2, 2, 2),
        ),
        (
            "LSTM_constraints",
            "layers.LSTM(3, kernel_constraint=constraints.MaxNorm(0.5), "
            "recurrent_constraint=constraints.UnitNorm(), bias_constraint='non_neg')",
            (8, 5, 4),
            (8, 3),
        ),
        (
            "GRU_constraints",
            "layers.GRU(3, kernel_constraint=constraints.MaxNorm(0.4, axis=1), "
            "recurrent_constraint=constraints.MinMaxNorm(0.2, 0.5), "
            "bias_constraint=constraints.MaxNorm(0.3))",
            (8, 5, 4),
            (8, 3),
        ),
        (
            "Embedding_MaxNorm",
            "layers.Embedding(6, 3, embeddings_constraint=constraints.MaxNorm(0.03, axis=1))",
            ("int", (8, 4), 6),
            (8, 4, 3),
        ),
    ]
]


def _metric(row_id: str, expr: str, y_true: Spec, y_pred: Spec, weighted: bool = True) -> tuple:
    data: dict[str, Any] = {"y_true": [y_true, y_true], "y_pred": [y_pred, y_pred]}
    if weighted:
        data["sample_weight"] = ("positive", (y_true[1][0],))
    return ("metric", row_id, expr, data)


B, C = 12, 4
BIN = ("binary", (B, 1))
PROB = ("uniform", (B, 1))
ONEHOT = ("onehot", (B, C))
SOFT = ("softmax", (B, C))
SPARSE = ("int", (B, 1), C)
REAL = ("normal", (B, 3))
MULTI_TRUE = ("binary", (B, 3))
MULTI_PRED = ("uniform", (B, 3))

METRICS = [
    _metric("AUC", "metrics.AUC()", BIN, PROB),
    _metric("AUC_PR", "metrics.AUC(curve='PR')", BIN, PROB),
    _metric("AUC_PR_50", "metrics.AUC(num_thresholds=50, curve='PR')", BIN, PROB, False),
    _metric("AUC_PR_minoring", "metrics.AUC(curve='PR', summation_method='minoring')", BIN, PROB),
    _metric("AUC_PR_majoring", "metrics.AUC(curve='PR', summation_method='majoring')", BIN, PROB),
    _metric("AUC_ROC_minoring", "metrics.AUC(summation_method='minoring')", BIN, PROB),
    _metric("AUC_ROC_majoring", "metrics.AUC(summation_method='majoring')", BIN, PROB),
    _metric("AUC_PRGAIN", "metrics.AUC(curve='PRGAIN')", BIN, PROB),
    _metric("AUC_multi_label", "metrics.AUC(multi_label=True)", MULTI_TRUE, MULTI_PRED),
    _metric(
        "AUC_multi_label_PR_weights",
        "metrics.AUC(curve='PR', multi_label=True, num_labels=3, label_weights=[0.2, 1.0, 0.5])",
        MULTI_TRUE,
        MULTI_PRED,
    ),
    _metric(
        "AUC_label_weights_flat",
        "metrics.AUC(num_thresholds=20, label_weights=[0.2, 1.0, 0.5])",
        MULTI_TRUE,
        MULTI_PRED,
    ),
    _metric(
        "AUC_thresholds",
        "metrics.AUC(thresholds=[0.1, 0.25, 0.3, 0.6, 0.62, 0.9], curve='PR')",
        BIN,
        PROB,
    ),
    _metric("AUC_logits", "metrics.AUC(from_logits=True, curve='PR')", BIN, ("normal", (B, 1))),
    _metric("Accuracy", "metrics.Accuracy()", SPARSE, SPARSE),
    _metric("BinaryAccuracy", "metrics.BinaryAccuracy(threshold=0.4)", BIN, PROB),
    _metric("CategoricalAccuracy", "metrics.CategoricalAccuracy()", ONEHOT, SOFT),
    _metric("SparseCategoricalAccuracy", "metrics.SparseCategoricalAccuracy()", SPARSE, SOFT),
    _metric("TopKCategoricalAccuracy", "metrics.TopKCategoricalAccuracy(k=2)", ONEHOT, SOFT),
    _metric(
        "SparseTopKCategoricalAccuracy", "metrics.SparseTopKCategoricalAccuracy(k=2)", SPARSE, SOFT
    ),
    _metric("MeanSquaredError", "metrics.MeanSquaredError()", REAL, REAL),
    _metric("MeanAbsoluteError", "metrics.MeanAbsoluteError()", REAL, REAL),
    _metric("MeanAbsolutePercentageError", "metrics.MeanAbsolutePercentageError()", REAL, REAL),
    _metric("MeanSquaredLogarithmicError", "metrics.MeanSquaredLogarithmicError()", PROB, PROB),
    _metric("RootMeanSquaredError", "metrics.RootMeanSquaredError()", REAL, REAL),
    _metric("LogCoshError", "metrics.LogCoshError()", REAL, REAL),
    _metric("CosineSimilarity", "metrics.CosineSimilarity()", REAL, REAL),
    _metric("Hinge", "metrics.Hinge()", ("sign", (B, 3)), REAL),
    _metric("SquaredHinge", "metrics.SquaredHinge()", ("sign", (B, 3)), REAL),
    _metric("CategoricalHinge", "metrics.CategoricalHinge()", ONEHOT, ("normal", (B, C))),
    _metric("KLDivergence", "metrics.KLDivergence()", SOFT, SOFT),
    _metric("Poisson", "metrics.Poisson()", PROB, PROB),
    _metric("BinaryCrossentropy", "metrics.BinaryCrossentropy()", BIN, PROB),
    _metric("CategoricalCrossentropy", "metrics.CategoricalCrossentropy()", ONEHOT, SOFT),
    _metric(
        "SparseCategoricalCrossentropy", "metrics.SparseCategoricalCrossentropy()", SPARSE, SOFT
    ),
    _metric("TruePositives", "metrics.TruePositives()", BIN, PROB),
    _metric("TrueNegatives", "metrics.TrueNegatives()", BIN, PROB),
    _metric("FalsePositives", "metrics.FalsePositives(thresholds=[0.3, 0.6])", BIN, PROB),
    _metric("FalseNegatives", "metrics.FalseNegatives()", BIN, PROB),
    _metric("Precision", "metrics.Precision()", BIN, PROB),
    _metric("Recall", "metrics.Recall(thresholds=0.3)", BIN, PROB),
    _metric("PrecisionAtRecall", "metrics.PrecisionAtRecall(0.5)", BIN, PROB),
    _metric("RecallAtPrecision", "metrics.RecallAtPrecision(0.6)", BIN, PROB),
    _metric("SensitivityAtSpecificity", "metrics.SensitivityAtSpecificity(0.5)", BIN, PROB),
    _metric("SpecificityAtSensitivity", "metrics.SpecificityAtSensitivity(0.5)", BIN, PROB),
    _metric("F1Score", "metrics.F1Score(average='macro', threshold=0.5)", MULTI_TRUE, MULTI_PRED),
    _metric("FBetaScore", "metrics.FBetaScore(beta=2.0, average='micro')", ONEHOT, SOFT, False),
    _metric("R2Score", "metrics.R2Score()", REAL, REAL, False),
    _metric("MeanIoU", "metrics.MeanIoU(num_classes=4)", SPARSE, SPARSE),
    _metric("IoU", "metrics.IoU(num_classes=4, target_class_ids=[0, 2])", SPARSE, SPARSE),
    _metric("Mean", "metrics.Mean()", REAL, REAL),
    _metric("Sum", "metrics.Sum()", REAL, REAL),
]


def _loss(row_id: str, expr: str, y_true: Spec, y_pred: Spec, weighted: bool = False) -> tuple:
    data: dict[str, Any] = {"y_true": y_true, "y_pred": y_pred}
    if weighted:
        data["sample_weight"] = ("positive", (y_true[1][0],))
    return ("loss", row_id, expr, data)


MASKS = ("binary", (2, 4, 4, 1))
SEG = ("uniform", (2, 4, 4, 1))

LOSSES = [
    _loss("Dice", "losses.Dice()", MASKS, SEG),
    _loss("Dice_weighted", "losses.Dice()", MASKS, SEG, True),
    _loss("Dice_axis", "losses.Dice(axis=(1, 2, 3))", MASKS, SEG),
    _loss("Dice_axis_none", "losses.Dice(axis=(1, 2, 3), reduction='none')", MASKS, SEG),
    _loss("Dice_axis_weighted", "losses.Dice(axis=(1, 2, 3), reduction='sum')", MASKS, SEG, True),
    _loss("dice_function", "losses.dice", MASKS, SEG),
    _loss("Tversky", "losses.Tversky()", MASKS, SEG),
    _loss("Tversky_alpha_beta", "losses.Tversky(alpha=0.7, beta=0.3)", MASKS, SEG),
    _loss(
        "Tversky_axis",
        "losses.Tversky(alpha=0.2, beta=0.8, axis=(1, 2, 3), reduction=None)",
        MASKS,
        SEG,
    ),
    _loss("tversky_function", "losses.tversky", MASKS, SEG),
    _loss("MeanSquaredError", "losses.MeanSquaredError()", REAL, REAL, True),
    _loss("MeanAbsoluteError", "losses.MeanAbsoluteError(reduction='sum')", REAL, REAL),
    _loss("MeanAbsolutePercentageError", "losses.MeanAbsolutePercentageError()", REAL, REAL),
    _loss("MeanSquaredLogarithmicError", "losses.MeanSquaredLogarithmicError()", PROB, PROB),
    _loss("Huber", "losses.Huber(delta=0.5)", REAL, REAL, True),
    _loss("LogCosh", "losses.LogCosh()", REAL, REAL),
    _loss("BinaryCrossentropy", "losses.BinaryCrossentropy(label_smoothing=0.1)", BIN, PROB),
    _loss(
        "BinaryCrossentropy_logits",
        "losses.BinaryCrossentropy(from_logits=True)",
        BIN,
        ("normal", (B, 1)),
        True,
    ),
    _loss(
        "BinaryFocalCrossentropy",
        "losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=1.5)",
        BIN,
        PROB,
    ),
    _loss("CategoricalCrossentropy", "losses.CategoricalCrossentropy()", ONEHOT, SOFT, True),
    _loss(
        "CategoricalCrossentropy_smoothing",
        "losses.CategoricalCrossentropy(label_smoothing=0.2, from_logits=True)",
        ONEHOT,
        ("normal", (B, C)),
    ),
    _loss("CategoricalFocalCrossentropy", "losses.CategoricalFocalCrossentropy()", ONEHOT, SOFT),
    _loss("SparseCategoricalCrossentropy", "losses.SparseCategoricalCrossentropy()", SPARSE, SOFT),
    _loss("KLDivergence", "losses.KLDivergence()", SOFT, SOFT),
    _loss("Poisson", "losses.Poisson()", PROB, PROB),
    _loss("CosineSimilarity", "losses.CosineSimilarity()", REAL, REAL),
    _loss("Hinge", "losses.Hinge()", ("sign", (B, 3)), REAL),
    _loss("SquaredHinge", "losses.SquaredHinge()", ("sign", (B, 3)), REAL),
    _loss("CategoricalHinge", "losses.CategoricalHinge()", ONEHOT, ("normal", (B, C))),
    _loss("mean_squared_error_function", "losses.mean_squared_error", REAL, REAL),
    _loss("kl_divergence_function", "losses.kl_divergence", SOFT, SOFT),
]

OPTIMIZERS = [
    ("optimizer", name, expr, {"w": [N(3, 2), N(2)], "grads": [N(5, 3, 2), N(5, 2)]})
    for name, expr in [
        ("SGD", "optimizers.SGD(0.1, momentum=0.9, nesterov=True)"),
        ("Adam", "optimizers.Adam(0.05, amsgrad=True)"),
        ("AdamW", "optimizers.AdamW(0.05, weight_decay=0.1)"),
        ("Adamax", "optimizers.Adamax(0.05)"),
        ("Nadam", "optimizers.Nadam(0.05)"),
        ("RMSprop", "optimizers.RMSprop(0.02, momentum=0.5, centered=True)"),
        ("Adagrad", "optimizers.Adagrad(0.1)"),
        ("Adadelta", "optimizers.Adadelta(1.0)"),
        ("Lion", "optimizers.Lion(0.01)"),
        ("Lamb", "optimizers.Lamb(0.05)"),
        ("Adafactor", "optimizers.Adafactor(0.05)"),
        ("Ftrl", "optimizers.Ftrl(0.1, l1_regularization_strength=0.01)"),
        ("Adam_clipnorm", "optimizers.Adam(0.05, clipnorm=0.5)"),
    ]
]

WEIGHT = {"w": ("normal", (4, 3, 2))}
CONSTRAINTS = [
    ("constraint", name, expr, WEIGHT)
    for name, expr in [
        ("MaxNorm", "constraints.MaxNorm()"),
        ("MaxNorm_axes", "constraints.MaxNorm(1.2, axis=[0, 1])"),
        ("NonNeg", "constraints.NonNeg()"),
        ("UnitNorm", "constraints.UnitNorm(axis=1)"),
        ("MinMaxNorm", "constraints.MinMaxNorm(0.5, 1.5, rate=0.6, axis=2)"),
        ("max_norm_name", "constraints.get('max_norm')"),
    ]
]

REGULARIZERS = [
    ("regularizer", name, expr, WEIGHT)
    for name, expr in [
        ("L1", "regularizers.L1(0.03)"),
        ("L2", "regularizers.L2()"),
        ("L1L2", "regularizers.L1L2(l1=0.01, l2=0.02)"),
        ("l2_name", "regularizers.get('l2')"),
    ]
]

ROWS = LAYERS + LAYER_LOSSES + TRAIN + METRICS + LOSSES + OPTIMIZERS + CONSTRAINTS + REGULARIZERS
