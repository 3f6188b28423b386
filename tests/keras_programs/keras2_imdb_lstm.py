# ruff: noqa  -- a program written by others, kept as written (only its imports changed)
# fmt: off
# Source: Keras 2's examples/imdb_lstm.py (github.com/keras-team/keras, examples/imdb_lstm.py,
#   commit cc360f6663f3c4ba3e7ae8e4e19f507f717e6c97).
# Licence: that of keras-team/keras (MIT when this example was written; Apache-2.0 today).
# Changes: the import lines (keras -> batchfit; `keras.datasets.imdb` -> the generated
# stand-in `imdb` of generated_text_datasets.py: 512 training and 128 test reviews of the
# same form, IMDB has 25,000 of each); epochs 15 -> 2.
# Reference: the same program on the same generated data under Keras 3.15.1, torch 2.13.0
# backend (KERAS_BACKEND=torch, one thread, keras.utils.set_random_seed(0) after the
# imports): training accuracy 0.586 then 0.955, val_accuracy 0.984 then 0.953, test
# accuracy 0.953 (batchfit, torch seed 0: 0.607 then 0.934, 1.000 then 0.891). The source
# reports no figure. The test asserts test accuracy > 0.75.
'''Trains an LSTM model on the IMDB sentiment classification task.

The dataset is actually too small for LSTM to be of any advantage
compared to simpler, much faster methods such as TF-IDF + LogReg.

# Notes

- RNNs are tricky. Choice of batch size is important,
choice of loss and optimizer is critical, etc.
Some configurations won't converge.

- LSTM loss decrease patterns during training can be quite different
from what you see with CNNs/MLPs/etc.
'''
from __future__ import print_function

from batchfit.preprocessing import sequence
from batchfit.models import Sequential
from batchfit.layers import Dense, Embedding
from batchfit.layers import LSTM
from generated_text_datasets import imdb

max_features = 20000
maxlen = 80  # cut texts after this number of words (among top max_features most common words)
batch_size = 32

print('Loading data...')
(x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=max_features)
print(len(x_train), 'train sequences')
print(len(x_test), 'test sequences')

print('Pad sequences (samples x time)')
x_train = sequence.pad_sequences(x_train, maxlen=maxlen)
x_test = sequence.pad_sequences(x_test, maxlen=maxlen)
print('x_train shape:', x_train.shape)
print('x_test shape:', x_test.shape)

print('Build model...')
model = Sequential()
model.add(Embedding(max_features, 128))
model.add(LSTM(128, dropout=0.2, recurrent_dropout=0.2))
model.add(Dense(1, activation='sigmoid'))

# try using different optimizers and different optimizer configs
model.compile(loss='binary_crossentropy',
              optimizer='adam',
              metrics=['accuracy'])

print('Train...')
model.fit(x_train, y_train,
          batch_size=batch_size,
          epochs=2,
          validation_data=(x_test, y_test))
score, acc = model.evaluate(x_test, y_test,
                            batch_size=batch_size)
print('Test score:', score)
print('Test accuracy:', acc)
