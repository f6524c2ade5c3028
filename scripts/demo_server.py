"""``python -m parti_exp.demo`` served on a free local port for the scripts that use the page (bench_export.py,
demo_screenshot.py): started, waited for, and stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def served_demo(ckpt: str | Path, work: Path, *overrides: str) -> Iterator[str]:
    """The page's URL while the demo serves ``ckpt`` (its run directory and Gradio's files under ``work``)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1",
           "GRADIO_TEMP_DIR": str(work / "gradio")}
    server = subprocess.Popen([sys.executable, "-m", "parti_exp.demo", f"ckpt_path={ckpt}", f"port={port}",
                               f"hydra.run.dir={work / 'demo' / Path(ckpt).name}", *overrides], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(180):
            if server.poll() is not None:
                raise RuntimeError(f"the demo of {ckpt} exited with code {server.returncode}")
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
