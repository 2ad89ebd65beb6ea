"""`semdns routes`: learn each route node's head from labelled questions; check what routing does.

    semdns routes train CORPUS.jsonl [--zones zonefiles] [--folds 5] [--variant int8] [--no-profiles]
    semdns routes train --from-profiles [--zones zonefiles]     (toy set: the profiles' own ex=/desc=)
    semdns routes check LABELLED.jsonl [--zones zonefiles] [--against DIR | --against-git REV]

`train` fits every node that has child profiles (on the corpus plus the profiles' own exemplars and
descriptions, each labelled by where its profile sits) (`routing.train`: k-fold cross-validation picks
the head, the keyword prior's weight and the temperature; a fast head over the token encoder, and
the probability above which it decides alone, `routing.train.choose_decide`), writes each zone's heads to
`<zones>/heads/<origin>heads` (`zones.head`, semhead1), adds `$INCLUDE heads/<origin>heads <origin>`
to the zonefile when it lacks it, and bumps the zone's SOA serial (a reload then serves them, and
IXFR/AXFR carries them to secondaries).

`check` routes every labelled question in-process, as a server does (fast heads first, unless
`--no-fast-heads`), and prints, per node, accuracy (of the decisions
taken at that node, on the questions whose path passes it), the confusion matrix, the coverage–
accuracy curve of the head's confidence, the children whose questions are mutually nearest
(overlap), and the questions whose final route differs from the zones `--against` (default: the
zones directory as committed in git HEAD), so an admin sees what an edit changes before it serves.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import dns.name
import numpy as np

from codec import normalize
from routing.classifier import Classifier, Decision, TokenVectors, classify, head_probabilities, similarity_logits
from routing.descend import descend
from routing.embedder import load_embedder
from routing.index import Encoder, IndexCache, MemoEncoder
from routing.tokens import load_token_encoder
from routing.train import Fit, choose_decide, coverage_curve, train_head
from tools.cmd_codec import bump_serial
from tools.routes_data import Labelled, NodeSet, embed_all, keyword_shares, load_labelled, node_set, route_indexes
from zones.catalog import ZoneCatalog
from zones.head import RouteHead
from zones.loader import load_directory
from zones.profile import parse_profiles

DEFAULT_ZONES = Path("zonefiles")
GENERAL = "(general)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("routes", help="routing heads: train from labelled questions, check")
    sub = parser.add_subparsers(dest="routes_command", required=True)
    train = sub.add_parser("train", help="fit every node's head and write it as zone data")
    train.add_argument("corpus", nargs="?", type=Path, help="JSONL: text, domain, subdomain per line")
    train.add_argument("--from-profiles", action="store_true", help="train on the profiles' ex=/desc= alone (toy)")
    train.add_argument("--no-profiles", action="store_true",
                       help="leave the profiles' ex=/desc= out of the corpus (default: added to it)")
    train.add_argument("--zones", type=Path, default=DEFAULT_ZONES, help="default: %(default)s")
    train.add_argument("--apex", default="semantic.root.")
    train.add_argument("--folds", type=int, default=5)
    train.add_argument("--cv-by", choices=("source", "row"), default="source",
                       help="folds hold out whole sources (default: how a new source fares) or rows")
    train.add_argument("--min-rows", type=int, default=10, help="a node trains when every child has this many")
    train.add_argument("--variant", choices=("fp32", "int8"), default="int8", help="encoder graph (as served)")
    train.set_defaults(func=run_train)
    check = sub.add_parser("check", help="accuracy per node, confusions, moved questions, overlaps")
    check.add_argument("labelled", type=Path, help="JSONL: text, domain, subdomain per line")
    check.add_argument("--zones", type=Path, default=DEFAULT_ZONES, help="default: %(default)s")
    check.add_argument("--apex", default="semantic.root.")
    check.add_argument("--against", type=Path, help="a zones directory to compare with")
    check.add_argument("--against-git", default="HEAD", help="compare with the zones as committed at REV "
                       "(default %(default)s; '' for no comparison)")
    check.add_argument("--variant", choices=("fp32", "int8"), default="int8")
    check.add_argument("--no-fast-heads", action="store_true",
                       help="route as `semdns serve --no-fast-heads` does (default: as served, fast heads first)")
    check.add_argument("--show", type=int, default=20, help="moved questions to print")
    check.set_defaults(func=run_check)


def load_catalog(zones: Path) -> ZoneCatalog:
    catalog, problems = load_directory(zones)
    errors = [str(p) for p in problems if p.is_error]
    if errors:
        raise SystemExit("\n".join(errors))
    return catalog


def profile_rows(catalog: ZoneCatalog, apex: dns.name.Name) -> list[Labelled]:
    """The toy set: every exemplar and description, labelled by where its profile sits."""
    rows = []
    for _, zone in sorted(catalog.zones.items()):
        from zones.profile import find_route_nodes

        for node in find_route_nodes(zone):
            if not node.is_subdomain(apex):
                continue
            above = [label.decode() for label in reversed(node.relativize(apex).labels)] if node != apex else []
            if len(above) > 1:
                continue
            for profile in parse_profiles(zone, node).profiles:
                label = profile.child.labels[0].decode()
                path = above + [label]
                for text in profile.exemplars + ((profile.description,) if profile.description else ()):
                    rows.append(Labelled(normalize(text), path[0], path[1] if len(path) > 1 else None))
    return rows


def run_train(args: argparse.Namespace) -> int:
    apex = dns.name.from_text(args.apex)
    catalog = load_catalog(args.zones)
    if args.from_profiles:
        labelled = profile_rows(catalog, apex)
    elif args.corpus is not None:
        labelled = load_labelled(args.corpus) + ([] if args.no_profiles else profile_rows(catalog, apex))
    else:
        raise SystemExit("semdns routes train: give CORPUS.jsonl or --from-profiles")
    encoder, token_encoder = load_embedder(args.variant), load_token_encoder()
    indexes = IndexCache(encoder, token_encoder)
    print(f"embedding {len(labelled)} questions ({args.variant}) ...", file=sys.stderr)
    vectors = embed_all(encoder, [row.text for row in labelled], cache_key=args.variant)
    tokens = token_encoder.embed([row.text for row in labelled])
    fragments: dict[dns.name.Name, list[str]] = collections.defaultdict(list)
    for origin, node, index in route_indexes(catalog, indexes):
        found = node_set(node, index, apex, labelled)
        if found is None:
            continue
        counts = np.bincount(found.labels, minlength=len(found.classes))
        if not len(counts) or counts.min() < args.min_rows:
            print(f"{node}: skipped, too few questions per child ({dict(zip(found.classes, counts.tolist()))})")
            continue
        shares = keyword_shares(index, [labelled[i].text for i in found.rows])
        sims = similarity_logits(index, vectors[found.rows])
        sources = [labelled[i].source for i in found.rows]
        names = sorted(set(sources) - {""})
        groups = np.array([names.index(s) if s else -1 for s in sources]) if args.cv_by == "source" else None
        fit = train_head(vectors[found.rows], shares, found.labels, found.classes, folds=args.folds,
                         sims=sims, groups=groups)
        print(f"{node}: {len(found.rows)} questions {dict(zip(found.classes, counts.tolist()))}")
        for name, accuracy in fit.table:
            print(f"    cv {name:<22} {accuracy:.4f}{'  <- chosen' if name == str(fit.candidate) else ''}")
        held = "sources held out" if groups is not None and len(names) >= 2 else "rows held out"
        print(f"    prior={fit.head.prior:g} sim={fit.head.sim:g} temp={fit.head.temperature:g} "
              f"cv accuracy {fit.cv_accuracy:.4f} ({held}, {int(fit.cv_rows.sum())} questions tested)")
        confidence = fit.cv_probs.max(axis=1)
        correct = fit.cv_probs.argmax(axis=1) == found.labels[fit.cv_rows]
        print("    coverage-accuracy (cross-validated): " + "  ".join(
            f"th {t:.1f}: {c:.3f}/{a:.4f}" for t, c, a in coverage_curve(confidence, correct)))
        fragments[origin].append(fit.head.to_zone_fragment(
            node, [f"head of {node}: {fit.candidate}, {len(found.rows)} questions, "
                   f"{args.folds}-fold cv accuracy {fit.cv_accuracy:.4f} ({held})"]))
        assert index.fast_space is not None  # the cache has the token encoder
        fast = _fast_head(fit, tokens[found.rows], shares, similarity_logits(index.fast_space, tokens[found.rows]),
                          found, args.folds, groups)
        if fast is not None:
            fragments[origin].append(fast.to_zone_fragment(node, [f"fast head of {node}: token encoder, decides at "
                                                                  f"p >= {fast.decide:g} (cross-validated)"]))
    for origin, parts in sorted(fragments.items()):
        write_heads(args.zones, origin, parts)
    return 0


def _fast_head(fit: Fit, tokens: np.ndarray, shares: np.ndarray, sims: np.ndarray, found: NodeSet, folds: int,
               groups: np.ndarray | None) -> RouteHead | None:
    """The node's fast head (over the token encoder's vectors, `sims` their similarity logits in its
    space; same folds as `fit`), deciding at the threshold `routing.train.choose_decide` finds;
    None when none is as accurate as the head."""
    fast = train_head(tokens, shares, found.labels, found.classes, folds=folds, sims=sims, groups=groups)
    assert (fast.cv_rows == fit.cv_rows).all()  # same labels and groups: the same folds
    decide = choose_decide(fast.cv_probs, fit.cv_probs, found.labels[fit.cv_rows])
    if decide is None:
        print(f"    fast head {fast.candidate}: cv {fast.cv_accuracy:.4f}; no threshold where it is as accurate "
              "as the head: none")
        return None
    print(f"    fast head {fast.candidate}: cv {fast.cv_accuracy:.4f}; decides at p >= {decide.threshold:g}: "
          f"{decide.share:.3f} of the questions at {decide.fast_accuracy:.4f} (the head on them "
          f"{decide.head_accuracy:.4f}); with the head for the rest {decide.cascade_accuracy:.4f} "
          f"(the head alone {decide.head_alone:.4f})")
    return dataclasses.replace(fast.head, decide=decide.threshold)


def write_heads(zones: Path, origin: dns.name.Name, parts: Sequence[str]) -> None:
    """Write `heads/<origin>heads`, include it from the zonefile, bump the zone's serial (the
    heads carry the new serial)."""
    zonefile = zones / f"{origin.to_text()}zone"
    old, new = bump_serial(zonefile)
    target = zones / "heads" / f"{origin.to_text()}heads"
    target.parent.mkdir(exist_ok=True)
    body = re.sub(r'"serial=\d+"', f'"serial={new}"', "".join(parts))
    target.write_text(f"; Routing heads of {origin} (semhead1; ARCHITECTURE §7.1). Generated by "
                      "`semdns routes train`: do not edit, retrain.\n" + body)
    include = f"$INCLUDE heads/{origin.to_text()}heads {origin.to_text()}"
    text = zonefile.read_text()
    if include not in text:
        zonefile.write_text(text.rstrip("\n") + "\n; Learned routing heads of this zone's nodes (semdns routes train)\n"
                            + include + "\n")
    print(f"{target}: written; {zonefile}: serial {old} -> {new}")


# --- check -------------------------------------------------------------------------------------


def _final(hops: Sequence, apex: dns.name.Name) -> str:
    """The route's end as labels below the apex (e.g. `legal/contract`), GENERAL at the apex."""
    end = apex
    for hop in hops:
        if hop.decision.child is not None:
            end = hop.decision.child
    return "/".join(label.decode() for label in reversed(end.relativize(apex).labels)) or GENERAL


