"""Sensitive-data screening: special-category content in free text is found before it is stored.

The policy's ``[sensitive]`` section lists the GDPR Art. 9 special categories (and Art. 10
criminal records) that tidings never keeps, and ``on_detect`` says what happens when someone
volunteers one in a free-text field (an enquiry message, a support note, an import column, a
form's free text):

``redact``
    :func:`screen_text` replaces each sentence that states the fact with
    ``[removed: <category>]`` and returns the categories it removed, so that the record can note
    *that* something was removed (``Screened.note``: "removed: health") — never *what*.
``reject``
    :func:`screen_text` raises :class:`SensitiveDataRefused`, whose message names the
    categories only, so the person can take it out and send the text again.

What is redacted is the sentence, not the matched words.  A match is a few words ("a conviction
for", "genetic testing showed"); the rest of the sentence carries the fact itself ("... fraud
from 2012", "... I carry the gene for cystic fibrosis"), so cutting only the match would keep
what the policy says we must not.  A sentence is what spaCy's rule-based sentencizer says it is
(it knows "Dr." and "e.g." do not end one); a line break also ends one, because bullet points in
support notes and one-line import cells are separate statements.  The other sentences of the text
are kept as they were.

How it is found
---------------
Presidio's analyzer (``presidio-analyzer``) is the frame; every recogniser in it is our own, written
as data in ``screening_rules/<category>.toml`` (presidio ships recognisers for identifiers, none
for Art. 9 content):

- a ``PatternRecognizer`` per category: regular expressions for constructions ("diagnosed with",
  "a conviction for"), with false friends ("healthy growth", "race condition") and context words;
- a term recogniser per category (:mod:`.screening_terms`): term lists matched by **lemma**
  (spaCy's lookup lemmatiser with the ``spacy-lookups-data`` tables), so one entry covers every
  inflection; misspellings of the terms read as the terms ("diabetis"); terms that need a person
  in the sentence to mean the fact ("cancer", "Muslim", "Labour"), and blockers that make a match
  about a thing ("a cancer *charity*", "*people with* dementia"), which apply to the patterns'
  findings too.
- same-sex couples that only two facts together show ("my boyfriend Dave ...; I'm Tom"), from a
  partner word or a partner's name and a first-name dictionary (:mod:`.screening_couples`);
- questions about the product ("can the form ask about disability?") and words taken back
  ("... just kidding") are said of no one;
- a finding about a thing counts after all when the text puts the writer among those it was
  done to ("the gym uses a fingerprint reader, mine too"): a category's ``included`` cues
  (biometric capture has them).

Presidio's context enhancer compares each category's context words with those lemmas.  Its
default NLP engine would load (and try to download) the ``en_core_web_lg`` spaCy model, which is
not on the package registries: the pipeline here is ``spacy.blank("en")`` with the lookup
lemmatiser and the sentencizer (rules and installed tables, no model), and presidio's predefined
recognisers are never loaded, so nothing — tldextract's public suffix list included — is fetched
at import or at run time.

Cost: importing presidio and spaCy and loading the lemma tables takes a few seconds, so it happens
lazily, once per process, the first time a non-blank text is screened (under a lock, so threads
share one engine).  After that a text costs about a millisecond (``make bench-screening`` measures
it).  Presidio runs only the recognisers of categories whose terms or patterns occur in the text,
so most ordinary business text never reaches it.  The same benchmark prints recall and precision
per category on the labelled corpus in ``tests/data/screening/`` — its held-out part, which no
rule is tuned against, and its development part.
"""

from __future__ import annotations

import os
import re
import threading
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import regex

from .schema import SENSITIVE_TEXT, SensitiveCategory
from .screening_couples import CoupleFinder
from .screening_terms import TermList, TermMatcher, build_nlp, read_person_words, read_terms

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from .schema import Policy

__all__ = [
    "CATEGORIES",
    "Finding",
    "Removal",
    "Review",
    "Screened",
    "Screener",
    "SensitiveDataRefused",
    "engine_ready",
    "find_sensitive",
    "forget_screener",
    "load_engine",
    "review_text",
    "screen_text",
    "warm_up",
]

