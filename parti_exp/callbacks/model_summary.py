"""Lightning's model summary table, without the FLOPs it did not count.

Lightning counts FLOPs only for a module that sets ``example_input_array``; ours take latents, labels or token
grids that depend on the run, so the table would show a FLOPs column of zeros and "0 Total Flops", a number that
was never computed. Those are dropped; the rest of the table is Lightning's.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary.model_summary import _format_summary_table

log = logging.getLogger(__name__)


class SummaryWithoutUncountedFlops(ModelSummary):
    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        if total_flops:
            ModelSummary.summarize(summary_data, total_parameters, trainable_parameters, model_size,
                                   total_training_modes, total_flops, **summarize_kwargs)
            return
        columns = [column for column in summary_data if column[0] != "FLOPs"]
        table = _format_summary_table(total_parameters, trainable_parameters, model_size, total_training_modes, 0,
                                      *columns)
        lines = [line for line in table.splitlines() if not line.rstrip().endswith("Total Flops")]
        log.info("\n" + "\n".join(lines))
