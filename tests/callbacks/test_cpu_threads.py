"""trainer.cpu_threads: the thread count of CPU runs, fixed or measured, never touching a GPU run."""

import logging
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.accelerators import CPUAccelerator

from parti_exp.callbacks import cpu_threads
from parti_exp.callbacks.cpu_threads import CpuThreads, ThreadCountTrial, candidate_counts
from parti_exp.errors import ConfigError
from parti_exp.nets.dcgan import DCGANDiscriminator, DCGANGenerator


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def cpu_trainer():
    return SimpleNamespace(accelerator=CPUAccelerator())


def test_candidates_halve_down_to_one():
    assert candidate_counts(8) == [8, 4, 2, 1]
    assert candidate_counts(6) == [6, 3, 1]
    assert candidate_counts(1) == [1]


def test_trial_skips_the_first_step_after_a_switch_and_keeps_the_fastest_median():
    trial = ThreadCountTrial([2, 1], steps_per_count=3)
    for seconds in [9.0, 0.3, 0.2, 0.25]:  # 9.0: the pool resizing, not timed
        assert trial.count == 2
        trial.record(seconds)
    for seconds in [9.0, 0.1, 5.0, 0.12]:  # one stall does not decide: the median is 0.12
        assert trial.count == 1
        trial.record(seconds)
    assert trial.done
    assert trial.times == {2: [0.3, 0.2, 0.25], 1: [0.1, 5.0, 0.12]}
    assert trial.fastest() == 1


@pytest.mark.parametrize("bad", ["two", 0, -1, True, 1.5])
def test_bad_values_are_a_config_error(bad):
    with pytest.raises(ConfigError, match="trainer.cpu_threads"):
        CpuThreads(bad)


def test_a_fixed_count_holds_for_training_and_is_restored_after(two_threads):
    callback, trainer = CpuThreads(1), cpu_trainer()
    callback.on_train_start(trainer, None)
    assert torch.get_num_threads() == 1
    callback.on_train_end(trainer, None)
    assert torch.get_num_threads() == 2


def test_a_gpu_run_is_left_alone(two_threads):
    callback, trainer = CpuThreads(1), SimpleNamespace(accelerator=object())
    callback.on_train_start(trainer, None)
    callback.on_train_batch_start(trainer, None, None, 0)
    callback.on_train_end(trainer, None)
    assert torch.get_num_threads() == 2


def test_auto_measures_and_keeps_the_count_whose_steps_are_faster(two_threads, monkeypatch, caplog):
    # A busy machine as the clock sees it: each step on 2 threads takes 1 s, on 1 thread 0.1 s.
    now = [0.0]

    def clock():
        now[0] += 0.5 if torch.get_num_threads() == 2 else 0.05
        return now[0]

    monkeypatch.setattr(cpu_threads.time, "perf_counter", clock)
    caplog.set_level(logging.INFO, logger=cpu_threads.__name__)
    callback, trainer = CpuThreads("auto", first_trial_step=2, retune_s=0.0), cpu_trainer()
    callback.on_train_start(trainer, None)
    for step in range(25):  # from step 1, three trials of 8 steps in a row (retune_s=0), each choosing 1 thread
        callback.on_train_batch_start(trainer, None, None, step)
        callback.on_train_batch_end(trainer, None, None, None, step)
    assert callback._trial is None, "the trial has ended"
    assert torch.get_num_threads() == 1
    choices = [r.getMessage() for r in caplog.records if r.getMessage().startswith("CPU threads")]
    assert len(choices) == 1 and choices[0].startswith("CPU threads: 1 "), choices  # said once, not per trial
    callback.on_train_end(trainer, None)
    assert torch.get_num_threads() == 2


def test_the_thread_count_does_not_change_what_training_computes():
    """Why ``auto`` may switch counts mid-run: the nets' kernels give the same bits on 1 and 2 threads."""

    def train_a_little(threads: int) -> list[torch.Tensor]:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            torch.manual_seed(0)
            G = DCGANGenerator(latent_dim=32, img_size=16, channels=1, width=16, norm="batch")
            D = DCGANDiscriminator(img_size=16, channels=1, width=16, norm="batch")
            opt = torch.optim.Adam([*G.parameters(), *D.parameters()], 1e-3)
            for _ in range(5):
                fake = G(torch.randn(32, 32))
                loss = D(fake).mean() + fake.square().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            return [p.detach().clone() for p in G.parameters()]
        finally:
            torch.set_num_threads(before)

    one, two = train_a_little(1), train_a_little(2)
    assert all(torch.equal(a, b) for a, b in zip(one, two))
