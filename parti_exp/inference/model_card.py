"""The model card (``README.md``) of an exported model folder, written from what the checkpoint and its run recorded:
the family and size, the data, the training (steps, wall time, precision, world size), the last logged value of
each metric with its definition, the sampling command and the code's git commit. What the run did not record is said
to be unrecorded, never guessed."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# What each logged metric measures; a name with a suffix (val/fid_clf) takes its stem's definition and the suffix's.
METRIC_DEFINITIONS = {
    "val/fid": "Fréchet distance between Gaussian fits of real and generated features (lower is better)",
    "val/kid": "kernel inception distance: unbiased MMD with a cubic kernel between the feature sets (lower is better)",
    "val/is": "inception score: exp of the mean KL between per-image and marginal class posteriors (higher is better)",
    "val/precision": "share of generated features inside the real features' k-NN balls (fidelity; higher is better)",
    "val/recall": "share of real features inside the generated features' k-NN balls (diversity; higher is better)",
    "val/density": "mean count of real k-NN balls holding a generated feature, over k (fidelity; higher is better)",
    "val/coverage": "share of real features whose k-NN ball holds a generated feature (diversity; higher is better)",
    "val/bpd": "negative ELBO in bits per dimension on the validation split (bounds the NLL; lower is better)",
    "val/bpd_iw": "importance-weighted bound in bits per dimension (tighter than val/bpd; lower is better)",
    "val/elbo": "evidence lower bound per image on the validation split, in nats (higher is better)",
    "val/kl": "KL divergence of the posterior from the prior per image, in nats",
    "val/recon": "reconstruction negative log-likelihood per image, in nats (lower is better)",
    "val/rec": "reconstruction loss of the image tokenizer on the validation split (lower is better)",
    "val/psnr": "peak signal-to-noise ratio of outputs against targets, in dB (higher is better)",
    "val/ssim": "structural similarity of outputs against targets (1 is identical)",
    "val/l1": "mean absolute error of outputs against targets in [-1, 1] (lower is better)",
    "val/caption_acc": "share of sampled images whose prompted digit a held-out digit classifier reads (higher is "
                       "better)",
    "val/clip_score": "mean cosine similarity of sampled images and their prompts under the contrastive scorer",
    "val/r_precision": "share of sampled images whose scorer ranks their prompt first among distractors",
    "val/class_share": "share of samples of each class as a held-out classifier reads them",
    "val/d_real": "the critic's mean output on real validation images",
    "val/contrastive_loss": "symmetric InfoNCE loss of the image and text towers on the validation split",
    "val/retrieval_top1": "share of validation images whose own caption the scorer ranks first",
    "val/ce": "the autoregressive decoder's cross-entropy per image code on the validation split, in nats (lower "
              "is better; log(codebook size) is chance)",
    "val/masked_ce": "the masked-token decoder's cross-entropy on the masked codes of the validation split, in nats "
                     "(lower is better)",
    "metrics/classifier_val_acc": "accuracy of the metrics' digit classifier on held-out real images (its own "
                                  "trustworthiness, not the model's)",
}
SUFFIXES = {
    "_clf": ", in the feature space of a small digit classifier (not comparable with Inception numbers)",
    "_baseline": ", of the task's plain baseline (e.g. bicubic upsampling), for comparison",
    "_unguided": ", sampled without classifier-free guidance",
    "_real": ", of the real images with their captions (the scorer's ceiling)",
}


def metric_definition(name: str) -> str:
    if name in METRIC_DEFINITIONS:
        return METRIC_DEFINITIONS[name]
    for suffix, meaning in SUFFIXES.items():
        if name.endswith(suffix) and name[: -len(suffix)] in METRIC_DEFINITIONS:
            return METRIC_DEFINITIONS[name[: -len(suffix)]] + meaning
    return "see docs/models.md"


@dataclass
class LoggedMetric:
    name: str
    value: float
    epoch: str  # '' when logged outside an epoch (set-up logs)
    step: str


def last_logged_metrics(metrics_csv: Path) -> list[LoggedMetric]:
    """The last logged value of each ``val/`` and ``metrics/`` column of a run's CSV log (training losses are per
    step and noisy: left out)."""
    with open(metrics_csv, newline="") as file:
        rows = list(csv.DictReader(file))
    last: dict[str, LoggedMetric] = {}
    for row in rows:
        for name, value in row.items():
            if name.startswith(("val/", "metrics/")) and value not in ("", None):
                last[name] = LoggedMetric(name, float(value), row.get("epoch", ""), row.get("step", ""))
    return sorted(last.values(), key=lambda metric: metric.name)


@dataclass
class CardFacts:
    """What the card says; ``None`` where the run did not record it."""

    family: str
    module: str
    sampling_params: int
    nets: dict[str, int]
    data: str
    data_size: int | None
    resolution: str
    epochs: int | None
    steps: str
    wall_time_s: float | None
    precision: str
    world_size: str
    git_commit: str | None
    source_checkpoint: str
    sample_command: str | None  # None: the family draws no images (an image tokenizer, a scorer)
    metrics: list[LoggedMetric] = field(default_factory=list)
    metrics_source: str | None = None
    files: list[str] = field(default_factory=list)
    scorer: str | None = None


def world_size(train_cfg: DictConfig) -> str:
    """Processes the run trained on, as its trainer config says (``devices`` x ``num_nodes``)."""
    devices = OmegaConf.select(train_cfg, "trainer.devices", default=1)
    nodes = OmegaConf.select(train_cfg, "trainer.num_nodes", default=1) or 1
    if isinstance(devices, int) and isinstance(nodes, int):
        return str(devices * nodes)
    return f"devices={devices} x num_nodes={nodes}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded (a checkpoint written before runs recorded it)"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def render_card(facts: CardFacts) -> str:
    """The README.md text."""
    nets = ", ".join(f"`{name}` {count:,}" for name, count in facts.nets.items())
    size = f"{facts.data_size:,} training images" if facts.data_size is not None else "size not known at export"
    lines = [
        f"# {facts.family} model ({facts.module})",
        "",
        "Exported by `python -m parti_exp.export` from a parti_exp training checkpoint. Load it with any parti_exp "
        "command as `ckpt_path=<this folder>`; nothing in it is unpickled.",
        "",
        *(["![samples](samples.png)", ""] if facts.sample_command else []),
        "## Model",
        "",
        f"- family: `{facts.family}` (`{facts.module}`)",
        f"- parameters used for sampling: {facts.sampling_params:,} ({nets})",
        "",
        "## Data",
        "",
        f"- dataset: `{facts.data}`, {size}",
        f"- resolution: {facts.resolution}",
        "",
        "## Training",
        "",
        f"- epochs: {facts.epochs if facts.epochs is not None else 'not recorded'}; steps: {facts.steps}",
        f"- wall time: {_duration(facts.wall_time_s)}",
        f"- precision: `{facts.precision}`; world size: {facts.world_size}",
        f"- code: git commit `{facts.git_commit}`" if facts.git_commit else
        "- code: git commit not recorded (a checkpoint written before runs recorded it, or code outside git)",
        f"- exported from: `{facts.source_checkpoint}`",
        "",
        "## Metrics",
        "",
    ]
    if facts.metrics:
        lines += [f"The last value each metric was logged with ({facts.metrics_source}).", "",
                  "| metric | value | epoch | step | what it measures |", "|---|---|---|---|---|"]
        lines += [f"| `{m.name}` | {m.value:.4g} | {m.epoch or '-'} | {m.step or '-'} | {metric_definition(m.name)} |"
                  for m in facts.metrics]
    else:
        lines.append("No metrics were found: the run's CSV log (`csv/metrics.csv` in its run directory) was not "
                     "beside the checkpoint, or the run logged none.")
    if facts.sample_command:
        lines += ["", "## Sampling", "", "samples.png was drawn with:", "", "```", facts.sample_command, "```", ""]
    else:
        lines += ["", "## Use", "", f"A `{facts.family}` model makes no images of its own: pass this folder where a "
                  "checkpoint of its kind is read (`model.tokenizer_ckpt=` of a text-to-image run for an image "
                  "tokenizer, `scorer_ckpt=` for a scorer).", ""]
    if facts.scorer:
        lines += [f"A contrastive scorer for reranking is in `{facts.scorer}/`: add `n_candidates=8 "
                  f"scorer_ckpt=<this folder>/{facts.scorer}`.", ""]
    lines += ["## Files", "", *[f"- `{name}`" for name in facts.files], ""]
    return "\n".join(lines)
