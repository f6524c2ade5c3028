"""logger=wandb in a job that cannot log online (no API key and no terminal, or no route to the server) stops at
once with one message naming the remedies, before any data is decoded; with logger.wandb.fallback_offline=true it
logs offline and says so. The server here is a closed local port (no route) or a local HTTP server (a route)."""

import io
import logging
import socket
import threading
from http.server import HTTPServer, SimpleHTTPRequestHandler

import pytest
import wandb
from hydra_compose import compose_train, run_entry_point, subprocess_env
from PIL import Image

from parti_exp.builders import build_wandb_logger
from parti_exp.errors import UnavailableError
from parti_exp.runtime.wandb_preflight import wandb_offline

REMEDIES = ("WANDB_MODE=offline", "logger.wandb.offline=true", "`wandb login`", "logger.wandb.fallback_offline=true")
FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the probe is closed: connections are refused


@pytest.fixture
def server():
    """A local HTTP server: a route to 'the W&B server' exists."""
    httpd = HTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def fresh_wandb(tmp_path, monkeypatch):
    """W&B reads its settings once per process: each test starts it afresh, with no user settings or keys."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / ".config" / "wandb"))
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO())  # no terminal, as in a SLURM or CI job
    wandb.teardown()
    yield
    wandb.teardown()


def test_no_route_to_the_server_fails_at_once_with_every_remedy(monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", closed_port_url())
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    with pytest.raises(UnavailableError, match="cannot be reached within 5 s") as error:
        wandb_offline(offline=False, fallback_offline=False)
    assert all(remedy in str(error.value) for remedy in REMEDIES)


def test_no_key_without_a_terminal_fails_with_every_remedy(monkeypatch, server):
    monkeypatch.setenv("WANDB_BASE_URL", server)
    with pytest.raises(UnavailableError, match="no W&B API key is configured") as error:
        wandb_offline(offline=False, fallback_offline=False)
    assert all(remedy in str(error.value) for remedy in REMEDIES)


def test_fallback_offline_says_so(monkeypatch, caplog):
    monkeypatch.setenv("WANDB_BASE_URL", closed_port_url())
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    with caplog.at_level(logging.WARNING):
        assert wandb_offline(offline=False, fallback_offline=True) is True
    assert "Logging offline instead (logger.wandb.fallback_offline=true)" in caplog.text


def test_offline_logging_asks_nothing_of_the_network(monkeypatch):
    def no_check():
        raise AssertionError("offline logging must not check the server")

    monkeypatch.setattr("parti_exp.runtime.wandb_preflight.online_problem", no_check)
    assert wandb_offline(offline=True, fallback_offline=False) is True
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_offline(offline=False, fallback_offline=False) is False


def test_the_fallback_logger_runs_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", closed_port_url())
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    cfg = compose_train(tmp_path, "logger=wandb", "logger.wandb.fallback_offline=true")
    logger = build_wandb_logger(cfg.logger.wandb)
    try:
        assert logger.experiment.settings.mode == "offline"
        assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    finally:
        wandb.finish()


@pytest.mark.slow
def test_the_command_stops_before_decoding_any_data(tmp_path):
    (tmp_path / "images").mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (i, i, i)).save(tmp_path / "images" / f"{i}.png")
    env = {**subprocess_env(), "WANDB_BASE_URL": closed_port_url(), "WANDB_API_KEY": FAKE_KEY, "HOME": str(tmp_path)}
    env.pop("WANDB_MODE", None)
    result = run_entry_point(
        "parti_exp.train", "logger=wandb", "model=dcgan", "data=folder", f"data.path={tmp_path / 'images'}",
        "data.img_size=8",
        "metrics=none", "model.generator.width=8", "model.discriminator.width=8", "trainer.limit_train_batches=1",
        f"hydra.run.dir={tmp_path / 'run'}", f"paths.root_dir={tmp_path}", env=env, check=False,
    )
    assert result.returncode == 1
    assert "logger=wandb cannot log online: the W&B server" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / ".cache").exists() and not (tmp_path / "run" / "checkpoints").exists()
