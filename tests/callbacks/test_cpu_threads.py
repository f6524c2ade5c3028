"""trainer.cpu_threads: the thread count of CPU runs, fixed or one per idle core, kept across a resume, never
touching a GPU run."""

import logging
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.accelerators import CPUAccelerator

from parti_exp.callbacks import cpu_threads
from parti_exp.callbacks.cpu_threads import CpuThreads, busy_cores, idle_thread_count
from parti_exp.errors import ConfigError
from parti_exp.runtime.checkpoints import read_checkpoint
from parti_exp.train import train


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def cpu_trainer():
    return SimpleNamespace(accelerator=CPUAccelerator())


@pytest.mark.parametrize("cores,busy,most,expected", [
    (2, 0.1, 2, 2), (2, 0.9, 2, 1), (2, 2.0, 2, 1), (2, 3.5, 2, 1), (16, 4.2, 16, 12), (16, 0.0, 8, 8),
])
def test_one_thread_per_idle_core_between_one_and_the_most(monkeypatch, cores, busy, most, expected):
    monkeypatch.setattr(cpu_threads.os, "cpu_count", lambda: cores)
    assert idle_thread_count(most, busy) == expected


def test_busy_cores_counts_other_work_but_not_niced_work(monkeypatch, tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal; between the readings: 100 user, 300 nice, 100 idle, 0 else
    readings = iter(["cpu 1000 500 200 5000 10 0 0 0 0 0\n", "cpu 1100 800 200 5100 10 0 0 0 0 0\n"])
    monkeypatch.setattr(cpu_threads, "PROC_STAT", stat)
    monkeypatch.setattr(cpu_threads.time, "sleep", lambda s: stat.write_text(next(readings)))
    stat.write_text(next(readings))
    monkeypatch.setattr(cpu_threads.os, "cpu_count", lambda: 2)
    assert busy_cores() == pytest.approx(2 * 100 / 500)


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
    callback.on_train_end(trainer, None)
    assert torch.get_num_threads() == 2


def test_auto_uses_the_idle_cores_and_says_so(two_threads, monkeypatch, caplog):
    monkeypatch.setattr(cpu_threads, "busy_cores", lambda: 1.2)  # another job holds a core
    monkeypatch.setattr(cpu_threads.os, "cpu_count", lambda: 2)
    caplog.set_level(logging.INFO, logger=cpu_threads.__name__)
    callback, trainer = CpuThreads("auto"), cpu_trainer()
    callback.on_train_start(trainer, None)
    assert torch.get_num_threads() == 1
    assert "CPU threads: 1 (2 cores, 1.2 of them busy with other work)" in caplog.text
    callback.on_train_end(trainer, None)
    assert torch.get_num_threads() == 2


def test_a_resumed_auto_run_keeps_the_count_it_started_with(two_threads, monkeypatch):
    first = CpuThreads("auto")
    monkeypatch.setattr(cpu_threads, "busy_cores", lambda: 1.5)
    first.on_train_start(cpu_trainer(), None)
    first.on_train_end(cpu_trainer(), None)
    resumed = CpuThreads("auto")
    resumed.load_state_dict(first.state_dict())
    monkeypatch.setattr(cpu_threads, "busy_cores", lambda: 0.0)  # quiet now: a fresh run would take 2
    resumed.on_train_start(cpu_trainer(), None)
    assert torch.get_num_threads() == 1


def test_the_count_is_saved_in_the_checkpoint(cfg_factory, tmp_path, two_threads):
    train(cfg_factory("trainer.cpu_threads=1", "trainer.limit_train_batches=2"))
    saved = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["callbacks"]
    assert saved[CpuThreads.__qualname__] == {"threads": 1}
    assert torch.get_num_threads() == 2  # restored after training
