"""The variational autoencoder: its module, the bound it optimises (``elbo.py``) and its pixel likelihoods."""