CATEGORIES: tuple[str, ...] = get_args(SensitiveCategory)
COUPLES = "sex_life_or_orientation"  # the category of screening_couples' findings
RULES_DIR = Path(__file__).with_name("screening_rules")

# How every rule pattern is compiled, by presidio and by the pre-filter alike: rule files are
# written in verbose syntax (see screening_rules/_fragments.toml).
FLAGS = regex.IGNORECASE | regex.MULTILINE | regex.VERBOSE
# Strong patterns score 0.85; weak ones 0.35, which presidio's context enhancer lifts by 0.35
# when one of the category's context words is within five words.
SCORE_THRESHOLD = 0.6
STRONG_SCORE = 0.85
WEAK_SCORE = 0.35
CONTEXT_WINDOW = 5
# spaCy is given at most this many characters at a time (split at line breaks), which bounds its
# memory on a huge import cell; a finding never spans a line break.
CHUNK_CHARS = 100_000
# Curly apostrophes ("I’m") and no-break spaces become their plain forms before matching; each is
# one character for one, so offsets into the folded text are offsets into the original.
_FOLD = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00a0": " "})
_FRAGMENT = regex.compile(r"<<(\w+)>>")
_BULLET = regex.compile(r"\s*(?:[-*•·–]\s+)?")


@dataclass(frozen=True)
class Finding:
    """Special-category content at ``text[start:end]`` (the matched words, not the sentence)."""

    category: str  # one of the policy's sensitive categories, e.g. "health"
    start: int
    end: int


@dataclass(frozen=True)
class Screened:
    """A screened text and the categories removed from it — never the removed words."""

    text: str
    removed: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        """What the record says about it: "removed: health, political opinions", or ""."""
        if not self.removed:
            return ""
        return "removed: " + ", ".join(SENSITIVE_TEXT[c] for c in self.removed)


class SensitiveDataRefused(ValueError):
    """The policy says ``on_detect = "reject"`` and the text holds special-category data.

    ``categories`` lists what was found; the message names those categories and nothing from
    the text, so it can be shown to the person who typed it and written to logs.
    """

    def __init__(self, categories: Sequence[str]):
        self.categories = tuple(categories)
        labels = ", ".join(SENSITIVE_TEXT[c] for c in self.categories)
        super().__init__(
            f"The text contains special-category personal data ({labels}), which we do not "
            "store. Please take it out and send the text again."
        )


# How much of a removed sentence the person is shown, around the words that gave it away.
EXCERPT_CHARS = 90


@dataclass(frozen=True)
class Removal:
    """One stretch of a person's text that screening takes out, for telling them which.

    ``excerpt`` is their own words: it goes back to them in the form's answer and nowhere
    else (it is left out of ``repr`` so that it cannot reach a log line by accident).
    """

    categories: tuple[str, ...]
    excerpt: str = field(repr=False)


@dataclass(frozen=True)
class Review:
    """A text as a form can give it back: ``kept`` is the text without the removed parts."""

    kept: str = field(repr=False)
    removals: tuple[Removal, ...] = ()

    @property
    def categories(self) -> tuple[str, ...]:
        seen: list[str] = []
        for removal in self.removals:
            seen += [c for c in removal.categories if c not in seen]
        return tuple(seen)

    def message(self) -> str:
        """What the person is told, in plain words, next to the field."""
        if not self.removals:
            return ""
        parts = [
            f"the part about {_labels(r.categories)} (\u201c{r.excerpt}\u201d)"
            for r in self.removals
        ]
        if len(parts) == 1:
            took = f"We took out {parts[0]}."
        else:
            took = f"We took out {len(parts)} parts: {_and(parts)}."
        return (
            f"{took} We do not keep information about {_labels(self.categories, 'or')}, so "
            "please leave it out. The rest of what you wrote is below: check it, then send it "
            "again."
        )


def _labels(categories: Sequence[str], joiner: str = "and") -> str:
    return _and([SENSITIVE_TEXT[c] for c in categories], joiner)


