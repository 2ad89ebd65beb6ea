"""A blocking text -> vector function as the resolver's route cache takes one: a coroutine function."""
from __future__ import annotations

from typing import Awaitable, Callable

import numpy as np


def awaiting(embed: Callable[[str], np.ndarray]) -> Callable[[str], Awaitable[np.ndarray]]:
    async def embedded(text: str) -> np.ndarray:
        return embed(text)

    return embedded
