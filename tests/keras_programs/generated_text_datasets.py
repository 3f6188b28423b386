"""Stand-in for `keras.datasets.imdb.load_data()`: generated reviews of IMDB's form.

As Keras' loader: lists of word ids of varying length, each starting with 1
(`start_char`), words from `index_from=3` on (ids 4, 5, ...), ids at or above
`num_words` replaced by 2 (`oov_char`); int64 labels 0/1. The signal: about
a fifth of a positive review's words come from a fixed set of "positive"
words and a fifth of a negative one's from a "negative" set, anywhere in the
review; the rest are drawn from the other ids (Zipf-like, rare ones become `oov_char`). So a
program's accuracy shows that training works, not what IMDB would give.
"""

from __future__ import annotations

import numpy as np

Split = tuple[np.ndarray, np.ndarray]

_SENTIMENT_WORDS = 20  # ids 4..23 positive, 24..43 negative


def _reviews(n: int, num_words: int, rng: np.random.Generator) -> Split:
    labels = rng.integers(0, 2, n)
    reviews = []
    for label in labels:
        length = int(rng.integers(80, 300))
        words = rng.zipf(1.3, length) + 3 + 2 * _SENTIMENT_WORDS  # Zipf over the other ids
        words[words >= num_words] = 2  # oov_char
        marked = rng.uniform(size=length) < 0.2
        first = 4 + (0 if label == 1 else _SENTIMENT_WORDS)
        words[marked] = rng.integers(first, first + _SENTIMENT_WORDS, int(marked.sum()))
        reviews.append([1, *words.tolist()])
    out = np.empty(n, dtype=object)
    out[:] = reviews
    return out, labels.astype(np.int64)


def imdb_load_data(
    num_words: int = 20000, n_train: int = 512, n_test: int = 128, seed: int = 25
) -> tuple[Split, Split]:
    """As `keras.datasets.imdb.load_data(num_words=...)`: (x, y) pairs, x an object array of lists."""
    rng = np.random.default_rng(seed)
    return _reviews(n_train, num_words, rng), _reviews(n_test, num_words, rng)


class _Imdb:
    """As the module `keras.datasets.imdb`, for programs that import it by that name."""

    load_data = staticmethod(imdb_load_data)


imdb = _Imdb()
