"""A custom loop with two models: a tiny GAN trained with `train_on_batch`.

The generator maps noise to numbers; the discriminator tells real samples
(drawn from N(4, 1.25)) from generated ones. Each step trains the
discriminator on a real and a fake batch, then the generator through the
frozen discriminator (Keras' `discriminator.trainable = False` pattern,
here by switching `requires_grad` off before the combined model first steps,
so its optimizer only ever holds the generator's weights).

python examples/custom_loop_gan.py [--steps 3000] [--batch-size 64]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from batchfit.models import Model


def set_trainable(module: nn.Module, trainable: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(trainable)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    g_net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    d_net = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Sigmoid())
    discriminator = Model(d_net, name="discriminator")
    discriminator.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    generator = Model(g_net, name="generator")  # used for predictions only
    combined = Model(nn.Sequential(g_net, d_net), name="gan")
    combined.compile(optimizer="adam", loss="binary_crossentropy")

    n = args.batch_size
    ones, zeros = np.ones((n, 1), np.float32), np.zeros((n, 1), np.float32)
    for step in range(args.steps):
        real = rng.normal(4.0, 1.25, (n, 1)).astype(np.float32)
        noise = rng.normal(size=(n, 4)).astype(np.float32)
        fake = generator.predict_on_batch(noise)
        set_trainable(d_net, True)
        d_real = discriminator.train_on_batch(real, ones)
        d_fake = discriminator.train_on_batch(fake, zeros)
        set_trainable(d_net, False)  # the generator step must not move the discriminator
        g_loss = combined.train_on_batch(rng.normal(size=(n, 4)).astype(np.float32), ones)
        if step % 500 == 0 or step == args.steps - 1:
            d_acc = (d_real[1] + d_fake[1]) / 2
            print(f"step {step}: d accuracy {d_acc:.2f}, g loss {g_loss:.3f}")
    samples = generator.predict(rng.normal(size=(5000, 4)).astype(np.float32), verbose=0)
    print(f"generated mean {samples.mean():.2f} (real 4.00), std {samples.std():.2f} (real 1.25)")


if __name__ == "__main__":
    main()
