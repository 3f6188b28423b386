# ruff: noqa  -- a program written by others, kept as written (only its imports changed)
# fmt: off
# Source: Keras 2's examples/mnist_mlp.py (github.com/keras-team/keras, examples/mnist_mlp.py,
#   commit 10bfb1c565582803982e2205d41b095bc929d4a4).
# Licence: that of keras-team/keras (MIT when this example was written; Apache-2.0 today).
# Changes: the import lines (keras -> batchfit); the MNIST download replaced by generated
# arrays of the same per-sample shapes (generated_datasets.py), so `reshape(60000, 784)`
# and `reshape(10000, 784)` became `reshape(len(x_train), 784)` / `len(x_test)`; epochs
# 20 -> 2.
# Reference: the source reports 98.40% test accuracy after 20 epochs on real MNIST; on
# the generated data (10 fixed patterns plus noise) the test asserts > 90%.
'''Trains a simple deep NN on the MNIST dataset.

Gets to 98.40% test accuracy after 20 epochs
(there is *a lot* of margin for parameter tuning).
2 seconds per epoch on a K520 GPU.
'''

from __future__ import print_function
import numpy as np
np.random.seed(1337)  # for reproducibility

from generated_datasets import mnist_load_data
from batchfit.models import Sequential
from batchfit.layers import Dense, Dropout, Activation
from batchfit.optimizers import RMSprop
from batchfit.utils import np_utils


batch_size = 128
num_classes = 10
epochs = 2

# the data, shuffled and split between train and test sets
(x_train, y_train), (x_test, y_test) = mnist_load_data()

x_train = x_train.reshape(len(x_train), 784)
x_test = x_test.reshape(len(x_test), 784)
x_train = x_train.astype('float32')
x_test = x_test.astype('float32')
x_train /= 255
x_test /= 255
print(x_train.shape[0], 'train samples')
print(x_test.shape[0], 'test samples')

# convert class vectors to binary class matrices
y_train = np_utils.to_categorical(y_train, num_classes)
y_test = np_utils.to_categorical(y_test, num_classes)

model = Sequential()
model.add(Dense(512, activation='relu', input_shape=(784,)))
model.add(Dropout(0.2))
model.add(Dense(512, activation='relu'))
model.add(Dropout(0.2))
model.add(Dense(10, activation='softmax'))

model.summary()

model.compile(loss='categorical_crossentropy',
              optimizer=RMSprop(),
              metrics=['accuracy'])

history = model.fit(x_train, y_train,
                    batch_size=batch_size, epochs=epochs,
                    verbose=1, validation_data=(x_test, y_test))
score = model.evaluate(x_test, y_test, verbose=0)
print('Test loss:', score[0])
print('Test accuracy:', score[1])
