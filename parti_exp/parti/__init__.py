"""Parti-style text-to-image: image tokenizer, text tokenizer and captions, encoder-decoder Transformer, sampler."""