def _and(items: Sequence[str], joiner: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {joiner} {items[-1]}"


@dataclass(frozen=True)
class Rule:
    """One category's recogniser, as written in ``screening_rules/<category>.toml``."""

    category: str
    patterns: tuple[tuple[str, str, float], ...]  # (name, expanded regex, score)
    context: tuple[str, ...]
    false_friends: tuple[str, ...]
    terms: TermList
    # Cues that put the writer among those a finding about a thing was done to ("mine too").
    included: tuple[str, ...] = ()


def load_rules(directory: Path = RULES_DIR) -> dict[str, Rule]:
    """Read and check every category's rules; a broken pattern fails here, naming its file."""
    common = _read_toml(directory / "_fragments.toml")
    shared = common.get("fragments", {})
    # Blockers of every category: "a <term> company", "specialising in <term>".
    blockers = common.get("blockers", {})
    rules: dict[str, Rule] = {}
    for category in CATEGORIES:
        path = directory / f"{category}.toml"
        data = _read_toml(path)
        fragments = {**shared, **data.get("fragments", {})}
        patterns = []
        for i, entry in enumerate(data.get("patterns", [])):
            where = f"{path.name}: patterns[{i}] ({entry.get('name', '?')})"
            patterns.append(
                (
                    str(entry["name"]),
                    _expand(entry["regex"], fragments, where),
                    float(entry["score"]),
                )
            )
        # The shared false friends (_fragments.toml) are every category's: a list of the
        # categories themselves ("health, religion or sexual orientation") names kinds of data.
        false_friends = tuple(
            _expand(text, fragments, f"{where}: false_friends[{i}]")
            for where, texts in (
                ("_fragments.toml", common.get("false_friends", [])),
                (path.name, data.get("false_friends", [])),
            )
            for i, text in enumerate(texts)
        )
        terms = read_terms(path, category)
        terms = replace(
            terms,
            not_before=terms.not_before + tuple(blockers.get("not_before", ())),
            not_after=terms.not_after + tuple(blockers.get("not_after", ())),
        )
        if not patterns and not terms.strong and not terms.personal:
            raise ValueError(f"{path.name}: a category needs at least one pattern or term")
        included = tuple(
            _expand(text, fragments, f"{path.name}: included[{i}]")
            for i, text in enumerate(data.get("included", []))
        )
        rules[category] = Rule(
            category,
            tuple(patterns),
            tuple(data.get("context", [])),
            false_friends,
            terms,
            included,
        )
    return rules


def _read_toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _expand(pattern: str, fragments: dict[str, str], where: str) -> str:
    def fragment(match: regex.Match[str]) -> str:
        try:
            return fragments[match[1]]
        except KeyError:
            raise ValueError(f"{where}: unknown fragment <<{match[1]}>>") from None

    expanded = _FRAGMENT.sub(fragment, pattern)
    try:
        regex.compile(expanded, FLAGS)
    except regex.error as exc:
        raise ValueError(f"{where}: not a valid pattern: {exc}") from None
    return expanded


def _union(patterns: Iterable[str]) -> regex.Pattern[str]:
    return regex.compile("|".join(f"(?:{p})" for p in patterns), FLAGS)


class _Engine:
    """Presidio's analyzer over spaCy's rule-based English pipeline, with our recognisers only."""

    def __init__(self, rules: dict[str, Rule], person_words: frozenset[str]):
        # Imported here: presidio and spaCy take seconds to import, and the lemma tables to
        # load, which a process that never screens a text should not pay.
        from presidio_analyzer import (
            AnalysisExplanation,
            AnalyzerEngine,
            EntityRecognizer,
            Pattern,
            PatternRecognizer,
            RecognizerRegistry,
            RecognizerResult,
        )
        from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
        from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

        nlp = build_nlp()
        terms = TermMatcher(
            nlp,
            (rule.terms for rule in rules.values()),
            person_words,
            {c: _union(rule.included) for c, rule in rules.items() if rule.included},
        )
        self.terms = terms

        class LemmaNlpEngine(SpacyNlpEngine):
            """spaCy without a trained model: tokens, lookup lemmas, sentences, term matches.

            Presidio's context enhancer compares our context words with these lemmas, so
            "striking" near "union" counts as the context word "strike".
            """

            def load(self) -> None:
                self.nlp = {"en": nlp}  # type: ignore[assignment]  # presidio leaves it untyped (None)

            def _doc_to_nlp_artifact(self, doc: Doc, language: str) -> NlpArtifacts:
                terms.annotate(doc)
                doc.user_data["tidings_terms"] = terms.find(doc)
                return NlpArtifacts(
                    entities=[],
                    tokens=doc,
                    tokens_indices=[token.idx for token in doc],
                    lemmas=[token.norm_ for token in doc],
                    nlp_engine=self,
                    language=language,
                    scores=[],
                )

        class TermRecognizer(EntityRecognizer):
            """One category's term list (see screening_terms): lemma matches as findings.

            A strong term, or a personal one in a sentence about a person, scores 0.85; a
            personal term elsewhere 0.35, which a context word nearby lifts over the threshold.
            """

            def __init__(self, category: str, context: list[str]):
                self.term_name = f"tidings_terms_{category}"
                super().__init__(
                    supported_entities=[category],
                    name=f"tidings_terms_{category}",
                    supported_language="en",
                    context=context,
                )

            def load(self) -> None:
                pass

            def analyze(
                self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
            ) -> list[RecognizerResult]:
                assert nlp_artifacts is not None  # the analyzer always passes them
                doc = nlp_artifacts.tokens
                results = []
                for match in doc.user_data.get("tidings_terms", ()):
                    if match.category not in entities:
                        continue
                    span = doc[match.start : match.end]
                    score = STRONG_SCORE if match.about_person else WEAK_SCORE
                    results.append(
                        RecognizerResult(
                            match.category,
                            span.start_char,
                            span.end_char,
                            score,
                            analysis_explanation=AnalysisExplanation(self.term_name, score),
                            recognition_metadata={
                                RecognizerResult.RECOGNIZER_NAME_KEY: self.term_name,
                                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                            },
                        )
                    )
                return results

        recognizers: list[EntityRecognizer] = [
            PatternRecognizer(
                supported_entity=rule.category,
                name=f"tidings_{rule.category}",
                patterns=[Pattern(name, pattern, score) for name, pattern, score in rule.patterns],
                context=list(rule.context) or None,  # type: ignore[arg-type]  # presidio's default
                global_regex_flags=FLAGS,
            )
            for rule in rules.values()
            if rule.patterns
        ]
        recognizers += [
            TermRecognizer(rule.category, list(rule.context)) for rule in rules.values()
        ]
        self.nlp_engine = LemmaNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}])
        self.analyzer = AnalyzerEngine(
            registry=RecognizerRegistry(
                recognizers, global_regex_flags=FLAGS, supported_languages=["en"]
            ),
            nlp_engine=self.nlp_engine,
            supported_languages=["en"],
            default_score_threshold=SCORE_THRESHOLD,
            context_aware_enhancer=LemmaContextAwareEnhancer(
                context_prefix_count=CONTEXT_WINDOW,
                context_suffix_count=CONTEXT_WINDOW,
                context_matching_mode="whole_word",
            ),
        )
        self.false_friends = {
            rule.category: _union(rule.false_friends)
            for rule in rules.values()
            if rule.false_friends
        }
        self.category_filters = {
            category: _union(p for _, p, _ in rule.patterns)
            for category, rule in rules.items()
            if rule.patterns
        }
        # Same-sex couples shown by two facts together ("my boyfriend Dave ...; I'm Tom").
        self.couples = CoupleFinder()
        self.couples.load()
        # Presidio compiles a recogniser's patterns on first use; do it now, under the caller's
        # lock, so that threads sharing the engine afterwards only read it.
        self.analyze("warm-up", list(rules))

    def analyze(self, text: str, categories: list[str]) -> tuple[list[Finding], Doc]:
        artifacts = self.nlp_engine.process_text(text, "en")
        doc = artifacts.tokens
        # Presidio runs only the recognisers of the categories that can match here: a term
        # matched, or a pattern of the category matches somewhere in the text.
        termed = {m.category for m in doc.user_data["tidings_terms"]}
        present = [
            c
            for c in categories
            if c in termed or ((f := self.category_filters.get(c)) and f.search(text))
        ]
        couples = (
            [Finding(COUPLES, start, end) for start, end in self.couples.find(text)]
            if COUPLES in categories
            else []
        )
        if not present:
            return _merge(couples), doc
        results = self.analyzer.analyze(
            text, language="en", entities=present, nlp_artifacts=artifacts
        )
        friends: dict[str, list[tuple[int, int]]] = {}
        findings = []
        for result in results:
            category = result.entity_type
            if category not in friends:
                pattern = self.false_friends.get(category)
                friends[category] = (
                    [m.span() for m in pattern.finditer(text, overlapped=True)] if pattern else []
                )
            if any(s < result.end and result.start < e for s, e in friends[category]):
                continue
            # The term lists' blockers ("a cancer charity", "people with dementia") apply to
            # the patterns' findings as well as to the terms'.
            if self.terms.blocked(doc, category, result.start, result.end):
                continue
            if self.terms.discounted(doc, category, result.start, result.end):
                continue
            findings.append(Finding(category, result.start, result.end))
        return _merge(findings + couples), doc


