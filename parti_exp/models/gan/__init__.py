"""The adversarial family: ``module.py`` holds the loop (``AdversarialModule``, also the VQGAN's) and the GAN that
maps latents to images (``GANModule``); the losses, regularizers, augmentation, EMA and truncation it uses."""
