"""Quiet console: silence the few library messages that are not the user's business, each by its exact text.

Everything else (our warnings, Lightning's warnings about the user's settings) still shows. The entry points call
``quiet_library_noise`` first thing; DDP child processes re-run the entry point, so they install it too.
"""

from __future__ import annotations

import logging
import warnings

# Lightning's advert for its paid logger, logged at INFO on every fit.
LITLOGGER_TIP = "💡 Tip:"
# Lightning 2.6 still uses torch's deprecated LeafSpec; nothing a user of ours can change.
TREESPEC_DEPRECATION = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


class _DropMessagesStartingWith(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def quiet_library_noise() -> None:
    """Install the filters (idempotent: a second call in the same process adds nothing)."""
    warnings.filterwarnings("ignore", message=TREESPEC_DEPRECATION, category=FutureWarning)
    # rank_zero_info logs through this logger; a filter on a logger sees only records logged at it.
    rank_zero_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropMessagesStartingWith) for f in rank_zero_log.filters):
        rank_zero_log.addFilter(_DropMessagesStartingWith(LITLOGGER_TIP))


def expect_frozen_modules(count: int) -> None:
    """Silence Lightning's "Found N module(s) in eval mode at the start of training" for exactly ``count`` modules:
    a model calls it with the number of modules it keeps frozen in eval mode on purpose (a stage-1 tokenizer). A
    module left in eval mode by mistake changes the count, and the warning shows."""
    warnings.filterwarnings("ignore", message=rf"Found {count} module\(s\) in eval mode at the start of training")
