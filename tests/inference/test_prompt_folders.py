"""The folders `sample` writes for prompts stay inside out_dir whatever a prompt holds: path separators, `..`, NUL,
or 10,000 characters."""

from pathlib import Path

from checkpoint_helpers import OLD_PARTI
from hydra_compose import compose_sample

from parti_exp.inference.prompts import prompt_folder
from parti_exp.sample import sample

HOSTILE = ["../../escaped", "/tmp/absolute", "..", ".", "nul\0byte", "a" * 10_000, "日本語" * 3_000, "",
           "seven/../../x"]


def test_a_prompt_becomes_one_short_name_inside_the_folder(tmp_path):
    names = [prompt_folder(prompt) for prompt in HOSTILE]
    for name in names:
        assert "/" not in name and "\0" not in name and name not in ("", ".", "..")
        assert len(name.encode()) <= 255
        assert (tmp_path / name).resolve().parent == tmp_path.resolve()
    assert len(set(names)) == len(names)
    assert prompt_folder("a handwritten seven") == "a_handwritten_seven"
    # Two long prompts that differ only after the cut still get two folders.
    assert prompt_folder("a" * 100 + "b") != prompt_folder("a" * 100 + "c")


def test_sample_writes_every_prompt_inside_out_dir(tmp_path):
    out_dir = tmp_path / "deep" / "out"
    cfg = compose_sample(tmp_path, f"ckpt_path={OLD_PARTI}", "prompts=[x]", "n=1")
    cfg.prompts = ["../../escaped", "/tmp/absolute_prompt", "nul\0byte", "a" * 10_000]
    paths = sample(cfg, out_dir)
    assert len(paths) == 4
    assert all(path.resolve().is_relative_to(out_dir.resolve()) for path in paths)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["deep"]
    assert not Path("/tmp/absolute_prompt").exists()
