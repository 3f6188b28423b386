"""StringLookup, IntegerLookup, CategoryEncoding and Hashing against Keras' documented
examples, pandas/NumPy recomputations and hash references.

"Keras docstring" below means the examples in Keras 3.15's own layer docstrings
(keras/src/layers/preprocessing/{string,integer}_lookup.py, hashing.py): inputs
and outputs as Keras prints them. CategoryEncoding numbers were obtained from
real Keras with
    KERAS_BACKEND=torch /work/keras-venv/bin/python benchmarks/keras_reference_preprocessing.py
which calls `keras.layers.CategoryEncoding(...)(np.array(...)).tolist()` on the
inputs written in each test.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import batchfit as keras
from batchfit.data._base import Source
from batchfit.layers import CategoryEncoding, Hashing, IntegerLookup, StringLookup
from batchfit.layers._adapt_data import TokenCounts, merge_counts
from batchfit.layers._hashes import fingerprint64, hash_buckets, siphash64

VOCAB = ["a", "b", "c", "d"]


class StringSource(Source):
    """A minimal `batchfit.data` source yielding `({column: object array}, y)` batches."""

    def __init__(self, columns: dict[str, np.ndarray], batch_size: int) -> None:
        super().__init__()
        self.columns = columns
        self.batch_size = batch_size
        self.rows = len(next(iter(columns.values())))

    def _iter_epoch(self, epoch: int, skip_batches: int) -> Iterator[Any]:
        for start in range(skip_batches * self.batch_size, self.rows, self.batch_size):
            part = {k: v[start : start + self.batch_size] for k, v in self.columns.items()}
            yield part, np.zeros(len(next(iter(part.values()))), np.float32)


def keras_order(values: np.ndarray) -> list[Any]:
    """Keras' adapted order, recomputed with pandas: count desc, then token desc."""
    counts = pd.Series(values.reshape(-1)).value_counts()
    frame = pd.DataFrame({"token": counts.index, "count": counts.to_numpy()})
    frame = frame.sort_values(["count", "token"], ascending=[False, False])
    return frame["token"].tolist()


# -- Keras' documented examples ---------------------------------------------------------


