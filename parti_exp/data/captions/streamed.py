"""Captions of streamed data, carried in the batches themselves.

A shard set is too large to hold every caption in memory by id, as ``ImageCaptions`` does: a streamed batch's labels
are its captions, each row the UTF-8 bytes of one image's captions joined by newlines (captions are cleaned as they
are read, so they hold no newline), zero-padded to the longest row (uint8 ``B x L``). ``StreamedCaptions`` reads the
captions back from such labels; its corpus (what the text tokenizer is trained on) is the captions of the first
training samples, and its prompts those of the first validation samples.
"""

from __future__ import annotations

import torch

from parti_exp.data.captions.sources import CaptionSource

SEPARATOR = b"\n"


def caption_rows(captions: list[list[str]]) -> torch.Tensor:
    """uint8 ``B x L``: row ``i`` the UTF-8 bytes of ``captions[i]`` joined by newlines, zero-padded."""
    encoded = [SEPARATOR.join(text.encode("utf-8") for text in each) for each in captions]
    rows = torch.zeros(len(encoded), max([1, *map(len, encoded)]), dtype=torch.uint8)
    for i, data in enumerate(encoded):
        if data:
            rows[i, : len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return rows


def captions_of_rows(rows: torch.Tensor) -> list[list[str]]:
    """``caption_rows``'s inverse."""
    found = []
    for row in rows.cpu().to(torch.uint8).numpy():
        data = row.tobytes().rstrip(b"\0")
        found.append([part.decode("utf-8") for part in data.split(SEPARATOR)] if data else [])
    return found


class StreamedCaptions(CaptionSource):
    def __init__(self, corpus: list[str], prompts: list[str]) -> None:
        self._corpus = corpus
        self._prompts = prompts

    def draw(self, labels: torch.Tensor) -> list[str]:
        each = captions_of_rows(labels)
        # One uniform draw per image, scaled to its number of captions: a single call to the global RNG.
        choice = (torch.rand(len(each)) * torch.tensor([len(c) for c in each])).long().tolist()
        return [captions[k] for captions, k in zip(each, choice)]

    def first(self, labels: torch.Tensor) -> list[str]:
        return [captions[0] for captions in captions_of_rows(labels)]

    def corpus(self) -> list[str]:
        return self._corpus

    def prompts(self, count: int) -> list[str]:
        return self._prompts[:count]
