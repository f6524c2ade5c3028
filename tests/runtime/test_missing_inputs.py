"""A run names every missing input in one message before it builds a trainer, not one per try."""

from hydra_compose import run_entry_point


def test_every_missing_input_is_named_at_once(tmp_path):
    data, weights, resume = tmp_path / "no_cifar", tmp_path / "no_weights.pth", tmp_path / "no_run" / "last.ckpt"
    result = run_entry_point(
        "parti_exp.train", "data=cifar10", f"data.root={data}", "metrics=inception", f"metrics.weights_path={weights}",
        f"ckpt_path={resume}", f"hydra.run.dir={tmp_path / 'run'}", f"paths.root_dir={tmp_path}", check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "3 inputs this run needs are missing" in result.stderr
    for path in (data, weights, resume):
        assert str(path) in result.stderr
    assert "data.download=true" in result.stderr  # each with its remedy
    assert "metrics=none" in result.stderr


def test_a_single_missing_input_keeps_its_own_message(tmp_path):
    result = run_entry_point(
        "parti_exp.train", "data=cifar10", f"data.root={tmp_path / 'no_cifar'}", "metrics=none",
        f"hydra.run.dir={tmp_path / 'run'}", f"paths.root_dir={tmp_path}", check=False,
    )
    assert result.returncode == 1
    assert "CIFAR-10 not found" in result.stderr and "inputs this run needs are missing" not in result.stderr


def test_an_unwritable_cache_is_reported_with_the_missing_inputs(tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    data = tmp_path / "no_cifar"
    result = run_entry_point(
        "parti_exp.train", "data=cifar10", f"data.root={data}", "metrics=none",
        f"data.cache_dir={blocked / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}", f"paths.root_dir={tmp_path}",
        check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "2 inputs this run needs are missing" in result.stderr
    assert str(data) in result.stderr
    assert f"data.cache_dir={blocked / 'cache'}: {blocked} is a file, not a folder" in result.stderr


def test_sample_names_every_missing_checkpoint_at_once(tmp_path):
    ckpt, scorer = tmp_path / "no_run" / "last.ckpt", tmp_path / "no_scorer.ckpt"
    result = run_entry_point(
        "parti_exp.sample", f"ckpt_path={ckpt}", f"scorer_ckpt={scorer}", "prompts=[\"a seven\"]", "n_candidates=2",
        f"hydra.run.dir={tmp_path / 'run'}", f"paths.root_dir={tmp_path}", check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "2 inputs this run needs are missing" in result.stderr
    assert f"ckpt_path={ckpt} does not exist" in result.stderr
    assert f"scorer_ckpt={scorer} does not exist" in result.stderr