def test_string_lookup_docstring_examples() -> None:
    data = [["a", "c", "d"], ["d", "z", "b"]]
    out = StringLookup(vocabulary=VOCAB)(data)
    assert out.dtype == torch.int64
    assert out.tolist() == [[1, 3, 4], [4, 0, 2]]
    layer = StringLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    assert layer(data).tolist() == [[5, 3, 1], [1, 2, 4]]
    two = StringLookup(vocabulary=VOCAB, num_oov_indices=2)  # 'm' -> 0, 'z' -> 1 (FarmHash)
    assert two([["a", "c", "d"], ["m", "z", "b"]]).tolist() == [[2, 4, 5], [0, 1, 3]]
    one_hot = StringLookup(vocabulary=VOCAB, output_mode="one_hot")(["a", "b", "c", "d", "z"])
    assert one_hot.dtype == torch.float32
    assert one_hot.tolist() == np.eye(5)[[1, 2, 3, 4, 0]].tolist()
    data4 = [["a", "c", "d", "d"], ["d", "z", "b", "z"]]
    multi = StringLookup(vocabulary=VOCAB, output_mode="multi_hot")(data4)
    assert multi.tolist() == [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]]
    count = StringLookup(vocabulary=VOCAB, output_mode="count")(data4)
    assert count.tolist() == [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]]
    tfidf = StringLookup(output_mode="tf_idf")
    tfidf.set_vocabulary(VOCAB, idf_weights=[0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(
        tfidf(data4).numpy(), [[0, 0.25, 0, 0.6, 0.8], [1.0, 0, 0.75, 0, 0.4]], rtol=1e-6
    )
    tfidf.set_vocabulary(["[UNK]", *VOCAB], idf_weights=[0.9, 0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(
        tfidf(data4).numpy(), [[0, 0.25, 0, 0.6, 0.8], [1.8, 0, 0.75, 0, 0.4]], rtol=1e-6
    )
    inverse = StringLookup(vocabulary=VOCAB, invert=True)([[1, 3, 4], [4, 0, 2]])
    assert inverse.tolist() == [["a", "c", "d"], ["d", "[UNK]", "b"]]


def test_integer_lookup_docstring_examples() -> None:
    vocab = [12, 36, 1138, 42]
    data = np.array([[12, 1138, 42], [42, 1000, 36]])
    assert IntegerLookup(vocabulary=vocab)(data).tolist() == [[1, 3, 4], [4, 0, 2]]
    layer = IntegerLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]
    assert layer(data).tolist() == [[5, 2, 1], [1, 3, 4]]
    two = IntegerLookup(vocabulary=vocab, num_oov_indices=2)
    assert two(np.array([[12, 1138, 42], [37, 1000, 36]])).tolist() == [[2, 4, 5], [1, 0, 3]]
    oov = np.array([100, 300, 700, 1100, 1700, 2000])
    floormod = IntegerLookup(vocabulary=[10, 20, 30], num_oov_indices=4, oov_method="floormod")
    assert floormod(oov).tolist() == [0, 0, 0, 0, 0, 0]
    farm = IntegerLookup(vocabulary=[10, 20, 30], num_oov_indices=4, oov_method="farmhash")
    assert farm(oov).tolist() == [3, 3, 2, 2, 0, 1]
    data4 = np.array([[12, 1138, 42, 42], [42, 7, 36, 7]])
    multi = IntegerLookup(vocabulary=vocab, output_mode="multi_hot")(data4)
    assert multi.tolist() == [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]]
    count = IntegerLookup(vocabulary=vocab, output_mode="count")(data4)
    assert count.tolist() == [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]]
    tfidf = IntegerLookup(
        output_mode="tf_idf", vocabulary=vocab, idf_weights=[0.25, 0.75, 0.6, 0.4]
    )
    np.testing.assert_allclose(
        tfidf(data4).numpy(), [[0, 0.25, 0, 0.6, 0.8], [1.0, 0, 0.75, 0, 0.4]], rtol=1e-6
    )
    back = IntegerLookup(vocabulary=vocab, invert=True)(torch.tensor([[1, 3, 4], [4, 0, 2]]))
    assert back.tolist() == [[12, 1138, 42], [42, -1, 36]]


def test_hashing_docstring_examples() -> None:
    inp = [["A"], ["B"], ["C"], ["D"], ["E"]]
    assert Hashing(num_bins=3)(inp).tolist() == [[1], [0], [1], [1], [2]]
    masked = Hashing(num_bins=3, mask_value="")([["A"], ["B"], [""], ["C"], ["D"]])
    assert masked.tolist() == [[1], [1], [0], [2], [2]]
    assert Hashing(num_bins=3, salt=[133, 137])(inp).tolist() == [[1], [2], [1], [0], [2]]
    assert Hashing(num_bins=3, salt=133)(inp).tolist() == [[0], [0], [2], [1], [0]]


# -- hashes against references ----------------------------------------------------------


def test_fingerprint64_matches_pyfarmhash_on_every_length_branch() -> None:
    farmhash = pytest.importorskip("farmhash")  # pyfarmhash, Google's C++ FarmHash
    rng = np.random.default_rng(0)
    for n in [*range(0, 140), 255, 256, 257, 1000]:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert fingerprint64(data) == farmhash.fingerprint64(data), n


def test_siphash_reference_vector() -> None:
    # SipHash-2-4 paper, Appendix A: key 00..0f, message 00..0e -> a129ca6149be45e5
    key = (int.from_bytes(bytes(range(8)), "little"), int.from_bytes(bytes(range(8, 16)), "little"))
    assert siphash64(key, bytes(range(15))) == 0xA129CA6149BE45E5


def test_hashing_integers_hash_their_text_and_modes() -> None:
    values = torch.tensor([[3], [17], [3], [123456789]])
    expected = [[fingerprint64(str(v).encode()) % 5] for v in [3, 17, 3, 123456789]]
    assert Hashing(num_bins=5)(values).tolist() == expected
    one_hot = Hashing(num_bins=5, output_mode="one_hot")(values)
    assert one_hot.shape == (4, 5) and one_hot.dtype == torch.float32
    assert one_hot.argmax(1).tolist() == [e[0] for e in expected]
    count = Hashing(num_bins=5, output_mode="count")(np.array([["x", "x", "y"]], dtype=object))
    bx, by = hash_buckets(["x", "y"], 5).tolist()
    ref = np.zeros(5)
    ref[bx] += 2
    ref[by] += 1
    assert count.tolist() == [ref.tolist()]


# -- adapt: order, cap, streaming, merging ----------------------------------------------


def test_adapt_order_and_cap_match_a_pandas_recount() -> None:
    rng = np.random.default_rng(1)
    words = np.array([f"w{i:03d}" for i in range(300)], dtype=object)
    data = rng.choice(words, size=(20_000, 1), p=rng.dirichlet(np.ones(300) * 0.3))
    layer = StringLookup(max_tokens=50)
    layer.adapt(data)
    assert layer.get_vocabulary(include_special_tokens=False) == keras_order(data)[:49]
    assert layer.vocabulary_size() == 50
    full = StringLookup(mask_token="")
    full.adapt(data)
    assert full.get_vocabulary()[:2] == ["", "[UNK]"]
    assert full.get_vocabulary(include_special_tokens=False) == keras_order(data)
    ints = rng.integers(0, 40, size=5000) * 7
    il = IntegerLookup()
    il.adapt(ints)
    assert il.get_vocabulary()[1:] == keras_order(ints)


def test_ties_break_by_descending_token() -> None:
    layer = StringLookup()
    layer.adapt(np.array(["b", "a", "c", "a", "c", "b", "é", "Z"], dtype=object))
    # a, b, c twice; é, Z once: descending count, then descending code point
    assert layer.get_vocabulary() == ["[UNK]", "c", "b", "a", "é", "Z"]


def test_adapt_streams_sources_generators_and_one_column_dicts() -> None:
    rng = np.random.default_rng(2)
    cut = rng.choice(np.array(["Fair", "Good", "Ideal", "Premium"], dtype=object), 1000)
    reference = StringLookup()
    reference.adapt(cut)
    src = StringSource({"cut": cut}, batch_size=64)
    from_source = StringLookup()
    from_source.adapt(src)
    assert from_source.get_vocabulary() == reference.get_vocabulary()
    gen = StringLookup()
    gen.adapt(cut[i : i + 100] for i in range(0, 1000, 100))
    assert gen.get_vocabulary() == reference.get_vocabulary()
    chunked = StringLookup()
    chunked.adapt(cut, batch_size=7)
    assert chunked.get_vocabulary() == reference.get_vocabulary()
    first_two = StringLookup()
    first_two.adapt(StringSource({"cut": cut}, batch_size=100), steps=2)
    assert first_two.get_vocabulary()[1:] == keras_order(cut[:200])
    two_columns = StringSource({"cut": cut, "color": cut}, batch_size=64)
    with pytest.raises(ValueError, match=r"exactly one column.*\['color', 'cut'\]"):
        StringLookup().adapt(two_columns)


def test_merging_partial_count_tables_equals_one_pass() -> None:
    rng = np.random.default_rng(3)
    for data in (
        rng.choice(np.array(list("abcdefghij"), dtype=object), 999),
        rng.zipf(1.5, size=200_000),  # integers: enough distinct values to fold tables
    ):
        cls = StringLookup if data.dtype == object else IntegerLookup
        whole = cls(max_tokens=60)
        whole.adapt(data)
        # two ranks' count tables, computed independently by pandas, summed in rank order
        parts = [pd.Series(data[r::2]).value_counts().to_dict() for r in range(2)]
        counts = TokenCounts()
        for part in parts:
            counts.merge({k.item() if hasattr(k, "item") else k: v for k, v in part.items()})
        merged = cls(max_tokens=60)
        merged._finalize(counts, TokenCounts(), 0)
        assert merged.get_vocabulary() == whole.get_vocabulary()
        assert merge_counts(parts) == pd.Series(data).value_counts().to_dict()


def test_tf_idf_adapt_uses_keras_idf_formula() -> None:
    docs = np.array([["a", "b", "a"], ["b", "c", "c"], ["a", "a", "a"]], dtype=object)
    layer = StringLookup(output_mode="tf_idf")
    layer.adapt(docs)
    vocab = layer.get_vocabulary(include_special_tokens=False)
    assert vocab == ["a", "c", "b"]  # counts 5, 2, 2 (ties: c > b)
    doc_freq = {"a": 2, "b": 2, "c": 1}
    idf = np.array([math.log(1 + 3 / (1 + doc_freq[t])) for t in vocab], np.float32)
    expected_idf = np.concatenate([[idf.mean()], idf])  # OOV gets the mean, as Keras
    counts = np.array([[0, 2, 0, 1], [0, 0, 2, 1], [0, 3, 0, 0]], np.float32)
    np.testing.assert_allclose(layer(docs).numpy(), counts * expected_idf, rtol=1e-6)


def test_shapes_modes_and_mask() -> None:
    layer = StringLookup(vocabulary=VOCAB, output_mode="one_hot")
    assert layer(np.array([["a"], ["d"]])).shape == (2, 5)  # (batch, 1) -> (batch, depth)
    assert StringLookup(vocabulary=VOCAB)(np.array(["a", "d"])).shape == (2,)
    padded = StringLookup(
        vocabulary=VOCAB, output_mode="multi_hot", max_tokens=8, pad_to_max_tokens=True
    )
    assert padded(np.array([["a", "b"]])).tolist() == [[0, 1, 1, 0, 0, 0, 0, 0]]
    masked = StringLookup(vocabulary=VOCAB, mask_token="")
    assert masked(np.array(["", "a", "zz"])).tolist() == [0, 2, 1]
    masked_count = StringLookup(vocabulary=VOCAB, mask_token="", output_mode="count")
    assert masked_count(np.array([["", "a", "a"]])).tolist() == [[0, 2, 0, 0, 0]]
    assert StringLookup(vocabulary=VOCAB)(np.array([b"c"])).tolist() == [3]


def test_category_encoding_matches_keras() -> None:
    # reference: keras.layers.CategoryEncoding on the same inputs (see module docstring)
    one_hot = CategoryEncoding(num_tokens=4, output_mode="one_hot")
    assert one_hot(np.array([3, 2, 0, 1])).tolist() == [
        [0, 0, 0, 1], [0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]
    ]  # fmt: skip
    assert one_hot(np.array([[3], [2]])).tolist() == [[0, 0, 0, 1], [0, 0, 1, 0]]
    multi = CategoryEncoding(num_tokens=4, output_mode="multi_hot")
    assert multi(np.array([0, 1, 1])).tolist() == [1, 1, 0, 0]
    assert multi(np.array([[0, 1], [0, 0], [1, 2], [3, 1]])).tolist() == [
        [1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]
    ]  # fmt: skip
    count = CategoryEncoding(num_tokens=4, output_mode="count")
    weights = np.array([[0.1, 0.2], [0.1, 0.1], [0.2, 0.3], [0.4, 0.2]])
    np.testing.assert_allclose(
        count(np.array([[0, 1], [0, 0], [1, 2], [3, 1]]), count_weights=weights).numpy(),
        [[0.1, 0.2, 0, 0], [0.2, 0, 0, 0], [0, 0.2, 0.3, 0], [0, 0.2, 0, 0.4]],
        rtol=1e-6,
    )
    assert CategoryEncoding(5, output_mode="count")(np.array([0, 4, 4, 1])).tolist() == [
        1,
        1,
        0,
        0,
        2,
    ]
    with pytest.raises(ValueError, match="0 <= values < num_tokens=3, got 3"):
        CategoryEncoding(num_tokens=3, output_mode="one_hot")(np.array([0, 3]))


# -- errors -------------------------------------------------------------------------------


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match="sparse=True is not supported"):
        StringLookup(sparse=True, output_mode="multi_hot")
    with pytest.raises(ValueError, match="output_mode must be one of"):
        StringLookup(output_mode="onehot")
    with pytest.raises(ValueError, match="no vocabulary: call adapt"):
        StringLookup()(["a"])
    with pytest.raises(ValueError, match="expected strings.*torch tensor"):
        StringLookup(vocabulary=VOCAB)(torch.tensor([1]))
    with pytest.raises(ValueError, match="expected strings, got an array of dtype int64"):
        StringLookup().adapt(np.array([1, 2]))
    with pytest.raises(ValueError, match="num_oov_indices=0.*found \\['z'\\]"):
        StringLookup(vocabulary=VOCAB, num_oov_indices=0)(["a", "z"])
    with pytest.raises(ValueError, match="repeats \\['a'\\]"):
        StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="cannot adapt a layer built with a vocabulary"):
        StringLookup(vocabulary=VOCAB).adapt(["a"])
    with pytest.raises(ValueError, match="larger than max_tokens=3"):
        StringLookup(vocabulary=VOCAB, max_tokens=3)
    with pytest.raises(ValueError, match="got NoneType None \\(a missing value"):
        StringLookup().adapt(np.array(["a", None], dtype=object))
    with pytest.raises(ValueError, match="num_tokens must be a whole number >= 1, got -2"):
        CategoryEncoding(num_tokens=-2)


