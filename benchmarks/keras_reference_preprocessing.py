"""Reference numbers from real Keras 3 for tests/test_lookup_layers.py (CategoryEncoding)
and tests/test_discretization.py. Run under the Keras venv, never imported by batchfit:

    KERAS_BACKEND=torch /work/keras-venv/bin/python benchmarks/keras_reference_preprocessing.py

Keras 3.15's Discretization.adapt first checks `isinstance(data, tf.data.Dataset)`, which
fails without TensorFlow, so `adapt` below runs the rest of its body: reset_state,
update_state per batch, finalize_state. StringLookup/IntegerLookup/Hashing need
TensorFlow in Keras 3 and are checked against their docstring examples instead.
"""

# ruff: noqa
import numpy as np
import keras


def adapt(layer, data):  # Keras' adapt() minus its tf.data isinstance check (no TF here)
    layer.reset_state()
    for b in data if isinstance(data, list) else [data]:
        layer.update_state(b)
    layer.finalize_state()


L = keras.layers
ce = L.CategoryEncoding(num_tokens=4, output_mode="one_hot")
print("ce one_hot 1d", ce(np.array([3, 2, 0, 1])).tolist())
print(
    "ce one_hot (n,1)",
    L.CategoryEncoding(num_tokens=4, output_mode="one_hot")(np.array([[3], [2]])).tolist(),
)
print(
    "ce multi_hot 1d",
    L.CategoryEncoding(num_tokens=4, output_mode="multi_hot")(np.array([0, 1, 1])).tolist(),
)
print(
    "ce multi_hot 2d",
    L.CategoryEncoding(num_tokens=4, output_mode="multi_hot")(
        np.array([[0, 1], [0, 0], [1, 2], [3, 1]])
    ).tolist(),
)
c = L.CategoryEncoding(num_tokens=4, output_mode="count")
print(
    "ce count w",
    c(
        np.array([[0, 1], [0, 0], [1, 2], [3, 1]]),
        count_weights=np.array([[0.1, 0.2], [0.1, 0.1], [0.2, 0.3], [0.4, 0.2]]),
    ).tolist(),
)
print(
    "ce count 1d",
    L.CategoryEncoding(num_tokens=5, output_mode="count")(np.array([0, 4, 4, 1])).tolist(),
)
try:
    print(L.CategoryEncoding(num_tokens=3, output_mode="one_hot")(np.array([0, 3])).tolist())
except Exception as e:
    print("ce oob", type(e).__name__, str(e)[:200])
d = L.Discretization(bin_boundaries=[0.0, 1.0, 2.0])
print("disc", d(np.array([[-1.5, 1.0, 3.4, 0.5], [0.0, 3.0, 1.3, 0.0]])).tolist())
rng = np.random.default_rng(0)
x = rng.normal(size=(1000, 1)).astype("float32")
d = L.Discretization(num_bins=4, epsilon=0.01)
adapt(d, x)
print("disc adapt 1000", d.bin_boundaries)
x = rng.lognormal(size=(20000, 1)).astype("float32")
d = L.Discretization(num_bins=5, epsilon=0.01)
adapt(d, x)
print("disc adapt 20000 whole", d.bin_boundaries)
d = L.Discretization(num_bins=5, epsilon=0.01)
adapt(d, [x[i : i + 3000] for i in range(0, 20000, 3000)])
print("disc adapt 20000 batches3000", d.bin_boundaries)
d = L.Discretization(num_bins=3, epsilon=0.01, output_mode="one_hot")
adapt(d, np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]]))
print("disc one_hot", d.bin_boundaries, d(np.array([[1.0], [3.5], [6.0]])).tolist())
print(
    "disc multi_hot",
    L.Discretization(bin_boundaries=[0.0, 1.0], output_mode="multi_hot")(
        np.array([[-1.0, 0.5], [2.0, 2.0]])
    ).tolist(),
)
print(
    "disc count",
    L.Discretization(bin_boundaries=[0.0, 1.0], output_mode="count")(
        np.array([[-1.0, 0.5, 3.0], [2.0, 2.0, 0.0]])
    ).tolist(),
)
print("disc int dtype", L.Discretization(bin_boundaries=[0.0, 1.0])(np.array([[0.5]])).dtype)
print(L.Discretization(num_bins=4).get_config())

# streamed adapt (tests/test_discretization.py)
x = np.random.default_rng(5).gamma(2.0, size=(90, 1)).astype("float32")
d = keras.layers.Discretization(num_bins=4)
adapt(d, [x[:30], x[30:60], x[60:]])
print("90 in 3 batches", d.bin_boundaries)
d = keras.layers.Discretization(num_bins=4)
adapt(d, [x])
print("90 whole", d.bin_boundaries)
rng = np.random.default_rng(0)
rng.normal(size=(1000, 1))
y = rng.lognormal(size=(20000, 1)).astype("float32")
d = keras.layers.Discretization(num_bins=8)
adapt(d, np.array_split(y, 37))
print("lognormal 37 batches", d.bin_boundaries)