class Screener:
    """Finds and redacts special-category content; builds its engine once, on first need.

    The module-level :func:`screen_text` and :func:`find_sensitive` share one instance; make
    your own only to screen with other rules (``Screener(rules_dir)``).
    """

    def __init__(self, rules_dir: Path = RULES_DIR):
        self.rules = load_rules(rules_dir)
        self.person_words = read_person_words(rules_dir / "_fragments.toml")
        self._lock = threading.Lock()
        self._engine: _Engine | None = None

    def find(self, text: str, categories: Iterable[str]) -> list[Finding]:
        """Every finding of the given categories in ``text``, in order of position."""
        return [finding for finding, _ in self._scan(text, tuple(categories))]

    def screen(self, text: str, categories: Iterable[str], on_detect: str = "redact") -> Screened:
        """Redact (or refuse, for ``on_detect="reject"``) the given categories in ``text``."""
        categories = tuple(categories)
        found = self._scan(text, categories)
        if not found:
            return Screened(text)
        removed = tuple(c for c in categories if any(f.category == c for f, _ in found))
        if on_detect == "reject":
            raise SensitiveDataRefused(removed)
        # Merge the sentences to remove, then rebuild the text around them.
        out, position = [], 0
        for start, end, cats, _ in self._spans(found):
            labels = ", ".join(SENSITIVE_TEXT[c] for c in categories if c in cats)
            out += [text[position:start], f"[removed: {labels}]"]
            position = end
        out.append(text[position:])
        return Screened("".join(out), removed)

    def review(self, text: str, categories: Iterable[str]) -> Review:
        """What a form tells the person: which parts go (with their words) and what is left."""
        spans = self._spans(self._scan(text, tuple(categories)))
        if not spans:
            return Review(text)
        removals, kept, position = [], [], 0
        for start, end, cats, (f_start, f_end) in spans:
            ordered = tuple(c for c in CATEGORIES if c in cats)
            removals.append(Removal(ordered, _excerpt(text, start, end, f_start, f_end)))
            kept.append(text[position:start])
            position = end
        kept.append(text[position:])
        return Review(_tidy("".join(kept)), tuple(removals))

    @staticmethod
    def _spans(
        found: list[tuple[Finding, tuple[int, int]]],
    ) -> list[tuple[int, int, set[str], tuple[int, int]]]:
        """The sentences to remove, merged: (start, end, categories, first finding's span)."""
        spans: list[tuple[int, int, set[str], tuple[int, int]]] = []
        for finding, (start, end) in sorted(found, key=lambda item: item[1]):
            if spans and start <= spans[-1][1]:
                last_start, last_end, cats, first = spans[-1]
                spans[-1] = (last_start, max(last_end, end), cats | {finding.category}, first)
            else:
                spans.append((start, end, {finding.category}, (finding.start, finding.end)))
        return spans

    def _scan(
        self, text: str, categories: tuple[str, ...]
    ) -> list[tuple[Finding, tuple[int, int]]]:
        """Findings, each with the span of the sentence that states it."""
        unknown = set(categories) - set(self.rules)
        if unknown:
            raise ValueError(f"unknown sensitive categories: {', '.join(sorted(unknown))}")
        if not categories or not text:
            return []
        folded = text.translate(_FOLD)
        if not folded.strip():
            return []
        engine = self._get_engine()
        found = []
        for offset, chunk in _chunks(folded):
            findings, doc = engine.analyze(chunk, list(categories))
            for finding in findings:
                start, end = _sentence(chunk, doc, finding)
                found.append(
                    (
                        Finding(finding.category, finding.start + offset, finding.end + offset),
                        (start + offset, end + offset),
                    )
                )
        found.sort(key=lambda item: (item[0].start, item[0].end, item[0].category))
        return found

    def _get_engine(self) -> _Engine:
        engine = self._engine
        if engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = _Engine(self.rules, self.person_words)
                engine = self._engine
        return engine