def route_all(catalog: ZoneCatalog, indexes: IndexCache, encoder: Encoder, apex: dns.name.Name,
              labelled: Sequence[Labelled], tokens: TokenVectors | None) -> list[str]:
    classifier = Classifier(tokens)
    return [_final(descend(catalog, indexes, classifier, row.text, apex, encoder), apex) for row in labelled]


def overlaps(vectors: np.ndarray, labels: np.ndarray, classes: Sequence[str], top: int = 3) -> list[str]:
    """Pairs of children whose questions are nearest each other: the share of a's questions whose
    nearest other question is b's, both ways, largest sums first."""
    if len(vectors) < 2:
        return []
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nearest = labels[np.argmax(sims, axis=1)]
    k = len(classes)
    share = np.zeros((k, k))
    for a in range(k):
        mine = labels == a
        if mine.any():
            share[a] = np.bincount(nearest[mine], minlength=k) / mine.sum()
    pairs = sorted(((share[a, b] + share[b, a], a, b) for a in range(k) for b in range(a + 1, k)), reverse=True)
    return [f"{classes[a]}<->{classes[b]} {share[a, b]:.3f}/{share[b, a]:.3f}" for _, a, b in pairs[:top]]


def _node_report(found: NodeSet, labelled: Sequence[Labelled], vectors: np.ndarray, encoder: Encoder,
                 tokens: TokenVectors | None) -> list[str]:
    index = found.index
    classifier = Classifier(tokens)
    texts = [labelled[i].text for i in found.rows]
    decisions: list[Decision] = [classify(classifier, index, text, encoder) for text in texts]
    classes = found.classes
    predicted = [classes[index.children.index(d.child)] if d.child is not None else GENERAL for d in decisions]
    truth = [classes[label] for label in found.labels]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth)])) if truth else float("nan")
    stages = collections.Counter(d.stage for d in decisions)
    lines = [f"== {found.node}: {len(truth)} questions, accuracy {accuracy:.4f} "
             f"(stages: {', '.join(f'{s} {n}' for s, n in sorted(stages.items()))}; "
             f"head: {index.head.kind + ' cv=' + index.head.info.get('cv', '?') if index.head else 'none'})"]
    columns = list(classes) + [GENERAL]
    width = max(len(c) for c in columns) + 2
    lines.append("  confusion (rows expected, columns routed):")
    lines.append("  " + "".ljust(width) + "".join(c[:10].rjust(11) for c in columns))
    counts = collections.Counter(zip(truth, predicted))
    for c in classes:
        lines.append("  " + c.ljust(width) + "".join(str(counts[(c, col)]).rjust(11) for col in columns))
    if index.head is not None and len(found.rows):
        shares = keyword_shares(index, texts)
        probs = head_probabilities(index, vectors[found.rows], shares)
        correct = probs.argmax(axis=1) == found.labels
        lines.append("  coverage-accuracy of the head (th.head: share routed on / accuracy of those): " + "  ".join(
            f"{t:.1f}: {c:.3f}/{a:.4f}" for t, c, a in coverage_curve(probs.max(axis=1), correct)))
    pairs = overlaps(vectors[found.rows], found.labels, classes)
    if pairs:
        lines.append("  overlap (share of a's questions whose nearest question is b's / the reverse): "
                     + ", ".join(pairs))
    return lines


