"""What a parser read, kept and skipped: the one report every annotation parser returns."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("genesplice.annotations")


@dataclass
class ParseReport:
    """What a parser read, kept and skipped (never silently dropped)."""
    source: str
    rows_read: int = 0
    rows_kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    n_unmapped: int = 0
    unmapped_examples: list[str] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)

    def skip(self, reason: str, n: int) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(n)

    def add_unmapped(self, ids: Sequence[str], examples: int = 10) -> None:
        self.n_unmapped += len(ids)
        room = examples - len(self.unmapped_examples)
        if room > 0:
            self.unmapped_examples.extend(list(ids)[:room])

    def log(self) -> "ParseReport":
        """One log line with the counts (soft problems are logged, never printed)."""
        if self.skipped or self.n_unmapped:
            logger.info("%s", self.summary())
        return self

    def summary(self) -> str:
        sk = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.skipped.items())) or "none"
        un = ""
        if self.n_unmapped:
            un = f"; {self.n_unmapped:,} unmapped ids (e.g. {', '.join(self.unmapped_examples[:5])})"
        return (f"{Path(self.source).name}: {self.rows_read:,} rows read, "
                f"{self.rows_kept:,} kept; skipped: {sk}{un}")
