# ruff: noqa  -- a program written by others, kept as written (only its imports changed)
# fmt: off
# Source: https://keras.io/guides/transfer_learning/
#   (github.com/keras-team/keras-io, guides/transfer_learning.py), by fchollet.
# Licence: Apache-2.0 (keras-io).
# Changes: the import lines (`import keras` -> `import batchfit as keras`; the unused
# `import tensorflow as tf` dropped). Only the guide's first part runs here, "Freezing
# layers" and "Recursive setting of the trainable attribute", whose code is kept as
# written (prose shortened); the rest of the guide needs keras.applications.Xception,
# tensorflow_datasets and matplotlib downloads.
# Reference: the guide states the counts it prints (Dense: 2 weights, 2 trainable;
# BatchNormalization: 4 weights, 2 trainable, 2 not; frozen Dense: 0 trainable, 2 not)
# and asserts in its own code that frozen weights do not move and that freezing an
# outer model freezes the inner one; the test reads the counts from the printed output.
"""
Title: Transfer learning & fine-tuning
Author: [fchollet](https://twitter.com/fchollet)
Date created: 2020/04/15
Last modified: 2020/05/12
Description: Complete guide to transfer learning & fine-tuning in Keras.
Accelerator: GPU
"""
"""
## Setup
"""

import numpy as np
import batchfit as keras

"""
## Freezing layers: understanding the `trainable` attribute

**Example: the `Dense` layer has 2 trainable weights (kernel & bias)**
"""

layer = keras.layers.Dense(3)
layer.build((None, 4))  # Create the weights

print("weights:", len(layer.weights))
print("trainable_weights:", len(layer.trainable_weights))
print("non_trainable_weights:", len(layer.non_trainable_weights))

"""
**Example: the `BatchNormalization` layer has 2 trainable weights and 2 non-trainable
 weights**
"""

layer = keras.layers.BatchNormalization()
layer.build((None, 4))  # Create the weights

print("weights:", len(layer.weights))
print("trainable_weights:", len(layer.trainable_weights))
print("non_trainable_weights:", len(layer.non_trainable_weights))

"""
**Example: setting `trainable` to `False`**
"""

layer = keras.layers.Dense(3)
layer.build((None, 4))  # Create the weights
layer.trainable = False  # Freeze the layer

print("weights:", len(layer.weights))
print("trainable_weights:", len(layer.trainable_weights))
print("non_trainable_weights:", len(layer.non_trainable_weights))

"""
When a trainable weight becomes non-trainable, its value is no longer updated during
 training.
"""

# Make a model with 2 layers
layer1 = keras.layers.Dense(3, activation="relu")
layer2 = keras.layers.Dense(3, activation="sigmoid")
model = keras.Sequential([keras.Input(shape=(3,)), layer1, layer2])

# Freeze the first layer
layer1.trainable = False

# Keep a copy of the weights of layer1 for later reference
initial_layer1_weights_values = layer1.get_weights()

# Train the model
model.compile(optimizer="adam", loss="mse")
model.fit(np.random.random((2, 3)), np.random.random((2, 3)))

# Check that the weights of layer1 have not changed during training
final_layer1_weights_values = layer1.get_weights()
np.testing.assert_allclose(
    initial_layer1_weights_values[0], final_layer1_weights_values[0]
)
np.testing.assert_allclose(
    initial_layer1_weights_values[1], final_layer1_weights_values[1]
)

"""
## Recursive setting of the `trainable` attribute

If you set `trainable = False` on a model or on any layer that has sublayers,
all children layers become non-trainable as well.

**Example:**
"""

inner_model = keras.Sequential(
    [
        keras.Input(shape=(3,)),
        keras.layers.Dense(3, activation="relu"),
        keras.layers.Dense(3, activation="relu"),
    ]
)

model = keras.Sequential(
    [
        keras.Input(shape=(3,)),
        inner_model,
        keras.layers.Dense(3, activation="sigmoid"),
    ]
)

model.trainable = False  # Freeze the outer model

assert inner_model.trainable == False  # All layers in `model` are now frozen
assert inner_model.layers[0].trainable == False  # `trainable` is propagated recursively
