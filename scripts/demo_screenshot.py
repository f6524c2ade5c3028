"""A screenshot of the demo page (docs/demo.png) as headless Chromium shows it after a click of Generate.

Starts ``python -m parti_exp.demo`` on a free local port for ``--ckpt`` (a text-to-image model folder, run directory
or .ckpt), types ``--prompts`` (one per line), presses Generate, waits for the images and saves the window. Needs the
demo extra and Debian's chromium and chromium-driver.

    python scripts/demo_screenshot.py --ckpt exports/digits-parti --out docs/demo.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parent.parent
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "demo.png")
    parser.add_argument("--prompts", default="a handwritten seven\nthe digit 2")
    parser.add_argument("--size", default="1280,1100", help="window width,height")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="demo_screenshot_"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(work / "gradio")}
    server = subprocess.Popen([sys.executable, "-m", "parti_exp.demo", f"ckpt_path={args.ckpt}", f"port={port}",
                               f"hydra.run.dir={work / 'run'}"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*FLAGS, f"--window-size={args.size}", f"--user-data-dir={work / 'profile'}"):
        options.add_argument(flag)
    browser = None
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(180):
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                time.sleep(1)
        browser = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
        browser.get(url)
        wait = WebDriverWait(browser, 120)
        box = wait.until(seen.element_to_be_clickable((By.CSS_SELECTOR, "#prompts textarea")))
        box.clear()
        box.send_keys(args.prompts)
        browser.find_element(By.CSS_SELECTOR, "#generate").click()
        wait.until(lambda b: b.execute_script(
            "return [...document.querySelectorAll('#results img')].filter(i => i.complete && i.naturalWidth).length"))
        time.sleep(1)  # the gallery's layout settles after its images load
        args.out.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(args.out))
        print(f"wrote {args.out}")
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
