"""Text-to-image, stage 2 (captions -> image codes of a frozen ``model=vqgan`` tokenizer) with two decoders over one
shared module (``token_model.py``): Parti's autoregressive one (``module.py``, sampling in ``sampling.py``) and the
masked-token one (``muse.py``: MaskGIT's cosine masking in ``masking.py``, parallel decoding in
``masked_sampling.py``); the contrastive scorer that reranks and measures them (``contrastive.py``), and what all
share: the captioned module and its text tokenizer. The Transformers and the dual encoder are nets
(``parti_exp.nets``)."""
