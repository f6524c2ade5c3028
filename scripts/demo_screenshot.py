"""A screenshot of the demo page (docs/demo.png) as headless Chromium shows it after a click of Generate.

Starts ``python -m parti_exp.demo`` on a free local port for ``--ckpt`` (a text-to-image model folder, run directory
or .ckpt), types ``--prompts`` (one per line), presses Generate, waits for the images and saves the window. Needs the
demo extra and Debian's chromium and chromium-driver.

    python scripts/demo_screenshot.py --ckpt exports/digits-parti --out docs/demo.png
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_server import REPO, served_demo  # noqa: E402  (a sibling script)

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
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*FLAGS, f"--window-size={args.size}", f"--user-data-dir={work / 'profile'}"):
        options.add_argument(flag)
    try:
        with served_demo(args.ckpt, work) as url:
            browser = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
            try:
                browser.get(url)
                wait = WebDriverWait(browser, 120)
                box = wait.until(seen.element_to_be_clickable((By.CSS_SELECTOR, "#prompts textarea")))
                box.clear()
                box.send_keys(args.prompts)
                browser.find_element(By.CSS_SELECTOR, "#generate").click()
                wait.until(lambda b: b.execute_script(
                    "return [...document.querySelectorAll('#results img')].filter(i => i.complete && i.naturalWidth)"
                    ".length"))
                time.sleep(1)  # the gallery's layout settles after its images load
                args.out.parent.mkdir(parents=True, exist_ok=True)
                browser.save_screenshot(str(args.out))
            finally:
                browser.quit()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out}")

if __name__ == "__main__":
    main()
