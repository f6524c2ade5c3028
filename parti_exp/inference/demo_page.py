"""The page of ``python -m parti_exp.demo`` (Gradio, the optional ``demo`` extra), one per model family in a registry
(``PAGES``, keyed by the module's ``family`` as the samplers are): text-to-image models get prompts, the number of
images, guidance, temperature, candidates reranked by the scorer, a seed, and an editing tab (upload, then a half, a
box or a drawn mask, and a prompt); GANs and the VAE a seed, truncation (GANs), a class (conditional models) and an
interpolation between two seeds; translators an upload. Every button calls ``parti_exp.inference.demo_actions``,
shows a progress line while the model works, and offers the result's images, manifest and zip for download."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import gradio as gr
import numpy as np
from PIL import Image

from parti_exp.errors import ConfigError, UserError
from parti_exp.inference import demo_actions as actions
from parti_exp.inference.demo_actions import DemoModel, DemoResult
from parti_exp.inference.edit_mask import HALVES
from parti_exp.protocols import FillsMaskedTokens, LatentImageModel
from parti_exp.runtime.progress import reported_to

BOX_HINT = "y0, x0, y1, x1 in the image's pixels (mask: box)"
# Gradio gives a handler whose parameter defaults to a Progress a tracker of the click's own: one default serves all.
PROGRESS = gr.Progress()


def _run(work: Callable[[], DemoResult], progress: gr.Progress, what: str) -> tuple[list[tuple], list[str], str]:
    """Run one click's work with a progress line; its images for the gallery, files to download, and a status
    line. A mistake in the page's inputs is shown on the page (a ``UserError``'s message), not as a traceback."""
    progress(0.0, desc=f"{what}…")
    try:
        # The stages of the sampling code (parti_exp.runtime.progress) move the page's progress line.
        with reported_to(lambda stage, done, total: progress(done / max(total, 1), desc=f"{stage}: {done}/{total}")):
            result = work()
    except UserError as error:
        raise gr.Error(str(error)) from None
    progress(1.0, desc="done")
    manifest = result.folder / "manifest.json"
    downloads = [str(result.archive)] + ([str(manifest)] if manifest.is_file() else [])
    captions = result.captions or [None] * len(result.images)
    shown = [(str(path), caption) for path, caption in zip(result.images, captions)]
    return shown, downloads, f"{len(result.images)} images in `{result.folder}`"


def _outputs() -> tuple[gr.Gallery, gr.File, gr.Markdown]:
    gallery = gr.Gallery(label="results", columns=8, object_fit="contain", height="auto", elem_id="results")
    files = gr.File(label="download (images + manifest.json as a zip, and the manifest)", file_count="multiple")
    status = gr.Markdown(elem_id="status")
    return gallery, files, status


def _prompt_page(model: DemoModel) -> None:
    sampling = model.module.sampling
    with gr.Tab("Generate"):
        prompts = gr.Textbox(label="prompts, one per line", value="a handwritten seven", lines=3, elem_id="prompts")
        with gr.Row():
            n = gr.Slider(1, 16, value=4, step=1, label="images per prompt")
            guidance = gr.Slider(1.0, 10.0, value=float(sampling.guidance_scale), step=0.5,
                                 label="guidance scale (1: conditional model, no guidance)")
            temperature = gr.Slider(0.1, 2.0, value=float(sampling.temperature), step=0.05, label="temperature")
        with gr.Row():
            candidates = gr.Slider(1, 16, value=1, step=1, label=(
                "candidates per image, reranked by the scorer" if model.scorer_ckpt else
                "candidates per image, reranked by the digit classifier (labelled digits only; no scorer given)"))
            seed = gr.Number(value=0, precision=0, label="seed")
        button = gr.Button("Generate", variant="primary", elem_id="generate")
        gallery, files, status = _outputs()

        def generate(text, count, scale, temp, k, s, progress=PROGRESS):
            return _run(lambda: actions.draw_prompts(model, text, count, scale, temp, k, s), progress, "sampling")

        button.click(generate, [prompts, n, guidance, temperature, candidates, seed], [gallery, files, status],
                     api_name="generate")
    if isinstance(model.module, FillsMaskedTokens):
        _edit_tab(model)


def _drawn_mask(editor: dict, folder: Path) -> Path:
    """The strokes drawn over the uploaded image as a black (keep) and white (redraw) mask file."""
    layers = [layer for layer in (editor.get("layers") or []) if layer is not None]
    if not layers:
        raise ConfigError("mask: drawn, but nothing is drawn: paint over the area to redraw")
    painted = np.zeros(np.asarray(layers[0]).shape[:2], dtype=bool)
    for layer in layers:
        layer = np.asarray(layer)
        painted |= (layer[..., 3] > 0) if layer.ndim == 3 and layer.shape[-1] == 4 else (layer.max(axis=-1) > 0)
    path = folder / "drawn_mask.png"
    Image.fromarray(painted.astype(np.uint8) * 255).save(path)
    return path


def _edit_tab(model: DemoModel) -> None:
    with gr.Tab("Edit"):
        editor = gr.ImageEditor(label="image (upload, then paint the area to redraw for mask: drawn)", type="numpy",
                                elem_id="edit_image")
        with gr.Row():
            kind = gr.Radio([*HALVES, "box", "drawn"], value="bottom", label="mask")
            box = gr.Textbox(label=BOX_HINT, value="")
        prompt = gr.Textbox(label="prompt for the masked area", value="a handwritten eight")
        with gr.Row():
            n = gr.Slider(1, 16, value=4, step=1, label="edits")
            seed = gr.Number(value=0, precision=0, label="seed")
        button = gr.Button("Edit", variant="primary", elem_id="edit")
        gallery, files, status = _outputs()

        def run_edit(image, mask_kind, box_text, text, count, s, progress=PROGRESS):
            def work() -> DemoResult:
                if image is None or image.get("background") is None:
                    raise ConfigError("upload an image to edit first")
                inputs = model.fresh_folder("edit_input")
                source = inputs / "image.png"
                Image.fromarray(np.asarray(image["background"]).astype(np.uint8)).save(source)
                if mask_kind == "drawn":
                    mask = _drawn_mask(image, inputs)
                elif mask_kind == "box":
                    try:
                        mask = [int(v) for v in str(box_text).replace(" ", "").split(",")]
                    except ValueError:
                        raise ConfigError(f"box={box_text!r}: give four whole pixel numbers, {BOX_HINT}") from None
                else:
                    mask = mask_kind
                return actions.edit_upload(model, source, mask, text, count, s)

            return _run(work, progress, "editing")

        button.click(run_edit, [editor, kind, box, prompt, n, seed], [gallery, files, status], api_name="edit")


def _latent_page(model: DemoModel) -> None:
    module = model.module
    truncates = model.family == "gan"
    classes = module.num_classes if isinstance(module, LatentImageModel) else None
    with gr.Tab("Sample"):
        with gr.Row():
            seed = gr.Number(value=0, precision=0, label="seed")
            n = gr.Slider(1, 64, value=16, step=1, label="images")
            truncation = gr.Slider(0.05, 1.0, value=1.0, step=0.05, visible=truncates,
                                   label="truncation ψ (1: none; lower trades diversity for fidelity)")
            label = gr.Dropdown(["every class in turn", *map(str, range(classes or 0))], value="every class in turn",
                                label="class", visible=bool(classes))
        button = gr.Button("Generate", variant="primary", elem_id="generate")
        gallery, files, status = _outputs()

        def generate(s, count, psi, chosen, progress=PROGRESS):
            picked = None if chosen in (None, "every class in turn") else int(chosen)
            return _run(lambda: actions.draw_latents(model, s, count, psi if truncates else None, picked), progress,
                        "sampling")

        button.click(generate, [seed, n, truncation, label], [gallery, files, status], api_name="generate")
    with gr.Tab("Interpolate"):
        with gr.Row():
            first = gr.Number(value=1, precision=0, label="from seed")
            second = gr.Number(value=2, precision=0, label="to seed")
            steps = gr.Slider(2, 32, value=8, step=1, label="frames")
            psi = gr.Slider(0.05, 1.0, value=1.0, step=0.05, visible=truncates, label="truncation ψ")
        button = gr.Button("Interpolate", variant="primary", elem_id="interpolate")
        gallery, files, status = _outputs()

        def interpolate(a, b, count, p, progress=PROGRESS):
            return _run(lambda: actions.interpolate_seeds(model, a, b, count, p if truncates else None), progress,
                        "interpolating")

        button.click(interpolate, [first, second, steps, psi], [gallery, files, status], api_name="interpolate")


def _translation_page(model: DemoModel) -> None:
    with gr.Tab("Translate"):
        image = gr.Image(label="image to translate", type="filepath", elem_id="translate_image")
        button = gr.Button("Translate", variant="primary", elem_id="translate")
        gallery, files, status = _outputs()

        def translate(path, progress=PROGRESS):
            return _run(lambda: actions.translate_upload(model, path), progress, "translating")

        button.click(translate, [image], [gallery, files, status], api_name="translate")


PAGES: dict[str, Callable[[DemoModel], None]] = {
    "text_to_image": _prompt_page,
    "gan": _latent_page,
    "vae": _latent_page,
    "image_to_image": _translation_page,
}


def demo_page(model: DemoModel, title: str) -> gr.Blocks:
    """The page for ``model``'s family; ConfigError for a family that makes no images of its own."""
    if model.family not in PAGES:
        raise ConfigError(f"{title} is a {type(model.module).__name__} (family {model.family}), which makes no images "
                          f"of its own; the demo serves {', '.join(PAGES)} models (a scorer joins a text-to-image "
                          "model's page as scorer_ckpt=)")
    with gr.Blocks(title=f"parti_exp: {title}", analytics_enabled=False) as page:
        gr.Markdown(f"## {title}\n{type(model.module).__name__} ({model.family}); every result is written with its "
                    f"manifest.json under `{model.out_dir}`")
        PAGES[model.family](model)
    return page
