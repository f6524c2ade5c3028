"""Generator and discriminator architectures, one file per family.

Every generator has a ``latent_dim`` attribute and ``forward(z, labels=None)`` returning images in
[-1, 1]; every discriminator has ``forward(images, labels=None)`` returning one logit per image.
Unconditional nets ignore ``labels``; the training loop always passes them, so a conditional net
needs no change to the loop.
"""
