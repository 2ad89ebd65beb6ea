"""A lone question runs with the thread count that has been faster here (`ThreadChooser`); batches
always run on the encoder's default session."""
from __future__ import annotations

import asyncio
import time
from typing import Sequence

import numpy as np
import pytest

from nameserver.semantic.batcher import EmbedBatcher
from nameserver.semantic.threads import ThreadChooser


def test_each_choice_is_tried_once_then_the_cheaper_is_kept() -> None:
    chooser = ThreadChooser((1, 2), explore_every=4)
    assert chooser.best is None
    assert chooser.pick() == 1
    chooser.observe(1, 0.004, 100)
    assert chooser.pick() == 2
    chooser.observe(2, 0.003, 100)
    assert chooser.best == 2
    picks = [chooser.pick() for _ in range(12)]  # picks 3 to 14
    assert [n for n, threads in enumerate(picks, start=3) if threads == 1] == [4, 8, 12]  # every 4th explores


def test_a_choice_that_turns_slow_is_left_and_one_slow_run_is_not_a_verdict() -> None:
    chooser = ThreadChooser((1, 2), explore_every=8, window=5)
    chooser.observe(1, 0.004, 100)
    for _ in range(3):
        chooser.observe(2, 0.003, 100)
    chooser.observe(2, 0.050, 100)  # the scheduler delayed one run
    assert chooser.best == 2
    for _ in range(3):  # another process takes the second core: two threads now wait for it
        chooser.observe(2, 0.009, 100)
    assert chooser.best == 1 and chooser.pick() == 1


def test_text_beyond_what_the_encoder_reads_costs_nothing_more() -> None:
    chooser = ThreadChooser((1, 2))
    chooser.observe(1, 0.010, 5000)  # read up to ~64 tokens, like a 320-character text
    chooser.observe(2, 0.009, 320)
    assert chooser.best == 2


def test_cost_is_per_character_of_text() -> None:
    chooser = ThreadChooser((1, 2))
    chooser.observe(1, 0.008, 300)  # a long question, slower in all
    chooser.observe(2, 0.005, 40)  # a short one, faster per text but dearer per character
    assert chooser.best == 1


def test_counts_not_offered_are_ignored_and_bad_settings_refused() -> None:
    chooser = ThreadChooser((1, 1, 2))
    assert chooser.choices == (1, 2)
    chooser.observe(4, 0.001, 10)
    assert 4 not in chooser.costs
    with pytest.raises(ValueError):
        ThreadChooser(())
    with pytest.raises(ValueError):
        ThreadChooser((1, 2), explore_every=1)
    with pytest.raises(ValueError):
        ThreadChooser((1, 2), window=0)


class TwoSessions:
    """An encoder with a slow default session and a fast solo one; records what each run used."""

    thread_choices = (1, 2)

    def __init__(self) -> None:
        self.runs: list[tuple[int | None, int]] = []

    def embed(self, texts: Sequence[str], threads: int | None = None) -> np.ndarray:
        self.runs.append((threads, len(texts)))
        if threads != 2:
            time.sleep(0.1)
        return np.ones((len(texts), 4), dtype=np.float32)


async def test_lone_questions_use_the_faster_count_and_batches_the_default() -> None:
    encoder = TwoSessions()
    batcher = EmbedBatcher(encoder)  # type: ignore[arg-type]
    for n in range(6):
        await batcher.embed([f"question {n}"])
    assert [threads for threads, _ in encoder.runs] == [1, 2, 2, 2, 2, 2]
    assert batcher.solo is not None and batcher.solo.best == 2
    encoder.runs.clear()
    await asyncio.gather(*(batcher.embed([f"together {n}"]) for n in range(3)))
    assert encoder.runs == [(None, 3)]  # arrived in one turn: one batch on the default session
    await batcher.close()


async def test_an_encoder_without_choices_is_called_as_before() -> None:
    calls: list[list[str]] = []

    class Plain:
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            calls.append(list(texts))
            return np.zeros((len(texts), 4), dtype=np.float32)

    batcher = EmbedBatcher(Plain())
    assert batcher.solo is None
    await batcher.embed(["alone"])
    assert calls == [["alone"]]
    await batcher.close()
