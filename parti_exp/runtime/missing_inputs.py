"""Every missing input of a run in one report, not one per try.

A run checks its inputs (resume checkpoint, data files, tokenizer checkpoint, metric weights) independently, each
raising ``MissingInputError`` with its path and remedy. ``MissingInputs`` runs those checks, keeps going past a
missing input, and raises one error listing them all.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from parti_exp.errors import MissingInputError

T = TypeVar("T")


class MissingInputs:
    def __init__(self) -> None:
        self.errors: list[MissingInputError] = []

    def check(self, step: Callable[..., T], *args: Any) -> T | None:
        """``step(*args)``; None (the error kept) if it finds an input missing."""
        try:
            return step(*args)
        except MissingInputError as error:
            self.errors.append(error)
            return None

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            listed = "\n".join(f"- {error}" for error in self.errors)
            raise MissingInputError(f"{len(self.errors)} inputs this run needs are missing:\n{listed}")
