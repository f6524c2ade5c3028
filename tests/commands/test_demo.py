"""`python -m parti_exp.demo`: the page's actions write what the sample command writes, and the served page works as a
visitor and a script use it: headless Chromium types a prompt and presses Generate, gradio_client calls the same
endpoint. Skipped (with the reason) where the demo extra or Debian's chromium and chromium-driver are missing; CI
installs both (.ci/run, the Makefile's install)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from checkpoint_helpers import OLD_PARTI, OLD_TOKENIZER, OLD_VAE
from hydra import compose, initialize_config_dir
from hydra_compose import REPO_ROOT, compose_export, compose_sample
from PIL import Image

from parti_exp import CONF_DIR
from parti_exp.errors import ConfigError
from parti_exp.inference import demo_actions as actions
from parti_exp.inference.export import export_model
from parti_exp.sample import sample

pytest.importorskip("gradio", reason="the demo extra is not installed: pip install -e '.[demo]'")

PROMPTS = ["a handwritten seven", "the digit 2"]
SIZE = 16  # the fixture's images


def demo_config(tmp_path: Path, ckpt: Path, *overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="demo", overrides=[f"ckpt_path={ckpt}", f"paths.root_dir={tmp_path}", "device=cpu",
                                                      *overrides])


@pytest.fixture(scope="module")
def parti_folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parti_folder")
    cfg = compose_export(tmp, f"ckpt_path={OLD_PARTI}", f"out_dir={tmp / 'folder'}",
                         f"prompts={PROMPTS}".replace("'", '"'), "n=2")
    return export_model(cfg, torch.device("cpu"))


def test_the_page_draws_what_the_sample_command_draws_and_keeps_the_manifest(tmp_path, one_thread, parti_folder):
    from parti_exp.demo import load_demo_model

    model = load_demo_model(demo_config(tmp_path, parti_folder), tmp_path / "results")
    result = actions.draw_prompts(model, "\n".join(PROMPTS) + "\n\n", 3, 2.0, 0.9, 1, 5)
    overrides = [f"ckpt_path={parti_folder}", "device=cpu", "n=3", "seed=5", "sampling.guidance_scale=2.0",
                 "sampling.temperature=0.9", f"prompts={PROMPTS}".replace("'", '"')]
    expected = sample(compose_sample(tmp_path, *overrides), tmp_path / "cli")
    assert [p.read_bytes() for p in result.images] == [p.read_bytes() for p in expected]
    assert (result.folder / "manifest.json").is_file() and result.archive.suffix == ".zip"
    assert sorted(os.listdir(result.folder)) == sorted(os.listdir(tmp_path / "cli"))
    edited = actions.edit_upload(model, result.images[0], "bottom", "a handwritten eight", 2, 0)
    assert len(edited.images) == 2 and Image.open(edited.images[0]).size == (SIZE, SIZE)
    # The kept (top) half is the reconstruction of the upload, the same in both edits.
    top = [torch.tensor(list(Image.open(p).getdata())).view(SIZE, SIZE)[: SIZE // 2] for p in edited.images]
    assert torch.equal(top[0], top[1])
    with pytest.raises(ConfigError, match="no prompt"):
        actions.draw_prompts(model, " \n", 1, 1.0, 1.0, 1, 0)


def test_a_vae_page_samples_and_interpolates(tmp_path, one_thread):
    from parti_exp.demo import load_demo_model

    model = load_demo_model(demo_config(tmp_path, OLD_VAE), tmp_path / "results")
    samples = actions.draw_latents(model, 3, 4, None, None)
    expected = sample(compose_sample(tmp_path, f"ckpt_path={OLD_VAE}", "device=cpu", "n=4", "seed=3"),
                      tmp_path / "cli")
    assert [p.read_bytes() for p in samples.images] == [p.read_bytes() for p in expected]
    frames = actions.interpolate_seeds(model, 1, 2, 5, None)
    assert len(frames.images) == 5 and (frames.folder / "interpolation.gif").is_file()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(parti_folder, tmp_path_factory):
    """The demo command serving the exported text-to-image folder on a free local port."""
    tmp = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(tmp / "gradio"),
           "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "NO_PROXY": "127.0.0.1,localhost"}
    log = open(tmp / "demo.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "parti_exp.demo", f"ckpt_path={parti_folder}", f"port={port}", "device=cpu",
         f"paths.root_dir={tmp}", f"hydra.run.dir={tmp / 'run'}"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"the demo did not start: {(tmp / 'demo.log').read_text()[-3000:]}")
            time.sleep(1)
    yield url
    server.terminate()
    server.wait(timeout=30)
    log.close()


def test_a_script_calls_the_page_through_gradio_client(served):
    from gradio_client import Client

    gallery, downloads, status = Client(served, verbose=False).predict(
        "a handwritten seven\nthe digit 2", 2, 2.0, 1.0, 1, 0, api_name="/generate")
    assert len(gallery) == 4 and status.startswith("4 images")
    assert all(Image.open(item["image"]).size == (SIZE, SIZE) for item in gallery)
    assert sorted(Path(d).suffix for d in downloads) == [".json", ".zip"]


def test_a_drawn_mask_edits_as_the_half_it_covers(served, tmp_path):
    import numpy as np
    from gradio_client import Client, handle_file

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)).save(tmp_path / "in.png")
    strokes = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)
    strokes[SIZE // 2 :, :, [0, 3]] = 255  # painted over the bottom half
    Image.fromarray(strokes).save(tmp_path / "strokes.png")
    client = Client(served, verbose=False)

    def edited(layers: list, mask: str, box: str = "") -> list[bytes]:
        editor = {"background": handle_file(tmp_path / "in.png"), "layers": layers, "composite": None}
        gallery, _, _ = client.predict(editor, mask, box, "a handwritten eight", 2, 0, api_name="/edit")
        return [Path(item["image"]).read_bytes() for item in gallery]

    bottom = edited([], "bottom")
    assert len(bottom) == 2
    assert edited([handle_file(tmp_path / "strokes.png")], "drawn") == bottom
    assert edited([], "box", f"{SIZE // 2}, 0, {SIZE}, {SIZE}") == bottom
    assert edited([], "top") != bottom


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="no chromium / chromedriver: apt-get install -y chromium chromium-driver (CI has them)")
def test_a_browser_types_a_prompt_presses_generate_and_sees_the_images(served, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is part of the demo extra")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    try:
        browser.get(served)
        wait = WebDriverWait(browser, 120)
        box = wait.until(seen.element_to_be_clickable((By.CSS_SELECTOR, "#prompts textarea")))
        box.clear()
        box.send_keys("the digit 2")
        browser.find_element(By.CSS_SELECTOR, "#generate").click()
        wait.until(lambda b: b.execute_script(
            "return [...document.querySelectorAll('#results img')].filter(i => i.complete && i.naturalWidth).length")
            >= 4)
        sizes = browser.execute_script(
            "return [...document.querySelectorAll('#results img')].map(i => [i.naturalWidth, i.naturalHeight])")
        assert sizes and all(size == [SIZE, SIZE] for size in sizes)
        assert "4 images" in browser.find_element(By.CSS_SELECTOR, "#status").text
    finally:
        browser.quit()


def test_each_family_gets_its_page_and_a_tokenizer_gets_a_reason(tmp_path, one_thread):
    from parti_exp.demo import load_demo_model
    from parti_exp.inference.demo_page import demo_page

    def endpoints(ckpt: Path) -> set[str]:
        page = demo_page(load_demo_model(demo_config(tmp_path, ckpt), tmp_path / "results"), ckpt.name)
        return {fn.api_name for fn in page.fns.values() if fn.api_name}

    assert endpoints(OLD_VAE) == {"generate", "interpolate"}
    assert endpoints(OLD_PARTI) == {"generate", "edit"}
    with pytest.raises(ConfigError, match=r"family vqgan\), which makes no images of its own; the demo serves "
                                          r"text_to_image, gan, vae, image_to_image"):
        demo_page(load_demo_model(demo_config(tmp_path, OLD_TOKENIZER), tmp_path / "results"), "tokenizer")
