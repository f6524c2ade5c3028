"""Parti-style text-to-image, stage 2: captions and the text tokenizer, the encoder-decoder Transformer and its
LightningModule, autoregressive sampling and reranking. Stage 1, the image tokenizer, is a net (``nets/vqgan.py``,
``nets/quantizer.py``) trained by the adversarial loop (``parti_exp/vqgan.py``)."""
