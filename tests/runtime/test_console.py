"""A run's console holds what concerns the user, not library adverts or deprecations of Lightning's internals."""

import pytest
from hydra_compose import run_entry_point, subprocess_env

TINY_RUN = (
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "metrics=none",
)


@pytest.mark.parametrize("trainer", ["default", "ddp_sim"])  # DDP: the child process re-runs the entry point
def test_a_run_prints_no_library_noise_but_keeps_real_warnings(tmp_path, trainer):
    env = subprocess_env()
    env.pop("PYTHONWARNINGS")  # the user's default: warnings shown
    result = run_entry_point(
        "parti_exp.train", *TINY_RUN, f"trainer={trainer}", f"hydra.run.dir={tmp_path / 'run'}",
        f"paths.root_dir={tmp_path}", env=env,
    )
    output = result.stdout + result.stderr
    assert "litlogger" not in output
    assert "treespec" not in output
    # The model summary is there, without the FLOPs Lightning did not count (it needs an example input)
    assert "Trainable params" in output and "model summary callbacks" not in output
    assert "Total Flops" not in output and "FLOPs" not in output
    # A warning about the user's own settings (1 batch per epoch, logging every 10 steps) still shows.
    assert "smaller than the logging interval" in output
    assert "`Trainer.fit` stopped: `max_epochs=1` reached." in output


def test_the_eval_mode_warning_is_silenced_only_for_the_expected_count_of_frozen_modules():
    import warnings

    from lightning.pytorch.utilities import rank_zero_warn

    from parti_exp.runtime.console import expect_frozen_modules

    def fit_start_warning(count: int) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            expect_frozen_modules(75)
            rank_zero_warn(f"Found {count} module(s) in eval mode at the start of training. This may lead to ...")
        return [str(w.message) for w in caught]

    assert fit_start_warning(75) == []
    # One more module in eval mode than the model keeps frozen: the user's mistake still shows.
    assert fit_start_warning(76) == ["Found 76 module(s) in eval mode at the start of training. This may lead to ..."]
    assert len(fit_start_warning(175)) == 1
