"""Parti-style text-to-image, stage 2 (``module.py``: captions -> image codes of a frozen ``model=vqgan``
tokenizer), the contrastive scorer that reranks and measures it (``contrastive.py``), and what both share: the
captioned module and its text tokenizer. Autoregressive sampling is ``sampling.py``; the Transformer and the dual
encoder are nets (``parti_exp.nets``)."""
