"""LightningModules by family: ``gan/`` (the adversarial loop, its losses, regularizers, augmentation, EMA and
truncation), ``vae/`` (the VAE, its bound and pixel likelihoods), ``vqgan.py`` (the image tokenizer, trained by the
adversarial loop) and ``text_to_image/`` (the Parti-style model, the contrastive scorer and what they share).
``parti_exp.protocols`` (at the package root, below every layer) names every capability a module (or a net it
trains) can have; callers ask for those, never for a class. The nets themselves are plain ``nn.Module``s in
``parti_exp.nets``."""
