"""Stop (or skip the step) when a loss or a gradient stops being a finite number.

A diverged GAN produces NaN within a few steps and then trains on garbage for hours, overwriting its good
checkpoints. Checking the loss and the gradient norms before every optimizer step costs one device-to-host
copy of a handful of scalars, and the run stops at the first bad step, before the update lands, with the
step and the loss that broke; checkpoints written earlier stay as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import torch
from lightning.pytorch import LightningModule

from parti_exp.errors import UserError

log = logging.getLogger(__name__)

REMEDY = (
    "lower the learning rates, clip gradients (model.grad_clip_val), prefer precision=bf16-mixed to 16-mixed, "
    "or set model.guard.skip_nonfinite=true to skip such steps"
)


class NonFiniteError(UserError, FloatingPointError):
    """A loss or gradient was NaN or infinite; no update was applied."""


class NonFiniteGuard:
    """``allows_step`` says whether an optimizer step may be taken; with ``skip_nonfinite`` a bad step is
    skipped and counted in ``skipped`` instead of stopping the run."""

    def __init__(self, skip_nonfinite: bool = False) -> None:
        self.skip_nonfinite = skip_nonfinite
        self.skipped = 0

    def allows_step(
        self,
        net: str,
        step: int,
        loss_parts: Mapping[str, torch.Tensor],
        parameters: Iterable[torch.nn.Parameter] = (),
    ) -> bool:
        """``loss_parts``: the loss terms by name; ``parameters``: whose gradients to check (none under fp16
        loss scaling, where an overflowing gradient is expected and the scaler skips the step itself)."""
        losses = torch.cat([part.detach().float().reshape(-1) for part in loss_parts.values()])
        grads = [p.grad for p in parameters if p.grad is not None]
        found = torch.zeros((), device=losses.device)
        # GradScaler's own finiteness test: one fused pass over the loss terms and every gradient (a norm per tensor
        # costs a dispatch each on the CPU). Its "unscale" multiplies by 1, which leaves every value as it was.
        torch._amp_foreach_non_finite_check_and_unscale_([losses, *grads], found, torch.ones_like(found))
        if not found.item():  # the one host sync of the check
            return True
        bad = [f"{name}={part.item()}" for name, part in loss_parts.items() if not torch.isfinite(part).all()]
        what = ", ".join(bad) if bad else "a gradient (the loss was finite)"
        message = f"non-finite {what} at {net} step {step}"
        if not self.skip_nonfinite:
            raise NonFiniteError(f"{message}: stopped before applying the update; checkpoints already written are "
                                 f"untouched. To go on: {REMEDY}")
        self.skipped += 1
        log.warning("%s: step skipped (%d skipped so far)", message, self.skipped)
        return False


def guarded_step(
    module: LightningModule,
    opt,
    guard: NonFiniteGuard | None,
    net: str,
    step: int,
    loss_parts: Mapping[str, torch.Tensor],
    parameters: Iterable[torch.nn.Parameter],
    grad_clip_val: float | None,
) -> bool:
    """Clip and step ``opt`` (a manual-optimization module's optimizer), unless ``guard`` finds a non-finite loss or
    gradient; False when the step was not taken."""
    if guard is not None and not guard.allows_step(net, step, loss_parts, parameters):
        opt.zero_grad(set_to_none=True)
        module.log("train/skipped_steps", float(guard.skipped))
        return False
    # Trainer(gradient_clip_val=...) is refused under manual optimization; clip here instead.
    if grad_clip_val is not None:
        module.clip_gradients(opt, gradient_clip_val=grad_clip_val, gradient_clip_algorithm="norm")
    opt.step()
    return True
