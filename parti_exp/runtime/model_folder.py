"""Model folders: a trained model as the ecosystem shares one, read without unpickling anything.

``python -m parti_exp.export`` writes one from a checkpoint::

    model.safetensors     the weights of the nets sampling needs (``NamesSamplingNets``; EMA weights where kept)
    config.yaml           the model and data config that rebuild them (plain YAML, nothing else of the run)
    tokenizer.json        text models: the Hugging Face tokenizers file of the subword text tokenizer
    word_tokenizer.json   (instead, for models trained before the subword tokenizer: their closed word list)
    tokenizer/            stage-2 text-to-image models: the image tokenizer, a folder of the same kind
    samples.png           README.md (the model card)

Every place that reads a checkpoint reads a folder too (``parti_exp.runtime.checkpoints.checkpoint_file`` and
``read_checkpoint`` hand it here): safetensors holds tensors and a JSON header, never code, and the config is read
with ``yaml.safe_load``; its ``_target_``s pass the same allow-list as a checkpoint's. The folder becomes a
checkpoint-like dict (``FOLDER_KEY`` marks it) whose ``state_dict`` holds only the sampling nets: the module is
rebuilt from the config, and ``load_sampling_weights`` fills exactly those nets, refusing a missing, extra or
misshapen tensor by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import nn

from parti_exp.errors import BadCheckpointError, MissingInputError
from parti_exp.protocols import NamesSamplingNets

WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
TEXT_TOKENIZER = "tokenizer.json"
WORD_TOKENIZER = "word_tokenizer.json"
CARD = "README.md"
SAMPLES = "samples.png"
# The checkpoint-like dict of a folder carries the folder's path under this key (a checkpoint never has it).
FOLDER_KEY = "parti_exp_model_folder"
# A text model's tokenizer as a checkpoint stores it (``CaptionedModule.on_save_checkpoint``).
TEXT_TOKENIZER_KEY = "text_tokenizer"


@dataclass(frozen=True)
class SubFolder:
    """A net kept in a model folder of its own inside the folder, so that other runs read it on its own: the
    image tokenizer of a stage-2 model (``model.tokenizer_ckpt`` of a new stage 2 can name it)."""

    name: str  # the sub-folder
    config_key: str  # the model config key that names the net's own checkpoint
    module_net: str  # the net's attribute in the module that samples with it
    folder_net: str  # its name inside the sub-folder (the net a checkpoint of its own family stores it as)
    net_config_key: str  # the model config key holding the net's own config (as YAML text)


SUB_FOLDERS = (SubFolder("tokenizer", "tokenizer_ckpt", "image_tokenizer", "generator", "image_tokenizer"),)


def is_model_folder(path: Path) -> bool:
    """A directory holding a model folder's weights or config (a run directory holds neither at its top)."""
    return path.is_dir() and ((path / WEIGHTS).exists() or (path / CONFIG).exists())


def _read_weights(folder: Path, key: str) -> dict[str, torch.Tensor]:
    path = folder / WEIGHTS
    if not path.is_file():
        raise MissingInputError(f"{key}={folder} is a model folder without {WEIGHTS}: export it again with "
                                "`python -m parti_exp.export ckpt_path=<the run's checkpoint> out_dir=...`")
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise BadCheckpointError(f"{key}={folder}: {WEIGHTS} is not a readable safetensors file ({error})") from None


def _read_config(folder: Path, key: str) -> dict:
    path = folder / CONFIG
    if not path.is_file():
        raise MissingInputError(f"{key}={folder} is a model folder without {CONFIG} (the model and data config "
                                "that rebuild its nets): export it again with `python -m parti_exp.export`")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise BadCheckpointError(f"{key}={folder}: {CONFIG} is not YAML ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise BadCheckpointError(f"{key}={folder}: {CONFIG} has no model: section; it is not a parti_exp model "
                                 "folder's config")
    return config


def _text_tokenizer_state(folder: Path, model: dict, key: str) -> dict | None:
    """The text tokenizer as a checkpoint stores it, or None for a model that reads no text."""
    for name in (TEXT_TOKENIZER, WORD_TOKENIZER):
        if not (folder / name).is_file():
            continue
        text = (folder / name).read_text(encoding="utf-8", errors="replace")
        try:
            if name == WORD_TOKENIZER:
                return json.loads(text)
            Tokenizer.from_str(text)  # read here, so that a damaged file is named before anything is built
        except Exception as error:  # tokenizers raises a bare Exception for a file it cannot parse
            raise BadCheckpointError(f"{key}={folder}: {name} is not a readable tokenizer file ({error})") from None
        if not isinstance(model.get("max_text_len"), int):
            raise BadCheckpointError(f"{key}={folder}: {CONFIG} has no model.max_text_len for its {name}")
        return {"kind": "bpe", "json": text, "max_len": model["max_text_len"]}
    return None


