"""Plain ``nn.Module`` architectures, one file per family, and the building blocks they share (residual blocks in
``resnet.py``, the vector quantiser in ``quantizer.py``). Nothing here knows about Lightning or training.

The roles a net can play, as the modules that train them call them (each a Protocol in
``parti_exp.protocols``):

- an image generator (``ImageGenerator``): ``latent_dim`` and ``forward(z, labels=None)`` -> ``B x C x H x W``
  images in [-1, 1] (DCGAN, ResNet, conditional ResNet, StyleGAN-lite);
  A generator with a style space (``StyleGenerator``: ``map_to_w(z)`` -> w and ``synthesis(w, labels)``) can be
  truncated in w; a class-conditional one (``ClassMixingGenerator``: ``num_classes`` and
  ``forward_class_weights(z, B x num_classes weights)``) can be shown between classes;
- a discriminator: ``forward(images, labels=None)`` -> one logit per image (``B`` or ``B x 1``), or a map of
  logits per image patch (``B x 1 x h x w``, the patch discriminator); the losses average over what it returns;
- an image tokenizer (``ImageTokenizer``): an autoencoder with a quantised bottleneck, ``encode(images)`` ->
  ``B x h x w`` code indices on a ``token_grid`` of ``codebook_size`` codes, ``decode(indices)`` -> images, and
  ``forward(images, labels=None)`` -> ``(reconstructions, Quantized)`` for training (the VQGAN);
- a variational autoencoder (``VariationalAutoencoder``): ``latent_dim``, ``encode(images)`` -> the mean and
  log-variance of a diagonal Gaussian posterior (``B x latent_dim`` each), ``decode(z)`` -> the parameters of
  p(x | z) per pixel, which the VAE's likelihood reads (``parti_exp.models.vae``);
- an image embedder (``ImageEmbedder``): ``forward(images)`` -> ``B x dim`` features of ``channels x img_size x
  img_size`` images, the image tower of the contrastive scorer (``image_encoder.py``).

Unconditional nets ignore ``labels``; the training loop always passes them, so a conditional net needs no change
to the loop.
"""
