"""What `semdns cluster up --netns` / `down` print: the nodes, then the NOTIFY→served report."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from tools import cluster_isolated as isolated
from tools.cluster_probe import Propagation, summary


def netns_up(zones_dir: Path, runtime: Path, semantic: bool, only: list[str], rounds: int,
             unbound: bool = False) -> int:
    if os.geteuid() != 0:
        print("semdns cluster up --netns: needs root (it makes network namespaces)", file=sys.stderr)
        return 1
    try:
        state = isolated.up(zones_dir, runtime, semantic=semantic, only=only or None, resolver=unbound)
    except (RuntimeError, OSError) as exc:
        print(f"semdns cluster: {exc}\n(everything it had started is stopped and removed)", file=sys.stderr)
        return 1
    layout = state.layout
    for plan in state.zones:
        row = [f"{n}={layout.node(n).address}" for n in (plan.primary, plan.ours, plan.third)]
        print(f"{plan.zone:34} primary {row[0]}  ours {row[1]}  {plan.third_kind} {row[2]}")
    print(f"cluster {state.cluster_id} up: namespaces {layout.hub} + {len(layout.nodes)}; "
          f"state {Path(state.runtime) / isolated.STATE}")
    if rounds > 0:
        try:
            results = isolated.propagation(state, rounds=rounds)
        except (RuntimeError, OSError) as exc:
            print(f"semdns cluster: propagation not measured: {exc}", file=sys.stderr)
            return 1
        print(format_propagation(results, kinds(state)))
    return 0


def kinds(state: isolated.State) -> dict[str, str]:
    return {t.name: t.kind for plan in state.zones for t in state.targets(plan)}


def format_propagation(results: list[Propagation], kind_of: dict[str, str]) -> str:
    lines = ["UPDATE at the primary -> new serial answered by the secondary (ms):",
             f"{'secondary':10} {'n':>4} {'p50':>8} {'max':>8}"]
    for kind, row in summary(results, kind_of).items():
        lines.append(f"{kind:10} {row['n']:>4} {row['p50']:>8.1f} {row['max']:>8.1f}")
    late = [f"{r.zone} {node}" for r in results for node, ms in r.served_ms.items() if ms is None]
    if late:
        lines.append(f"not served in time: {', '.join(late)}")
    return "\n".join(lines)


def netns_down(runtime: Path) -> bool:
    """Take down every namespaced cluster recorded under `runtime`; True when there was one."""
    found = False
    for path in sorted(runtime.glob(f"netns-*/{isolated.STATE}")) if runtime.exists() else ():
        found = True
        state = isolated.State.load(path)
        failures = isolated.down(state)
        for failure in failures:
            print(f"semdns cluster down: {failure}", file=sys.stderr)
        path.unlink()
        print(f"cluster {state.cluster_id} down: stopped {len(state.processes)} processes, "
              f"deleted {len(state.layout.namespaces)} namespaces")
    return found