def read_model_folder(folder: Path, key: str = "ckpt_path") -> dict:
    """A model folder as a checkpoint-like dict: ``config`` (model and data), ``state_dict`` (the sampling nets'
    weights, those of sub-folders under their module's names), ``text_tokenizer`` for text models, and the folder's
    path under ``FOLDER_KEY``. ``key`` names the setting the folder came from in error messages."""
    config = _read_config(folder, key)
    state = _read_weights(folder, key)
    for sub in SUB_FOLDERS:
        if sub.config_key not in config["model"]:
            continue
        inner = folder / sub.name
        if not inner.is_dir():
            raise MissingInputError(f"{key}={folder} is a model folder without {sub.name}/ (the net "
                                    f"model.{sub.module_net} samples with): export it again")
        # The net's config travels in the model config (a stage-2 model records its tokenizer's architecture).
        start = f"{sub.folder_net}."
        for name, tensor in _read_weights(inner, f"{key} ({sub.name}/)").items():
            if not name.startswith(start):
                raise BadCheckpointError(f"{key}={folder}: {sub.name}/{WEIGHTS} holds {name!r}, not a weight of "
                                         f"its {sub.folder_net}")
            state[f"{sub.module_net}.{name[len(start):]}"] = tensor
        config["model"][sub.config_key] = str(inner)
    text_settings = config["model"].get("text_tokenizer")
    if isinstance(text_settings, dict) and text_settings.get("path"):
        # A tokenizer file named at training time is the folder's own copy now (the same tokens, so the same rows).
        text_settings["path"] = str(folder / TEXT_TOKENIZER)
    folder_dict = {"config": config, "state_dict": state, FOLDER_KEY: str(folder)}
    tokenizer = _text_tokenizer_state(folder, config["model"], key)
    if tokenizer is not None:
        folder_dict[TEXT_TOKENIZER_KEY] = tokenizer
    return folder_dict


def sampling_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The ``state_dict`` entries of the nets ``module`` samples with (``NamesSamplingNets``)."""
    if not isinstance(module, NamesSamplingNets):
        raise BadCheckpointError(f"{type(module).__name__} does not name the nets it samples with, so it cannot be "
                                 "kept in (or read from) a model folder")
    nets = set(module.sampling_nets())
    return {name: tensor for name, tensor in module.state_dict().items() if name.split(".", 1)[0] in nets}


def load_sampling_weights(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Fill the sampling nets of ``module`` (rebuilt from a folder's config) with ``state``: every tensor they have,
    each of its shape, and nothing else; the other nets (critics) keep their initial weights and are not used."""
    if not isinstance(module, NamesSamplingNets):
        raise BadCheckpointError(
            f"{source}: its {CONFIG} builds a {type(module).__name__}, not a model that names the nets it samples "
            f"with. A folder holding one net (the {SUB_FOLDERS[0].name}/ of a text-to-image folder) is read where "
            f"that net is (model.{SUB_FOLDERS[0].config_key}=), not as ckpt_path="
        )
    expected = sampling_state(module)
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    misshapen = [f"{name} {tuple(state[name].shape)} (the config builds {tuple(tensor.shape)})"
                 for name, tensor in expected.items() if name in state and state[name].shape != tensor.shape]
    problems = []
    if missing:
        more = ", ..." if len(missing) > 3 else ""
        problems.append(f"missing {len(missing)} tensors ({', '.join(missing[:3])}{more})")
    if extra:
        problems.append(f"{len(extra)} tensors its config has no place for ({', '.join(extra[:3])}"
                        f"{', ...' if len(extra) > 3 else ''})")
    if misshapen:
        problems.append(f"tensors of the wrong shape: {'; '.join(misshapen[:3])}")
    if problems:
        raise BadCheckpointError(f"{source}: {WEIGHTS} does not fit the nets its {CONFIG} builds: "
                                 + "; ".join(problems) + ". The folder's files come from different models: "
                                 "export it again from one checkpoint")
    module.load_state_dict(state, strict=False)
