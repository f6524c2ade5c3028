"""``_target_`` paths that moved, and where to. A checkpoint stores the class paths of the code that wrote it, and a
user's own config files may name our classes too.

A stored config is read with every moved path mapped to the class's home today (``with_moved_targets``, in
``parti_exp.runtime.checkpoints``), so an old checkpoint still rebuilds, samples and resumes. A config the user
wrote is not rewritten behind their back: building one that names an old path stops with a message naming the new
one (``parti_exp.runtime.instantiate``).
"""

from __future__ import annotations

from typing import Any

# Classes that moved on their own: renamed, or out of a module that stayed or moved elsewhere.
MOVED_CLASSES = {
    "parti_exp.parti.vqgan_module.VQGANModule": "parti_exp.models.vqgan.VQGANModule",
    "parti_exp.parti.caption_accuracy.CaptionAccuracy": "parti_exp.callbacks.caption_accuracy.CaptionAccuracy",
    "parti_exp.checkpoint_io.AtomicCheckpointIO": "parti_exp.runtime.checkpoints.AtomicCheckpointIO",
    "parti_exp.callbacks.gan_checkpoint.GANCheckpoint": "parti_exp.callbacks.step_checkpoint.StepCheckpoint",
    "parti_exp.nets.vqgan.PatchDiscriminator": "parti_exp.nets.patchgan.PatchDiscriminator",
}

# Modules that moved whole, by their old path: every class in them is found under the new one.
MOVED_MODULES = {
    # infrastructure -> runtime/
    "parti_exp.checkpoints": "parti_exp.runtime.checkpoints",
    "parti_exp.trust": "parti_exp.runtime.trust",
    "parti_exp.instantiate": "parti_exp.runtime.instantiate",
    "parti_exp.missing_inputs": "parti_exp.runtime.missing_inputs",
    "parti_exp.config_checks": "parti_exp.runtime.config_checks",
    "parti_exp.writable_dirs": "parti_exp.runtime.writable_dirs",
    "parti_exp.console": "parti_exp.runtime.console",
    "parti_exp.job_log": "parti_exp.runtime.job_log",
    "parti_exp.loggers": "parti_exp.runtime.loggers",
    "parti_exp.wandb_preflight": "parti_exp.runtime.wandb_preflight",
    "parti_exp.distributed": "parti_exp.runtime.distributed",
    "parti_exp.hydra_ddp": "parti_exp.runtime.hydra_ddp",
    "parti_exp.guard": "parti_exp.runtime.guard",
    "parti_exp.images": "parti_exp.runtime.images",
    "parti_exp.callbacks.schedule": "parti_exp.runtime.schedule",
    "parti_exp.eval_mode": "parti_exp.runtime.torch_utils",
    "parti_exp.frozen": "parti_exp.runtime.torch_utils",
    # LightningModules and their parts -> models/
    "parti_exp.gan": "parti_exp.models.gan.module",
    "parti_exp.losses": "parti_exp.models.gan.losses",
    "parti_exp.regularizers": "parti_exp.models.gan.regularizers",
    "parti_exp.augment": "parti_exp.models.gan.augment",
    "parti_exp.ema": "parti_exp.models.gan.ema",
    "parti_exp.truncation": "parti_exp.models.gan.truncation",
    "parti_exp.vae": "parti_exp.models.vae.module",
    "parti_exp.elbo": "parti_exp.models.vae.elbo",
    "parti_exp.pixel_likelihood": "parti_exp.models.vae.pixel_likelihood",
    "parti_exp.vqgan": "parti_exp.models.vqgan",
    "parti_exp.latent_models": "parti_exp.protocols",
    "parti_exp.parti.text_to_image": "parti_exp.models.text_to_image.module",
    "parti_exp.parti.contrastive": "parti_exp.models.text_to_image.contrastive",
    "parti_exp.parti.captioned_module": "parti_exp.models.text_to_image.captioned",
    "parti_exp.parti.text_tokenizer": "parti_exp.models.text_to_image.text_tokenizer",
    "parti_exp.parti.sampling": "parti_exp.models.text_to_image.sampling",
    "parti_exp.parti.info_nce": "parti_exp.models.text_to_image.info_nce",
    "parti_exp.parti.hard_negatives": "parti_exp.models.text_to_image.hard_negatives",
    # plain nn.Modules -> nets/
    "parti_exp.parti.transformer": "parti_exp.nets.transformer",
    "parti_exp.parti.dual_encoder": "parti_exp.nets.dual_encoder",
    # what the commands run -> inference/
    "parti_exp.gan_tools": "parti_exp.inference.latent",
    "parti_exp.parti.rerank": "parti_exp.inference.rerank",
    "parti_exp.parti.editing": "parti_exp.inference.editing",
    "parti_exp.parti.edit_mask": "parti_exp.inference.edit_mask",
    "parti_exp.parti.edit_inputs": "parti_exp.inference.edit_inputs",
    "parti_exp.parti.edit_sheet": "parti_exp.inference.edit_sheet",
    # captions -> data/captions/
    "parti_exp.data.caption_source": "parti_exp.data.captions.sources",
    "parti_exp.data.label_captions": "parti_exp.data.captions.labels",
    "parti_exp.data.captioned": "parti_exp.data.captions.base",
    "parti_exp.data.captions_folder": "parti_exp.data.captions.folder",
    "parti_exp.data.coco": "parti_exp.data.captions.coco",
    "parti_exp.data.digit_scenes": "parti_exp.data.captions.digit_scenes",
    "parti_exp.data.scene_captions": "parti_exp.data.captions.scene_captions",
    "parti_exp.data.scene_spec": "parti_exp.data.captions.scene_spec",
    # renamed in place
    "parti_exp.metrics.callback": "parti_exp.metrics.image_quality",
    "parti_exp.callbacks.gan_checkpoint": "parti_exp.callbacks.step_checkpoint",
}


def moved_target(target: Any) -> str | None:
    """Where the class an old ``_target_`` names lives now; None for a path that did not move (or is no string)."""
    if not isinstance(target, str):
        return None
    if target in MOVED_CLASSES:
        return MOVED_CLASSES[target]
    module, _, name = target.rpartition(".")
    return f"{MOVED_MODULES[module]}.{name}" if module in MOVED_MODULES else None


def with_moved_targets(node: Any) -> Any:
    """A plain config (dicts and lists) with every moved ``_target_`` replaced by its new path."""
    if isinstance(node, dict):
        return {
            key: (moved_target(value) or value) if key == "_target_" else with_moved_targets(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [with_moved_targets(value) for value in node]
    return node


def moved_targets_in(node: Any) -> list[tuple[str, str]]:
    """(old, new) for every ``_target_`` in a plain config that names a moved path."""
    if isinstance(node, dict):
        found = [(node["_target_"], moved_target(node["_target_"]))] if moved_target(node.get("_target_")) else []
        return found + [pair for key, value in node.items() if key != "_target_" for pair in moved_targets_in(value)]
    if isinstance(node, list):
        return [pair for value in node for pair in moved_targets_in(value)]
    return []
