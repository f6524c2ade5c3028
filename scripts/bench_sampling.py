"""Sampling speed of the text-to-image Transformer with and without the KV cache.

    python scripts/bench_sampling.py [--batch 8] [--dim 256] [--decoder-depth 4] [--grid 8] [--repeats 3]

Builds a model with random weights and samples the same batch of captions both ways from the same generator
seed; the two must give the same tokens. Without the cache every step re-runs the encoder and the decoder over
the whole prefix; with it, each step projects one token. Reports image tokens per second (batch x tokens per
image / seconds, best of the repeats) and the ratio.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from parti_exp.models.text_to_image.sampling import SamplingConfig, sample_image_tokens
from parti_exp.nets.transformer import TextToImageTransformer


def best_time(sample: Callable[[], torch.Tensor], repeats: int) -> tuple[float, torch.Tensor]:
    times, tokens = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = sample()
        times.append(time.perf_counter() - start)
    return min(times), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--encoder-depth", type=int, default=2)
    parser.add_argument("--decoder-depth", type=int, default=4)
    parser.add_argument("--grid", type=int, default=8, help="image tokens per side: grid**2 tokens per image")
    parser.add_argument("--codebook", type=int, default=1024)
    parser.add_argument("--text-len", type=int, default=16)
    parser.add_argument("--guidance-scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(args.seed)
    model = TextToImageTransformer(
        text_vocab_size=1000,
        codebook_size=args.codebook,
        token_grid=(args.grid, args.grid),
        max_text_len=args.text_len,
        dim=args.dim,
        encoder_depth=args.encoder_depth,
        decoder_depth=args.decoder_depth,
        heads=args.heads,
    ).to(device)
    text_ids = torch.randint(3, 1000, (args.batch, args.text_len), device=device)
    text_mask = torch.ones_like(text_ids, dtype=torch.bool)
    null_ids, null_mask = torch.tensor([[2]], device=device), torch.tensor([[True]], device=device)

    def run(use_cache: bool) -> torch.Tensor:
        generator = torch.Generator(device).manual_seed(args.seed)
        config = SamplingConfig(guidance_scale=args.guidance_scale, use_cache=use_cache)
        tokens = sample_image_tokens(model, text_ids, text_mask, null_ids, null_mask, config, generator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return tokens

    run(True)  # warm-up: kernel selection and allocations, outside the timings
    cached_s, cached = best_time(lambda: run(True), args.repeats)
    uncached_s, uncached = best_time(lambda: run(False), args.repeats)
    if not torch.equal(cached, uncached):
        raise SystemExit("cached and uncached sampling gave different tokens")

    image_tokens = args.batch * model.num_image_tokens
    params = sum(p.numel() for p in model.parameters())
    print(
        f"device {device} ({torch.get_num_threads()} threads), {params / 1e6:.2f} M parameters, batch {args.batch}, "
        f"{model.num_image_tokens} tokens per image, guidance scale {args.guidance_scale}, best of {args.repeats}"
    )
    print(f"uncached: {uncached_s:.3f} s, {image_tokens / uncached_s:,.0f} tokens/s")
    print(f"cached:   {cached_s:.3f} s, {image_tokens / cached_s:,.0f} tokens/s")
    print(f"speedup (cached / uncached tokens/s): {uncached_s / cached_s:.1f}x; tokens identical")


if __name__ == "__main__":
    main()