# -- saving -------------------------------------------------------------------------------


def test_adapted_lookups_save_and_load_with_the_model(tmp_path: Any) -> None:
    il = IntegerLookup(num_oov_indices=2)
    il.adapt(np.array([5, 5, 7, 9, 9, 9, 11]))
    model = keras.Sequential(
        [
            keras.Input((1,), dtype="int64"),
            il,
            keras.layers.Embedding(il.vocabulary_size(), 3),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    x = np.array([[5], [9], [100], [11]])
    path = str(tmp_path / "m.safetensors")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.layers[0].get_vocabulary() == il.get_vocabulary() == [-1, -1, 9, 5, 11, 7]
    again = loaded.layers[0]
    again.adapt(np.array([1, 1, 2]))  # adapted state stays adaptable after loading
    assert again.get_vocabulary() == [-1, -1, 1, 2]
    sl = StringLookup(output_mode="tf_idf", max_tokens=6, pad_to_max_tokens=True)
    sl.adapt(np.array([["x", "y"], ["y", "y"]], dtype=object))
    clone = StringLookup.from_config(json.loads(json.dumps(sl.get_config())))
    data = np.array([["x", "y", "q"]], dtype=object)
    np.testing.assert_array_equal(clone(data).numpy(), sl(data).numpy())
    hashing = Hashing.from_config(json.loads(json.dumps(Hashing(7, salt=[1, 2]).get_config())))
    assert hashing(["abc"]).tolist() == [siphash64((1, 2), b"abc") % 7]


@pytest.mark.parametrize(
    ("cls", "bad", "match"),
    [
        (StringLookup, {"vocabulary": [1, 2]}, "vocabulary must hold strings, got int"),
        (StringLookup, {"vocabulary": "/etc/passwd"}, "'vocabulary' must be a list"),
        (StringLookup, {"num_oov_indices": -1}, "'num_oov_indices' must be a whole number"),
        (StringLookup, {"max_tokens": 2**40, "pad_to_max_tokens": True}, "refusing"),
        (StringLookup, {"idf_weights": ["x"], "output_mode": "tf_idf"}, "must hold numbers"),
        (IntegerLookup, {"vocabulary": ["a"]}, "vocabulary must hold integers, got str"),
        (IntegerLookup, {"mask_token": 1.5}, "mask_token must hold integers"),
        (CategoryEncoding, {"num_tokens": -3}, "num_tokens must be a whole number"),
        (CategoryEncoding, {"num_tokens": 2**40}, "refusing"),
        (Hashing, {"num_bins": "7"}, "num_bins must be a whole number"),
        (Hashing, {"num_bins": 4, "salt": [1, "x"]}, "salt must be"),
    ],
)
def test_hostile_configs_are_refused(cls: Any, bad: dict[str, Any], match: str) -> None:
    config = {"name": "layer_x", **bad}
    if cls is CategoryEncoding and "num_tokens" not in bad:
        config["num_tokens"] = 3
    with pytest.raises(ValueError, match=match) as info:
        cls.from_config(config)
    assert "layer_x" in str(info.value)


def test_hostile_vocabulary_in_a_saved_file_is_refused(tmp_path: Any) -> None:
    from safetensors.torch import save_file

    layer = StringLookup(vocabulary=VOCAB, name="cut_lookup")
    model = keras.Sequential([layer])
    config = {"format": 1, "kind": "model", "model": model.get_config()}
    config["model"]["layers"][0]["config"]["vocabulary"] = ["a", {"x": 1}]
    path = str(tmp_path / "bad.safetensors")
    save_file({}, path, metadata={"batchfit": json.dumps(config)})
    with pytest.raises(ValueError, match="cut_lookup: vocabulary must hold strings, got dict"):
        keras.models.load_model(path)


def test_one_hot_lookup_in_the_pipeline_equals_pandas_dummies_and_feeds_a_model() -> None:
    rng = np.random.default_rng(7)
    cut = rng.choice(np.array(["Fair", "Good", "Ideal", "Premium"], dtype=object), 500)
    lookup = StringLookup(output_mode="one_hot")
    lookup.adapt(StringSource({"cut": cut}, batch_size=128))
    encoded = lookup(cut[:, None])
    assert encoded.shape == (500, 5) and encoded.dtype == torch.float32
    dummies = pd.get_dummies(pd.Series(cut))[lookup.get_vocabulary()[1:]].to_numpy(np.float32)
    np.testing.assert_array_equal(encoded[:, 1:].numpy(), dummies)
    assert encoded[:, 0].sum() == 0  # nothing out of vocabulary
    # in the data pipeline, before the model (Keras' advice off TensorFlow): ids feed Embedding
    ids = StringLookup(vocabulary=lookup.get_vocabulary()[1:])(cut[:, None]).numpy()
    model = keras.Sequential(
        [keras.Input((1,), dtype="int64"), keras.layers.Embedding(5, 2), keras.layers.Flatten()]
    )
    embedded = model.predict(ids, verbose=0)
    table = model.layers[0].get_weights()[0]
    np.testing.assert_allclose(embedded, table[ids[:, 0]], rtol=1e-6)


def test_a_model_given_strings_says_so() -> None:
    # the engine turns x into tensors before the first layer: strings stop there
    model = keras.Sequential([StringLookup(vocabulary=VOCAB), keras.layers.Embedding(5, 2)])
    with pytest.raises(TypeError, match="must hold numbers.*strings.*StringLookup"):
        model.predict(np.array([["a"], ["b"]]), verbose=0)
