"""Prometheus text-format metrics (exposition format 0.0.4) for one engine.

Counters and histograms live here; gauges (queue depth, readiness) are read from their owners
when `/metrics` is rendered, so they can never drift.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping

LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PREFIX = "semdns_engine"


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, cumulative = [], 0
        sep = "," if labels else ""
        for bound, count in zip(self.buckets, self.counts):
            cumulative += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {cumulative}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        out.append(f"{name}_sum{{{labels}}} {self.total}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


class EngineMetrics:
    """Counters and histograms of one engine, rendered as Prometheus text."""

    def __init__(self, backend: str, model: str) -> None:
        self._base = f'backend="{_escape(backend)}",model="{_escape(model)}"'
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.rejected: dict[str, int] = defaultdict(int)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.duration: dict[str, Histogram] = defaultdict(Histogram)
        self.first_token = Histogram()

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests[(endpoint, status)] += 1
        self.duration[endpoint].observe(seconds)

    def record_rejection(self, reason: str) -> None:
        self.rejected[reason] += 1

    def record_tokens(self, prompt: int, completion: int) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion

    def record_first_token(self, seconds: float) -> None:
        self.first_token.observe(seconds)

    def render(self, gauges: Mapping[str, float]) -> str:
        b = self._base
        lines = [
            f"# HELP {PREFIX}_requests_total HTTP requests answered, by endpoint and status.",
            f"# TYPE {PREFIX}_requests_total counter",
        ]
        for (endpoint, status), count in sorted(self.requests.items()):
            lines.append(f'{PREFIX}_requests_total{{{b},endpoint="{_escape(endpoint)}",status="{status}"}} {count}')
        lines += [
            f"# HELP {PREFIX}_rejected_total Requests refused before reaching the model, by reason.",
            f"# TYPE {PREFIX}_rejected_total counter",
        ]
        for reason, count in sorted(self.rejected.items()):
            lines.append(f'{PREFIX}_rejected_total{{{b},reason="{_escape(reason)}"}} {count}')
        lines += [
            f"# HELP {PREFIX}_prompt_tokens_total Prompt tokens processed.",
            f"# TYPE {PREFIX}_prompt_tokens_total counter",
            f"{PREFIX}_prompt_tokens_total{{{b}}} {self.prompt_tokens}",
            f"# HELP {PREFIX}_completion_tokens_total Tokens generated.",
            f"# TYPE {PREFIX}_completion_tokens_total counter",
            f"{PREFIX}_completion_tokens_total{{{b}}} {self.completion_tokens}",
            f"# HELP {PREFIX}_request_duration_seconds Time from admission to the last byte, by endpoint.",
            f"# TYPE {PREFIX}_request_duration_seconds histogram",
        ]
        for endpoint, histogram in sorted(self.duration.items()):
            lines += histogram.lines(f"{PREFIX}_request_duration_seconds", f'{b},endpoint="{_escape(endpoint)}"')
        lines += [
            f"# HELP {PREFIX}_time_to_first_token_seconds Streaming requests: admission to first token.",
            f"# TYPE {PREFIX}_time_to_first_token_seconds histogram",
        ]
        lines += self.first_token.lines(f"{PREFIX}_time_to_first_token_seconds", b)
        for name, value in gauges.items():
            lines += [f"# TYPE {PREFIX}_{name} gauge", f"{PREFIX}_{name}{{{b}}} {value}"]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
