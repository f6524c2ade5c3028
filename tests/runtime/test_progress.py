"""Long stages report progress: a bar with counts and time left on a terminal, nothing drawn elsewhere, and one log
line per stage either way (the run's log file gets it)."""

import io
import logging

import pytest
from checkpoint_helpers import OLD_PARTI
from hydra_compose import compose_sample
from rich.console import Console

from parti_exp.runtime import progress as progress_module
from parti_exp.runtime.progress import progress, reported_to, tracked
from parti_exp.sample import sample


def test_not_on_a_terminal_no_bar_and_one_line_per_stage(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="parti_exp.runtime.progress"):
        with progress("decoding images into x", 10) as advance:
            for _ in range(10):
                advance(1)
        assert list(tracked(range(3), "editing 3 images", 12, per_item=4, unit="edits")) == [0, 1, 2]
    lines = [r.getMessage() for r in caplog.records if r.name == "parti_exp.runtime.progress"]
    assert len(lines) == 2
    assert lines[0].startswith("decoding images into x: 10 images in ") and lines[0].endswith(" s")
    assert lines[1].startswith("editing 3 images: 12 edits in ")
    captured = capsys.readouterr()
    assert "━" not in captured.out + captured.err  # no bar drawn


def test_on_a_terminal_a_bar_with_counts(monkeypatch):
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    monkeypatch.setattr(progress_module, "get_console", lambda: console)
    with progress("sampling 2 prompts", 4) as advance:
        advance(3)
    drawn = screen.getvalue()
    assert "sampling 2 prompts" in drawn and "━" in drawn and "3/4" in drawn and "images" in drawn and "left" in drawn


@pytest.mark.parametrize("n_candidates", [1, 2])
def test_sampling_prompts_logs_its_stage(tmp_path, caplog, n_candidates):
    cfg = compose_sample(tmp_path, f"ckpt_path={OLD_PARTI}", "prompts=[a handwritten seven,the digit 2]", "n=2",
                         f"n_candidates={n_candidates}")
    with caplog.at_level(logging.INFO, logger="parti_exp.runtime.progress"):
        sample(cfg, tmp_path / "out")
    best = " (each the best of 2)" if n_candidates == 2 else ""
    assert any(r.getMessage().startswith(f"sampling 2 prompts{best}: 4 images in ") for r in caplog.records)


def test_a_listener_hears_every_step_of_every_stage_inside_its_block_only():
    heard = []
    with reported_to(lambda stage, done, total: heard.append((stage, done, total))):
        with progress("sampling 2 prompts", 6) as advance:
            advance(3)
            advance(3)
        for _ in tracked(range(2), "editing", 2):
            pass
    with progress("after", 1) as advance:
        advance(1)
    assert heard == [("sampling 2 prompts", 3, 6), ("sampling 2 prompts", 6, 6), ("editing", 1, 2), ("editing", 2, 2)]
