"""How many onnxruntime threads run a question the encoder has to itself: the count that has been
faster lately, learnt while serving (no I/O, no clock: the batcher times the runs).

On a 2-core machine one thread per run keeps a core for the event loop, which matters when
questions queue up (they then share batched runs, always on the batch session). A question that
arrives alone is answered sooner with two threads, by a quarter on an idle machine, but slower
when another process holds the second core (the spinning thread waits for it): which one holds
here depends on what else runs, so it is measured, not assumed. `ThreadChooser` keeps a smoothed
cost per choice (seconds per character of the text plus a fixed run overhead) and picks the
cheaper, trying each other choice every `explore_every`-th run so a change of load is noticed.

    chooser = ThreadChooser((1, 2))
    threads = chooser.pick()
    ...                                   # run the encoder with `threads`, time it
    chooser.observe(threads, seconds, len(text))
"""
from __future__ import annotations

from typing import Sequence

EXPLORE_EVERY = 16  # one run in this many tries the choice that is not the cheapest
SMOOTHING = 0.2  # weight of the newest run in a choice's cost
RUN_OVERHEAD_CHARS = 64  # a run costs about what this many more characters of text cost


class ThreadChooser:
    """Picks among `choices` (thread counts) the one whose recent runs cost least."""

    def __init__(self, choices: Sequence[int], explore_every: int = EXPLORE_EVERY,
                 smoothing: float = SMOOTHING) -> None:
        if not choices or explore_every < 2 or not 0 < smoothing <= 1:
            raise ValueError("ThreadChooser needs choices, explore_every >= 2 and 0 < smoothing <= 1")
        self.choices = tuple(dict.fromkeys(choices))
        self.explore_every = explore_every
        self.smoothing = smoothing
        self.costs: dict[int, float] = {}  # seconds per (character + overhead), smoothed
        self.picks = 0

    def pick(self) -> int:
        """The thread count for the next lone run."""
        self.picks += 1
        untried = [choice for choice in self.choices if choice not in self.costs]
        if untried:
            return untried[0]
        ranked = sorted(self.choices, key=self.costs.__getitem__)
        if len(ranked) > 1 and self.picks % self.explore_every == 0:
            return ranked[1 + (self.picks // self.explore_every) % (len(ranked) - 1)]
        return ranked[0]

    def observe(self, threads: int, seconds: float, characters: int) -> None:
        """A run with `threads` took `seconds` for a text of `characters`."""
        if threads not in self.choices:
            return
        cost = seconds / (characters + RUN_OVERHEAD_CHARS)
        previous = self.costs.get(threads)
        self.costs[threads] = cost if previous is None else previous + self.smoothing * (cost - previous)

    @property
    def best(self) -> int | None:
        """The cheapest choice so far (None before every choice has run once)."""
        if len(self.costs) < len(self.choices):
            return None
        return min(self.choices, key=self.costs.__getitem__)