def _git_zones(zones: Path, rev: str, target: Path) -> Path | None:
    """The zones directory as committed at `rev`, exported under `target` (None: not in git)."""
    try:
        top = Path(subprocess.run(["git", "-C", str(zones), "rev-parse", "--show-toplevel"], check=True,
                                  capture_output=True, text=True).stdout.strip())
        relative = zones.resolve().relative_to(top)
        archive = subprocess.run(["git", "-C", str(top), "archive", rev, str(relative)], check=True,
                                 capture_output=True).stdout
    except (subprocess.CalledProcessError, ValueError, FileNotFoundError):
        return None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / relative


def run_check(args: argparse.Namespace) -> int:
    apex = dns.name.from_text(args.apex)
    catalog = load_catalog(args.zones)
    labelled = load_labelled(args.labelled)
    model = load_embedder(args.variant)
    tokens = None if args.no_fast_heads else load_token_encoder()
    vectors = embed_all(model, [row.text for row in labelled], cache_key=args.variant)
    encoder = MemoEncoder(model, dict(zip((row.text for row in labelled), vectors)))  # embedded once
    indexes = IndexCache(encoder, tokens)
    for _, node, index in route_indexes(catalog, indexes):
        found = node_set(node, index, apex, labelled)
        if found is not None and len(found.rows):
            print("\n".join(_node_report(found, labelled, vectors, encoder, tokens)))
    routes = route_all(catalog, indexes, encoder, apex, labelled, tokens)
    expected = ["/".join(row.path) for row in labelled]
    top = np.mean([r.split("/")[0] == row.domain for r, row in zip(routes, labelled)])
    full = np.mean([r == e for r, e in zip(routes, expected)])
    print(f"== end to end: top-level accuracy {top:.4f}, full-path accuracy {full:.4f} "
          f"({sum(r == GENERAL for r in routes)} stopped at the apex)")
    with tempfile.TemporaryDirectory() as scratch:
        against = args.against
        if against is None and args.against_git:
            against = _git_zones(args.zones, args.against_git, Path(scratch))
        if against is None:
            print("== moved: no previous version to compare with")
            return 0
        old_routes = route_all(load_catalog(against), IndexCache(encoder, tokens), encoder, apex, labelled, tokens)
    moved = [(o, n, row) for o, n, row in zip(old_routes, routes, labelled) if o != n]
    gained = sum(n == "/".join(row.path) for _, n, row in moved)
    lost = sum(o == "/".join(row.path) for o, _, row in moved)
    print(f"== moved since {against}: {len(moved)} of {len(labelled)} questions "
          f"({gained} now right, {lost} now wrong, {len(moved) - gained - lost} wrong both times)")
    for old, new, row in moved[:args.show]:
        mark = "+" if new == "/".join(row.path) else "-" if old == "/".join(row.path) else " "
        print(f"  {mark} {old} -> {new} (expected {'/'.join(row.path)}): {row.text[:90]}")
    return 0
