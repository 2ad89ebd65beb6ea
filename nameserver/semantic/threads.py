"""How many onnxruntime threads run a question the encoder has to itself: the count that has been
faster lately, learnt while serving (no I/O, no clock: the batcher times the runs).

On a 2-core machine one thread per run keeps a core for the event loop, which matters when
questions queue up (they then share batched runs, always on the batch session). A question that
arrives alone is answered sooner with two threads, by a quarter on an idle machine, but slower
when another process holds the second core (the spinning thread waits for it): which one holds
here depends on what else runs, so it is measured, not assumed. `ThreadChooser` keeps each
choice's recent costs (seconds per character of the text, up to what the encoder reads, plus a
fixed run overhead) and picks the one whose median is lower, trying each other choice every
`explore_every`-th run so a change of load is noticed. Medians, not means: a run the scheduler
delayed is one sample, not a verdict.

    chooser = ThreadChooser((1, 2))
    threads = chooser.pick()
    ...                                   # run the encoder with `threads`, time it
    chooser.observe(threads, seconds, len(text))
"""
from __future__ import annotations

import statistics
from collections import deque
from typing import Sequence

EXPLORE_EVERY = 8  # one run in this many tries the choice that is not the cheapest
WINDOW = 9  # recent runs per choice whose median is its cost
RUN_OVERHEAD_CHARS = 64  # a run costs about what this many more characters of text cost
READ_CHARS = 320  # the encoder reads ~64 tokens (`routing.embedder.MAX_TOKENS`): ~320 characters


class ThreadChooser:
    """Picks among `choices` (thread counts) the one whose recent runs cost least."""

    def __init__(self, choices: Sequence[int], explore_every: int = EXPLORE_EVERY, window: int = WINDOW) -> None:
        if not choices or explore_every < 2 or window < 1:
            raise ValueError("ThreadChooser needs choices, explore_every >= 2 and window >= 1")
        self.choices = tuple(dict.fromkeys(choices))
        self.explore_every = explore_every
        self._recent: dict[int, deque[float]] = {choice: deque(maxlen=window) for choice in self.choices}
        self.picks = 0

    @property
    def costs(self) -> dict[int, float]:
        """The median recent cost of each choice that has run (seconds per character + overhead)."""
        return {choice: statistics.median(runs) for choice, runs in self._recent.items() if runs}

    def pick(self) -> int:
        """The thread count for the next lone run."""
        self.picks += 1
        costs = self.costs
        untried = [choice for choice in self.choices if choice not in costs]
        if untried:
            return untried[0]
        ranked = sorted(self.choices, key=costs.__getitem__)
        if len(ranked) > 1 and self.picks % self.explore_every == 0:
            return ranked[1 + (self.picks // self.explore_every) % (len(ranked) - 1)]
        return ranked[0]

    def observe(self, threads: int, seconds: float, characters: int) -> None:
        """A run with `threads` took `seconds` for a text of `characters`."""
        if threads in self._recent:
            self._recent[threads].append(seconds / (min(characters, READ_CHARS) + RUN_OVERHEAD_CHARS))

    @property
    def best(self) -> int | None:
        """The cheapest choice so far (None before every choice has run once)."""
        costs = self.costs
        if len(costs) < len(self.choices):
            return None
        return min(self.choices, key=costs.__getitem__)