def _excerpt(text: str, start: int, end: int, f_start: int, f_end: int) -> str:
    """The removed sentence as the person wrote it, shortened around the finding if long."""
    sentence = " ".join(text[start:end].split())
    if len(sentence) <= EXCERPT_CHARS:
        return sentence
    room = max(0, (EXCERPT_CHARS - (f_end - f_start)) // 2)
    left, right = max(start, f_start - room), min(end, f_end + room)
    while left > start and not text[left - 1].isspace():
        left += 1
    while right < end and not text[right].isspace():
        right -= 1
    middle = " ".join(text[left:right].split())
    return ("\u2026" if left > start else "") + middle + ("\u2026" if right < end else "")


_BLANK_BULLET = regex.compile(r"(?m)^[ \t]*(?:[-*\u2022\u00b7\u2013][ \t]*)?\n")
_SPACES = regex.compile(r"[ \t]{2,}")


def _tidy(text: str) -> str:
    """The kept text without the gaps the removed sentences leave (empty bullets, double spaces)."""
    text = _BLANK_BULLET.sub("", text)
    text = _SPACES.sub(" ", text)
    text = regex.sub(r"[ \t]+([,.;:!?])", r"\1", text)
    return "\n".join(line.strip() for line in text.strip().split("\n"))


def _merge(findings: list[Finding]) -> list[Finding]:
    """One finding per stretch of text and category: a pattern and a term often both match."""
    merged: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.category, f.start, f.end)):
        last = merged[-1] if merged else None
        if last and last.category == finding.category and finding.start <= last.end:
            merged[-1] = Finding(last.category, last.start, max(last.end, finding.end))
        else:
            merged.append(finding)
    return merged


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """The text in pieces of at most CHUNK_CHARS, cut at line breaks (or spaces) where possible."""
    start, size = 0, len(text)
    while start < size:
        end = min(start + CHUNK_CHARS, size)
        if end < size:
            cut = text.rfind("\n", start, end)
            if cut <= start:
                cut = text.rfind(" ", start, end)
            end = cut + 1 if cut > start else end
        yield start, text[start:end]
        start = end


