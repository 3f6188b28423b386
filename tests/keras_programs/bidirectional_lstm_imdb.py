# ruff: noqa  -- a program written by others, kept as written (only its imports changed)
# fmt: off
# Source: https://keras.io/examples/nlp/bidirectional_lstm_imdb/
#   (github.com/keras-team/keras-io, examples/nlp/bidirectional_lstm_imdb.py), by fchollet.
# Licence: Apache-2.0 (keras-io).
# Changes, and nothing else: the import lines (tensorflow.keras -> batchfit); the IMDB
# download replaced by generated reviews of the same form (generated_text_datasets.py:
# 512 training and 128 validation reviews, lists of word ids of 81-300 words, num_words
# 20000; IMDB has 25,000 of each); the fit call keeps `history` (`history = model.fit`).
# Reference: the same program on the same generated data under Keras 3.15.1, torch
# 2.13.0 backend (KERAS_BACKEND=torch, one thread): val_accuracy 0.859 then 0.820 with
# keras.utils.set_random_seed(0), 0.969 then 0.820 with seed 1; 266 s (8 s/step: Keras'
# torch LSTM is a Python loop on CPU). The source reports no figure. The test asserts
# val_accuracy > 0.75 after the two epochs.
"""
Title: Bidirectional LSTM on IMDB
Author: [fchollet](https://twitter.com/fchollet)
Date created: 2020/05/03
Last modified: 2020/05/03
Description: Train a 2-layer bidirectional LSTM on the IMDB movie review sentiment classification dataset.
"""
"""
## Setup
"""

import numpy as np
import batchfit as keras
from batchfit import layers
from generated_text_datasets import imdb_load_data

max_features = 20000  # Only consider the top 20k words
maxlen = 200  # Only consider the first 200 words of each movie review

"""
## Build the model
"""

# Input for variable-length sequences of integers
inputs = keras.Input(shape=(None,), dtype="int32")
# Embed each integer in a 128-dimensional vector
x = layers.Embedding(max_features, 128)(inputs)
# Add 2 bidirectional LSTMs
x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
x = layers.Bidirectional(layers.LSTM(64))(x)
# Add a classifier
outputs = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(inputs, outputs)
model.summary()

"""
## Load the IMDB movie review sentiment data
"""

(x_train, y_train), (x_val, y_val) = imdb_load_data(
    num_words=max_features
)
print(len(x_train), "Training sequences")
print(len(x_val), "Validation sequences")
# Use pad_sequence to standardize sequence length:
# this will truncate sequences longer than 200 words and zero-pad sequences shorter than 200 words.
x_train = keras.preprocessing.sequence.pad_sequences(x_train, maxlen=maxlen)
x_val = keras.preprocessing.sequence.pad_sequences(x_val, maxlen=maxlen)

"""
## Train and evaluate the model

You can use the trained model hosted on [Hugging Face Hub](https://huggingface.co/keras-io/bidirectional-lstm-imdb)
and try the demo on [Hugging Face Spaces](https://huggingface.co/spaces/keras-io/bidirectional_lstm_imdb).
"""

model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=32, epochs=2, validation_data=(x_val, y_val))
