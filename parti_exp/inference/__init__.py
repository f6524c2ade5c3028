"""What the commands run on a trained model: one sampler per model family, chosen from a registry
(``samplers.py``); latent tools (``latent.py``: interpolation, class sheets, the manifest), prompts and reranking,
and editing (inpainting, outpainting) with its masks, inputs and sheets."""