def _sentence(text: str, doc: Doc, finding: Finding) -> tuple[int, int]:
    """The span to redact for a finding: its sentence, cut at line breaks and semicolons.

    Line breaks and semicolons end a statement here, as they end the window in which a pattern
    looks for its person (``<<clause>>`` in the rules).  A bullet ("- ", "* ", "• ") in front of
    the statement stays, so a list keeps its shape.
    """
    start, end = finding.start, finding.end
    for sent in doc.sents:
        if sent.start_char < finding.end and finding.start < sent.end_char:
            start, end = min(start, sent.start_char), max(end, sent.end_char)
    start = max(start, *(text.rfind(mark, 0, finding.start) + 1 for mark in "\n;"))
    cuts = [(cut, mark) for mark in "\n;" if (cut := text.find(mark, finding.end, end)) != -1]
    if cuts:
        cut, mark = min(cuts)
        end = cut + (mark == ";")  # the semicolon goes with the removed clause
    bullet = _BULLET.match(text, start, finding.start)
    if bullet:
        start = bullet.end()
    while end > finding.end and text[end - 1].isspace():
        end -= 1
    return start, end


_default: Screener | None = None
_default_lock = threading.Lock()


def _screener() -> Screener:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Screener()
    return _default


def _sensitive(policy: Policy | None) -> tuple[tuple[str, ...], str]:
    if policy is None:
        from . import get_policy

        policy = get_policy()
    return tuple(policy.sensitive.categories), policy.sensitive.on_detect


# Second-person words and third-person ones of the same length, so that offsets still match.
_ADDRESSEE = {"you": "she", "your": "her ", "yours": "hers ", "yourself": "herself "}
_SECOND_PERSON = re.compile(r"\b(?:yourself|yours|your|you)\b", re.IGNORECASE)


def _as_third_person(text: str) -> str:
    def swap(match: re.Match[str]) -> str:
        word = _ADDRESSEE[match.group().lower()]
        return word.capitalize() if match.group()[0].isupper() else word

    return _SECOND_PERSON.sub(swap, text)


def find_sensitive(
    text: str, policy: Policy | None = None, *, addressed: bool = False
) -> list[Finding]:
    """Special-category content in ``text``, for the categories the policy lists.

    ``policy`` defaults to the installation's (:func:`tidings.policy.get_policy`).  Findings are
    in order of position; their spans are the matched words (see :func:`screen_text` for what is
    removed).  ``addressed``: the text is written *to* the person (an operator's reply), so
    "you" and "your" are that person — "sorry to hear about your diagnosis" is about their
    health.  In what people write to us "your" is the company's ("your health plan product"),
    which is why this is not the default.
    """
    categories, _ = _sensitive(policy)
    return _screener().find(_as_third_person(text) if addressed else text, categories)


def screen_text(text: str, policy: Policy | None = None) -> Screened:
    """Screen a free-text field before it is stored, as the policy's ``[sensitive]`` says.

    Only the categories the policy lists are looked for.  With ``on_detect = "redact"`` each
    sentence stating one is replaced by ``[removed: <category>]`` (several categories in one
    sentence: ``[removed: health, religious or philosophical beliefs]``) and ``removed`` lists
    the categories, in the policy's order, for the record's note; the removed words are not kept
    anywhere.  With ``on_detect = "reject"`` it raises :class:`SensitiveDataRefused` instead.
    A text with nothing to remove comes back unchanged.
    """
    categories, on_detect = _sensitive(policy)
    return _screener().screen(text, categories, on_detect)


def warm_up() -> None:
    """Build the shared engine in the background, if it is not built yet.

    Building it (importing presidio and spaCy, loading the lemma tables) takes seconds; a page
    whose form will be screened calls this when it is shown, so that the engine is ready by the
    time the person sends it.
    """
    screener = _screener()
    if screener._engine is None:
        threading.Thread(target=screener._get_engine, name="screening-warm-up", daemon=True).start()


def load_engine() -> None:
    """Build the shared engine now, in this thread, if it is not built yet.

    For work that screens inside a database transaction: building takes seconds (many on a
    busy machine), and on SQLite the transaction holds the database's one write lock all that
    while, so every other writer (the worker, the web pages) waits and may give up.
    """
    _screener()._get_engine()


def engine_ready() -> bool:
    """Whether the shared engine is built (``warm_up``'s work is done)."""
    return _default is not None and _default._engine is not None


def _new_locks_after_fork() -> None:
    # A server that imports the application before it forks its workers (gunicorn --preload)
    # forks while warm_up's thread may hold these locks; the child has the locks but not the
    # thread, and would wait for them for ever.  The child takes fresh ones and, if the engine was
    # not built yet, builds its own.
    global _default_lock
    _default_lock = threading.Lock()
    if _default is not None:
        _default._lock = threading.Lock()


os.register_at_fork(after_in_child=_new_locks_after_fork)


def forget_screener() -> None:
    """Drop the shared screener: the next use builds it anew (from the rules as they are then)."""
    global _default
    with _default_lock:
        _default = None


def review_text(text: str, policy: Policy | None = None) -> Review:
    """Which parts of a person's text screening would take out, and the text without them.

    For forms the person is filling in: they are told, next to the field, what was taken out
    and why (:meth:`Review.message`), and the field is given back holding the rest, whichever
    ``on_detect`` the policy says — the form stores nothing until they send it again.
    Never raises for sensitive content; the excerpts are the person's own words and must go
    nowhere but back to them.
    """
    categories, _ = _sensitive(policy)
    return _screener().review(text, categories)
