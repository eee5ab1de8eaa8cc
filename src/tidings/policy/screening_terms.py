"""The linguistic half of sensitive-data screening: lemmas, term lists and who a sentence is about.

:mod:`tidings.policy.screening` runs presidio over spaCy's rule-based English pipeline.  This
module builds that pipeline and the term recognisers that read it:

Lemmas
    spaCy's lookup lemmatiser with the tables of the ``spacy-lookups-data`` package (installed
    with tidings, read from disk, never downloaded): "convicted", "convicts" and "convicting"
    are all ``convict``; "churches" is ``church``; "I'm" is ``I be``.  A term list names a word
    once and every inflection of it matches.

Spelling
    A word of seven letters or more that is in neither the lemma tables nor the term lists is
    compared with the term lists' words, and taken as the one it is one edit away from (two for
    words of ten letters or more): "diabetis" is read as ``diabetes``, "epilepsey" as
    ``epilepsy``.  Words the tables know are never "corrected" (so "convent" stays a convent).
    Hand-written because what it needs — a handful of candidates from a few hundred words,
    once per unknown word — is a dictionary look-up, which a fuzzy-matching library would
    only wrap.

Terms
    Each category's ``[terms]`` in ``screening_rules/<category>.toml`` (syntax below), compiled
    into one spaCy ``Matcher`` that runs once per text:

    ``strong``
        state the fact on their own ("chemotherapy", "diagnose with", "shop steward").
    ``personal``
        state it when the sentence is about a person ("cancer", "Muslim", "Labour", "gay"):
        a person word (I, my, she, our son, my colleague ...), a name, or a short fragment
        such as a CRM note ("diabetic, lunch at 12") whose subject is the contact.
    ``not_after`` / ``not_before``
        words that make a match about a thing instead: "a cancer *charity*", "*people with*
        dementia", "*the* Labour *government*".  A blocker may end at most one word before
        the term, or start right after it (or overlap its first or last word).  Blockers are
        matched as written (any case), not by lemma: list the forms ("sell", "sells", "selling").

Term syntax: words separated by spaces, each matched by its lemma, case-insensitively;
``a|b`` either word; ``word?`` an optional word; ``_`` any one word (``_?`` optional, ``_*``
up to eight, not across a sentence start);
``=Word`` that exact spelling, case included ("=Unite" the union, not "unite the teams");
``~word`` that word form, any case, not its lemma ("~fined": not every "fine", "~dating": not
"date").
A word the tokeniser splits ("post-natal", "can't") is matched as its pieces.
"""

from __future__ import annotations

import logging
import tomllib
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

STRONG, PERSONAL = "strong", "personal"
# Marks a blocker match of stop words only (see TermMatcher.find).
WEAK_MARK = "~weak"
# How close a blocker must be: it may end at most this many words before the term (or
# overlap its start)...
BLOCK_BEFORE = 1
# ... or start at most this many words after its end (or overlap it)...
BLOCK_AFTER = 0
# ... or, after "and"/"or", within this many words: "gay and lesbian film *festival*".
COORDINATED_WORDS = 4
_COORDINATION = frozenset({"and", "or", "&", "/"})
_COPULA = frozenset({"is", "was", "'s", "are", "were"})
# A sentence this short (in words) with no verb of its own is a note about the contact.
FRAGMENT_WORDS = 8
# How many gated Matchers each term list's patterns are shared among (by their gate word).
GATE_GROUPS = 8
FUZZY_MIN = 6  # letters: shorter unknown words are not corrected
FUZZY_TWO = 10  # letters: from here two edits are allowed
# Spelling correction is English's: in a text written in French, Spanish, German, Italian,
# Portuguese or Dutch it "corrected" ordinary words into terms ("la facture de novembre", the
# invoice, read as "fracture"). These are words that say a text is in one of those languages and
# are not English words themselves (no "die", "de", "a", "on"); a text with at least two of them,
# more than it has English ones, is not corrected (its words still match terms as written).
# Hand-written rather than a language-identification library: a detector costs a model and
# start-up time, for a yes/no that these few dozen function words answer.
FOREIGN_FUNCTION_WORDS = frozenset(
    [
        "le",
        "la",
        "les",
        "des",
        "du",
        "une",
        "est",
        "et",
        "pour",
        "avec",
        "sur",
        "dans",
        "nous",
        "vous",
        "je",
        "pas",
        "qui",
        "que",
        "mon",
        "ma",
        "mes",
        "votre",
        "notre",
        "merci",
        "bonjour",
        "cordialement",
        "madame",
        "monsieur",
        "el",
        "los",
        "las",
        "una",
        "por",
        "para",
        "con",
        "muy",
        "gracias",
        "hola",
        "del",
        "pero",
        "estoy",
        "tengo",
        "usted",
        "der",
        "das",
        "und",
        "ist",
        "nicht",
        "ich",
        "wir",
        "mit",
        "für",
        "eine",
        "bitte",
        "danke",
        "sehr",
        "ihre",
        "wir",
        "haben",
        "il",
        "della",
        "sono",
        "grazie",
        "buongiorno",
        "questo",
        "non",
        "obrigado",
        "não",
        "você",
        "uma",
        "het",
        "een",
        "niet",
        "ik",
        "voor",
        "bedankt",
        "graag",
    ]
)
ENGLISH_FUNCTION_WORDS = frozenset(
    [
        "the",
        "and",
        "is",
        "are",
        "to",
        "of",
        "my",
        "i",
        "you",
        "we",
        "with",
        "for",
        "this",
        "that",
        "have",
        "has",
        "was",
        "were",
        "be",
        "it",
        "not",
        "me",
        "our",
        "your",
        "they",
        "he",
        "she",
        "at",
        "from",
        "please",
        "thanks",
    ]
)


@dataclass(frozen=True)
class TermList:
    """One category's ``[terms]``."""

    category: str
    strong: tuple[str, ...] = ()
    personal: tuple[str, ...] = ()
    not_after: tuple[str, ...] = ()
    not_before: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    """A term of ``category`` at tokens ``start:end``; ``about_person``: strong, or cued."""

    category: str
    start: int
    end: int
    about_person: bool


def read_terms(path: Path, category: str) -> TermList:
    data = tomllib.loads(path.read_text(encoding="utf-8")).get("terms", {})
    unknown = set(data) - {"strong", "personal", "not_after", "not_before"}
    if unknown:
        raise ValueError(f"{path.name}: [terms] has unknown keys: {', '.join(sorted(unknown))}")
    return TermList(category, **{k: tuple(v) for k, v in data.items()})


def read_person_words(path: Path) -> frozenset[str]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return frozenset(w.lower() for w in data.get("person", {}).get("words", []))


class TermMatcher:
    """Compiles the term lists for one spaCy pipeline and finds their matches in a Doc."""

    def __init__(
        self,
        nlp: Language,
        terms: Iterable[TermList],
        person_words: frozenset[str],
        included: Mapping[str, Any] | None = None,
    ):
        from spacy.matcher import Matcher, PhraseMatcher

        self.nlp = nlp
        # Per category, a compiled pattern that puts the writer among those a blocked match is
        # about ("the gym uses face scans on members, mine too"): see :meth:`included`.
        self._included = dict(included or {})
        lemmatizer: Any = nlp.get_pipe("lemmatizer")  # spaCy types its pipes as callables
        self.table = lemmatizer.lookups.get_table("lemma_lookup")
        self.person_words = person_words
        # Plain phrases go to PhraseMatchers (a hash look-up per token, whatever their number);
        # only terms with options, optional or exact words need the token Matcher.
        self.matcher = Matcher(nlp.vocab)
        # Token patterns that need a word of their own ("my|his|her voice|face ... to log in"
        # needs one of voice, face ...) run, per term list, only on a text that has one of them:
        # the token Matcher's cost grows with its patterns, and most texts have none of those.
        # Each term list's patterns are split into a few groups by their gate word, so that a
        # text with "store" runs only the patterns that need "store" and their neighbours.
        self._gated_patterns: dict[
            tuple[str, int], tuple[set[str], list[list[dict[str, Any]]]]
        ] = {}
        self.phrases = PhraseMatcher(nlp.vocab, attr="NORM")
        self.blockers = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.words: set[str] = set()
        terms_seen = list(terms)
        for term_list in terms_seen:
            for kind in (STRONG, PERSONAL, "not_after", "not_before"):
                phrases = getattr(term_list, kind)
                if not phrases:
                    continue
                key, where = f"{term_list.category}|{kind}", f"{term_list.category}: {kind}"
                if kind not in (STRONG, PERSONAL):
                    self.blockers.add(key, [nlp.make_doc(p) for p in phrases])
                    continue
                plain = [p for p in phrases if _is_plain(p)]
                patterns = [
                    pattern
                    for p in phrases
                    if not _is_plain(p)
                    for pattern in self._compile(p, where, "NORM")
                ]
                if patterns:
                    self._add_gated(key, patterns)
                if plain:
                    self.phrases.add(key, [self._phrase_doc(p) for p in plain])
        self.gated = [
            (frozenset(gate), _matcher(nlp, key, patterns))
            for (key, _group), (gate, patterns) in self._gated_patterns.items()
        ]
        # Words that are English and so never "corrected": the lemma table's values (its keys are
        # hashes of the inflected forms, looked up directly) and WordNet's lemma index, which
        # spacy-lookups-data ships too ("really" is not a misspelt "rally").
        from spacy.lookups import load_lookups

        index = load_lookups("en", ["lemma_index"]).get_table("lemma_index")
        self._lemmas = frozenset(str(v).lower() for v in self.table.values()) | frozenset(
            w.lower() for words in index.values() for w in words if w.isalpha()
        )
        # One-word terms: what may stand on both sides of an "and" in a coordination.
        self._word_set = frozenset(
            self._norm_of(self.nlp(p)[0])
            for t in terms_seen
            for p in (*t.strong, *t.personal)
            if " " not in p and "|" not in p and not p.startswith(("=", "~", "_"))
        )
        # One-word terms per category: the words that may have an everyday second sense.
        self._weak_words = {
            t.category: frozenset(
                self._norm_of(self.nlp(p.lstrip("~="))[0])
                for p in (*t.strong, *t.personal)
                if " " not in p and "|" not in p
            )
            for t in terms_seen
        }
        self._fuzzy = _deletion_index(w for w in self.words if len(w) >= FUZZY_MIN - 1)

    # --- compiling ----------------------------------------------------------------------------
    def lemma(self, word: str) -> str:
        lower = word.lower()
        return str(self.table.get(lower, lower)).lower()

    def _compile(self, phrase: str, where: str, attr: str = "NORM") -> list[list[dict[str, Any]]]:
        """The Matcher patterns for one phrase (several when an option is several words).

        ``attr`` is NORM (the lemma) for terms; blockers are matched by their word forms
        (LOWER): as lemmas, a blocker such as "is a" would be "be a" and block "I'm a Sikh".
        """
        patterns: list[list[dict[str, Any]]] = [[]]
        for word in phrase.split():
            optional = word.endswith("?") and len(word) > 1
            word = word[:-1] if optional else word
            if word == "_":
                choices: list[list[dict[str, Any]]] = [[{}]]
            elif word == "_*":  # up to eight words, within the sentence's reach
                choices = [[{"IS_SENT_START": False, "OP": "{0,8}"}]]
            elif word in ("=", "~"):  # the sign itself: "Christian = sales lead"
                choices = [[{"ORTH": word}]]
            elif "|" in word and any(o[:1] in ("=", "~") for o in word.split("|")):
                # "~went|~gone" would be read as one strange word and never match.
                raise ValueError(f"{where}: {phrase!r}: an exact word (= or ~) has no options")
            elif word.startswith("="):
                choices = [[{"ORTH": t.text} for t in self.nlp.tokenizer(word[1:])]]
            elif word.startswith("~"):
                choices = [[{"LOWER": t.lower_} for t in self.nlp.tokenizer(word[1:])]]
            else:
                single: list[Any] = []
                several: list[Any] = []
                for option in word.split("|"):
                    # Lemmatised as a text is ("'m" is "be" only after "I"), so the two agree.
                    tokens = self.nlp(option)
                    if attr == "NORM":
                        pieces = [self._norm_of(t) for t in tokens]
                    else:
                        pieces = [t.lower_ for t in tokens]
                    (single if len(pieces) == 1 else several).append(pieces)
                choices = [[{attr: norm} for norm in pieces] for pieces in several]
                if len(single) == 1:
                    choices.append([{attr: single[0][0]}])
                elif single:
                    choices.append([{attr: {"IN": [p[0] for p in single]}}])
            if optional:
                if any(len(choice) != 1 for choice in choices) or len(choices) != 1:
                    raise ValueError(f"{where}: {phrase!r}: only one word can be optional")
                choices = [[{**choices[0][0], "OP": "?"}]]
            patterns = [pattern + choice for pattern in patterns for choice in choices]
        for pattern in patterns:
            if all(t == {} or t.get("OP") in ("?", "{0,8}") for t in pattern):
                raise ValueError(f"{where}: {phrase!r} matches anything")
        return patterns

    def _add_gated(self, key: str, patterns: list[list[dict[str, Any]]]) -> None:
        """Add patterns to the Matcher, or to the gated Matcher of ``key`` when each has a
        word it cannot match without (a lemma that is not a stop word)."""
        from spacy.lang.en.stop_words import STOP_WORDS

        for pattern in patterns:
            anchors = [
                set(values)
                for token in pattern
                if "OP" not in token
                and isinstance(token.get("NORM"), (str, dict))
                and not (values := _values(token["NORM"])) & STOP_WORDS
                and all(v.isalpha() for v in values)
            ]
            if not anchors:
                self.matcher.add(key, [pattern])
                continue
            anchor = min(anchors, key=len)
            group = zlib.crc32(min(anchor).encode()) % GATE_GROUPS
            gate, gated = self._gated_patterns.setdefault((key, group), (set(), []))
            gate |= anchor
            gated.append(pattern)

    def _phrase_doc(self, phrase: str) -> Doc:
        doc = self.nlp(phrase)
        for token in doc:
            token.norm_ = self._norm_of(token)
        return doc

    def _norm_of(self, token: Any) -> str:
        norm = _norm(token, self.table)
        if norm.isalpha():
            self.words.add(norm)
        return norm

    # --- matching -----------------------------------------------------------------------------
    def annotate(self, doc: Doc) -> None:
        """Set each token's ``norm_`` to its lower-case lemma, spelling corrected (English only:
        ``FOREIGN_FUNCTION_WORDS``)."""
        lower = [token.lower_ for token in doc]
        foreign = sum(word in FOREIGN_FUNCTION_WORDS for word in lower)
        english = foreign >= 2 and sum(word in ENGLISH_FUNCTION_WORDS for word in lower)
        correct = foreign < 2 or english >= foreign
        for token in doc:
            norm = _norm(token, self.table)
            if (
                correct
                and len(norm) >= FUZZY_MIN
                and token.is_alpha
                and norm not in self.words
                and not (token.is_title and token.i > 0)
                and not self._is_known(token.lower_)
            ):
                norm = self._correct(norm) or norm
            token.norm_ = norm

    def _is_known(self, word: str) -> bool:
        return word in self.table or word in self._lemmas

    def _correct(self, word: str) -> str | None:
        candidates = set()
        for variant in _variants(word, 2 if len(word) >= FUZZY_TWO else 1):
            candidates |= self._fuzzy.get(variant, set())
        limit = 2 if len(word) >= FUZZY_TWO else 1
        best = sorted(
            (d, c) for c in candidates if (d := _distance(word, c)) <= limit and c[0] == word[0]
        )
        # Two words equally close are both terms ("diabetis": diabetes, diabetic), so either does.
        return best[0][1] if best else None

    def find(self, doc: Doc) -> list[Match]:
        """Every term match in ``doc``, with whether it is about a person."""
        strings = self.nlp.vocab.strings
        blocks: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
        for match_id, start, end in self.blockers(doc) if len(self.blockers) else ():
            category, kind = strings[match_id].split("|")
            # A blocker of stop words only ("up", "through", "of the") is a particle of the
            # everyday sense of a word ("straight *through*", "come *up*"): it blocks terms,
            # not a pattern's finding, which is a construction ("her wife *through* ...").
            weak = all(t.is_stop or t.is_punct for t in doc[start:end])
            blocks[category].append((kind + WEAK_MARK if weak else kind, start, end))
        doc.user_data["tidings_blocks"] = dict(blocks)
        cued = {sent.start: self._about_person(sent) for sent in doc.sents}
        framed = {sent.start: _organisation_frame(list(sent)) for sent in doc.sents}
        # Tokens said of no one: a question about the product, or words taken back.
        generic: set[int] = set()
        for sentence in doc.sents:
            if self._generic_question(sentence):
                generic.update(range(sentence.start, sentence.end))
        retracted = _retracted(doc)
        quoted = _quoted(doc)
        doc.user_data["tidings_context"] = (cued, framed, quoted, generic, retracted)
        found = []
        matches = list(self.matcher(doc)) if len(self.matcher) else []
        norms = {token.norm_ for token in doc}
        for gate, matcher in self.gated:
            if not gate.isdisjoint(norms):
                matches += matcher(doc)
        matches += list(self.phrases(doc)) if len(self.phrases) else []
        for match_id, start, end in _longest(matches):
            category, kind = strings[match_id].split("|")
            outer = _outer(doc, start, end, self._word_set)
            # A stop-word blocker shows the everyday sense of a weak word ("straight *from*
            # the airport", "the DNA *of* this bug"): it applies when the match ends in one of
            # the category's one-word terms, not to "we're both lads *from* Leeds".
            weak_word = doc[end - 1].norm_ in self._weak_words.get(category, ())
            if any(
                _blocks(b, *outer)
                for b in blocks.get(category, ())
                if weak_word or not b[0].endswith(WEAK_MARK)
            ) and not self.included(doc, category):
                continue
            # A word in quotes that names a thing is mentioned, not said of anyone: "a field
            # called 'criminal convictions'", "the 'sick day' template" (but "I did the 'face
            # match'" is said).
            if (
                all(i in quoted for i in range(start, end))
                and _names_a_thing(doc, start, end, quoted)
                and not self.included(doc, category)
            ):
                continue
            # A capitalised term inside a name of a business or a title: "Halal Bros",
            # "our Kosher Kitchen cookbook" (not "Labour Party" or "Muslim Pakistani", whose
            # next word is a term of its own).
            if kind == PERSONAL and _in_a_name(doc, start, end, self.words):
                continue
            sent = doc[start].sent.start
            # "Can the form ask about disability?", "What if a customer types their religion
            # in the notes?": a question about the product names the category of no one; so
            # do words taken back ("I'm off to Mass... just kidding").
            # A question about the product is about the writer's own data when the text puts
            # them among those it was taken from ("Do you keep the venue's face scans? I was
            # one of the attendees").
            if start in retracted or (start in generic and not self.included(doc, category)):
                continue
            # In "we're a charity for ...", "we sell ...", even a strong term is the
            # organisation's subject; it counts only with a person in the sentence.
            # A text that puts the writer among those it was done to ("a camera that learns
            # residents' faces, ours included") is about a person, whatever the sentence says.
            about = (
                (kind == STRONG and not framed[sent]) or cued[sent] or self.included(doc, category)
            )
            found.append(Match(category, start, end, about))
        return found

    def included(self, doc: Doc, category: str) -> bool:
        """Whether the text puts the writer among those a match about a thing was done to.

        "The attendance machine uses face recognition" is about a product; "..., and I'm one
        of the staff it scans" or "mine too" makes it a capture of the writer's own data.  Only
        the categories whose rules list such cues (``included`` in their file) have them.
        """
        pattern = self._included.get(category)
        if pattern is None:
            return False
        # Asked once per text and category: every match of the category may ask.
        cache = doc.user_data.setdefault("tidings_included", {})
        if category not in cache:
            cache[category] = bool(pattern.search(doc.text))
        return bool(cache[category])

    def blocked(self, doc: Doc, category: str, start_char: int, end_char: int) -> bool:
        """Whether a finding at these characters (a term's or a pattern's) is about a thing.

        :meth:`find` must have run on ``doc``.
        """
        span = doc.char_span(start_char, end_char, alignment_mode="expand")
        if span is None or self.included(doc, category):
            return False
        blocks = doc.user_data.get("tidings_blocks", {}).get(category, ())
        outer = _outer(doc, span.start, span.end, self._word_set)
        # "Client is a Hindu priest": a word right before a finding that opens with "is" is
        # the subject the finding is said of, not a thing it is about.
        subject = doc[span.start].lower_ in _COPULA
        return any(
            _blocks(b, *outer)
            for b in blocks
            if not b[0].endswith(WEAK_MARK)
            and not (subject and b[0].startswith("not_after") and b[2] == span.start)
        )

    def discounted(self, doc: Doc, category: str, start_char: int, end_char: int) -> bool:
        """Whether a pattern's finding here is a quoted name of a thing, or an organisation's
        subject in a sentence about no person (the rules :meth:`find` applies to terms), or
        said in a question about the product or taken back."""
        span = doc.char_span(start_char, end_char, alignment_mode="expand")
        if span is None or "tidings_context" not in doc.user_data:
            return False
        cued, framed, quoted, generic, retracted = doc.user_data["tidings_context"]
        if span.start in retracted:
            return True
        if self.included(doc, category):
            return False
        if span.start in generic:
            return True
        if all(i in quoted for i in range(span.start, span.end)) and _names_a_thing(
            doc, span.start, span.end, quoted
        ):
            return True
        sent = doc[span.start].sent.start
        return framed[sent] and not cued[sent]

    def _generic_question(self, sent: Span) -> bool:
        """A question about the product or a hypothetical someone, about no one in particular:
        it ends with "?", and has no specific person in it (I, she, my son, a name) — only
        "you", "we", "they" or "a customer"."""
        words = [t for t in sent if not t.is_punct and not t.is_space]
        last = [t for t in sent if not t.is_space]
        if not words or not last or last[-1].text != "?":
            return False
        for token in words:
            if token.lower_ in _SPECIFIC or (
                token.is_title
                and token.is_alpha
                and token.i > sent.start
                and not token.is_stop
                and not self._is_known(token.lower_)
            ):
                return False
        return any(t.lower_ in _GENERIC_CUES for t in words)

    def _about_person(self, sent: Span) -> bool:
        words = [t for t in sent if not t.is_punct and not t.is_space]
        # "We" is a person in "we're both Sikh" but an organisation in "we're a cancer charity"
        # or "we sell hearing aids": in such a sentence only other person words count.
        organisation = _organisation_frame(words)
        # "I sell rosaries on Etsy", "I make hearing-aid covers": a sole trader speaking of
        # their stock, so "I" is the business there, as "we" is in "we sell hearing aids".
        trader = _trade_frame(words)
        for token in words:
            # The word as written: "volunteer" is someone, "volunteers" a group.
            word = token.lower_
            if (
                word in self.person_words
                and not (organisation and word in _WE)
                and not (trader and word == "i")
            ):
                return True
            # A name: capitalised and not a word the tables know ("Kevin has sleep apnoea").
            if (
                token.is_title
                and token.is_alpha
                and not token.is_stop
                and not self._is_known(token.lower_)
                and token.norm_ not in self.words
            ):
                return True
        # A sentence with its subject left out is the writer's: "Dealing with a cancer diagnosis
        # at the moment", "Been in hospital since March", "Off work with a slipped disc".
        # Not a heading that opens with such a word: "Lost property: one hoodie", "Back office:".
        heading = any(t.text == ":" for t in list(sent)[1:3])
        if words and words[0].lower_ in _ELLIPTICAL and not organisation and not heading:
            return True
        # A note's "Has an EHCP for ASD" (not a question: "Has anyone ...?", "Has the form ...").
        if (
            len(words) > 1
            and words[0].lower_ in ("has", "have")
            and words[1].lower_ not in _NOT_A_SUBJECTLESS_HAS
            and not organisation
            and sent[-1].text != "?"
        ):
            return True
        # A note about the contact: "diabetic, lunch at 12", "Labour member", "on probation".
        if len(words) <= FRAGMENT_WORDS and not any(t.norm_ in _FINITE for t in words):
            return True
        # A form's answer after its field label: "Medical needs: epipen in bag (nuts), inhaler
        # before PE" is a note about the contact as the answer alone would be.
        answer = _form_answer(sent)
        if (
            answer
            and len(answer) <= FRAGMENT_WORDS
            and not any(t.norm_ in _FINITE or t.lower_ in _WE for t in answer)
        ):
            return True
        # A note that opens with a word about the contact, then says more: "Muslim, doesn't
        # shake hands", "Vegan; no leather gifts" (not a list: "Catholic, Jewish and ...").
        opening = [t for t in sent if not t.is_space][:5]
        return (
            len(opening) >= 3
            and opening[0].is_alpha
            and opening[1].text in _NOTE_BREAK
            and not any(t.lower_ in _COORDINATION for t in opening[2:5])
            and not any(t.lower_ in _WE for t in sent)
        )


_WE = frozenset({"we", "us", "our", "ours", "ourselves"})
# How many words a form's field label may have: "Medical needs:", "Return to work interview:".
_LABEL_WORDS = 4


def _form_answer(sent: Span) -> list[Token]:
    """The words after a form field's label at the start of ``sent`` ("Medical needs: epipen in
    bag" -> "epipen in bag"), or nothing when the sentence does not open with a label."""
    tokens = [t for t in sent if not t.is_space]
    for k, token in enumerate(tokens[: _LABEL_WORDS + 1]):
        if token.text == ":":
            if k == 0 or not all(t.is_alpha for t in tokens[:k]):
                return []
            return [t for t in tokens[k + 1 :] if not t.is_punct]
        if not token.is_alpha:
            return []
    return []


# Who makes a question about someone in particular: "Is my son's asthma a problem?"
_SPECIFIC = frozenset(
    {
        *("i", "me", "my", "mine", "myself", "im", "i'm", "ive", "he", "him", "his", "himself"),
        *("she", "her", "hers", "herself", "husband", "wife", "partner", "boyfriend"),
        *("girlfriend", "son", "daughter", "mum", "mom", "dad", "mother", "father", "brother"),
        *("sister", "colleague", "boss", "friend", "fiance", "fiancee", "grandmother", "uncle"),
        *("aunt", "cousin", "grandfather", "child", "kid", "baby", "nan", "gran", "grandma"),
    }
)
# What makes a question about the product or a hypothetical: "your form", "what if a ...".
_GENERIC_CUES = frozenset(
    {
        *("you", "your", "if", "whether", "form", "field", "tool", "app", "template", "feature"),
        *("prompt", "setting", "settings", "option", "options", "button", "staff", "tablets"),
    }
)
_NOTE_BREAK = frozenset({",", ";", ":", "\u2014", "\u2013", "-"})
# First words of a sentence whose subject, the writer, is left out.
_ELLIPTICAL = frozenset(
    {
        *("been", "had", "got", "having", "dealing", "living", "recovering", "struggling"),
        *("suffering", "diagnosed", "off", "back", "just", "currently", "recently", "still"),
        *("newly", "fasting", "attends", "out", "in", "on", "sorry", "proud", "born", "raised"),
        *("campaigns", "campaigned", "voted", "votes", "marched", "converted", "prays", "wears"),
        *("keeps", "observes", "practises", "follows", "supports", "served", "spent", "came"),
        # chat and forum shorthand: "Went flying down the stairs", "cant make it tonight"
        *("went", "fell", "broke", "cant", "can't", "couldnt", "couldn't", "wont", "won't"),
        *("didnt", "didn't", "feeling", "waiting", "missed", "booked", "stuck", "signed"),
        *("home", "finally", "slowly", "handed", "delivered"),
        # a staff note's report of what the contact said: "Disclosed type 1 diabetes",
        # "Declared a caution from 2019"
        *("disclosed", "declared"),
        # a chat's opener: "sry cant do thurs got physio"
        *("sry", "soz"),
        # a staff note's report of what the contact did or takes: "Lost two stone on Ozempic",
        # "Takes methotrexate on Mondays"
        *("lost", "takes"),
    }
)
_BE = frozenset({"'re", "are", "re", "is", "'s", "am", "'m", "were", "was"})
# What comes after a question's "Has"/"Have" ("Has anyone tried ...", "Have you got ...").
_NOT_A_SUBJECTLESS_HAS = frozenset(
    {
        *("anyone", "anybody", "someone", "somebody", "everyone", "everybody", "nobody", "you"),
        *("the", "your", "this", "that", "it", "they", "we", "he", "she", "there", "any", "my"),
        *("our", "their", "his", "her", "these", "those", "each", "every"),
    }
)
# What an organisation says of itself: "we are a ...", "we sell ...", "our clients ...".
_ORG_VERBS = frozenset(
    {
        *("sell", "make", "run", "provide", "offer", "supply", "stock", "install", "build"),
        *("host", "organise", "organize", "print", "publish", "sponsor", "manufacture"),
        *("import", "export", "represent", "fund", "cater", "design", "produce", "deliver"),
        *("send", "email", "mail", "publish", "broadcast", "teach", "train", "advise"),
        *("serve", "specialise", "specialize", "lobby", "operate", "retail", "distribute"),
        *("wholesale", "hire", "rent", "ship", "market", "advertise"),
    }
)
_ORG_NOUNS = frozenset(
    {
        *("client", "clients", "customers", "company", "charity", "organisation", "firm"),
        *("business", "agency", "practice", "clinic", "shop", "brand", "product", "products"),
        *("service", "services", "venue", "school", "council", "trust", "foundation", "team"),
        *("lab", "laboratory", "start-up", "startup", "supplier", "retailer", "manufacturer"),
        *("publisher", "magazine", "helpline", "association", "society", "network", "tank"),
        *("studio", "consultancy", "provider", "platform", "app", "website", "site", "group"),
        *("centre", "center", "hospital", "pharmacy", "chain", "directory", "organization"),
        *("deli", "café", "cafe", "restaurant", "bakery", "bar", "pub", "gym", "salon", "club"),
        *("distillery", "brewery", "winery", "farm", "academy", "hotel", "factory", "workshop"),
        *("temple", "mosque", "church", "synagogue", "gurdwara", "mandir", "chapel", "parish"),
        *("party", "campaign", "branch", "union", "co-op", "cooperative", "collective", "ngo"),
        *("nonprofit", "non-profit", "institute", "university", "college", "museum", "library"),
        *("hospice", "surgery", "department", "store", "boutique", "franchise", "publisher"),
        *("newspaper", "podcast", "choir", "theatre", "festival", "federation", "committee"),
        *("bank", "insurer", "broker", "chambers", "partnership", "cafe", "kitchen", "label"),
        *("wholesaler", "distributor", "importer", "exporter", "reseller", "dealer", "stockist"),
        *("merchant", "vendor", "maker", "seller", "outfitter", "printer", "wholesalers"),
    }
)


# What a sole trader does with their stock: "I sell rosaries", "I make kosher cakes to order".
_TRADE_VERBS = frozenset(
    {
        *("sell", "make", "stock", "supply", "import", "export", "manufacture", "distribute"),
        *("wholesale", "retail", "print", "cater", "bake", "ship", "resell", "design", "knit"),
    }
)


_NOT_TRADE = frozenset({"'m", "am", "'ve", "have", "had", "was"})


def _trade_frame(words: list[Any]) -> bool:
    """Whether "I" in this sentence is a sole trader speaking of their stock."""
    for i, token in enumerate(words[:-1]):
        if token.lower_ != "i":
            continue
        following = [t for t in words[i + 1 : i + 3] if not t.is_punct]
        # "I sell ...", "I also sell ...", "I handmake ..." (not "I'm", "I've", "I had")
        verbs = [t.norm_ for t in following[:2] if t.norm_ in _TRADE_VERBS]
        if verbs and following and following[0].lower_ not in _NOT_TRADE:
            return True
    return False


def _organisation_frame(words: list[Any]) -> bool:
    """Whether "we" in this sentence is an organisation speaking of itself."""
    for i, token in enumerate(words[:-1]):
        if token.lower_ not in _WE:
            continue
        following = [t for t in words[i + 1 : i + 8] if not t.is_punct]
        norms = ["be" if t.lower_ in _BE else t.norm_ for t in following]
        # "we're a small cancer charity", "we are an agency", "we sell ...", "our clients ..."
        if norms[:2] in (["be", "a"], ["be", "an"], ["be", "the"]) and any(
            t.lower_ in _ORG_NOUNS for t in following[2:7]
        ):
            return True
        # "we act as a DNA-kit reseller", "we work as an agency"
        if (
            len(norms) > 2
            and norms[0] in ("act", "work", "operate", "trade")
            and norms[1] == "as"
            and norms[2] in ("a", "an", "the")
            and any(t.lower_ in _ORG_NOUNS for t in following[3:8])
        ):
            return True
        if norms and norms[0] in _ORG_VERBS:
            return True
        # "we're catering the open day", "we are hosting the fair"
        if (
            norms[:1] == ["be"]
            and len(norms) > 1
            and (norms[1] in _ORG_VERBS or following[1].lemma_.lower() in _ORG_VERBS)
        ):
            return True
        # "our clients", "our recruitment agency", "our local cancer charity" (not "our client,
        # who was ...": "who" makes the client a person)
        if token.lower_ == "our" and any(
            t.lower_ in _ORG_NOUNS and not _who_follows(words, t) for t in following[:3]
        ):
            return True
    return False


def _who_follows(words: list[Any], noun: Any) -> bool:
    """Whether "who" (after a comma at most) follows "client": then it names a person."""
    if noun.lower_ != "client":  # "our clients who ..." are still a group
        return False
    after = [t for t in words[noun.i - words[0].i + 1 :][:2] if t.lower_ != ","]
    return bool(after) and after[0].lower_ in ("who", "whose", "whom")


_MENTION_AFTER = frozenset(
    {
        *("slang", "term", "name", "heading", "subject", "title", "product", "range"),
        *("greeting", "greetings", "image", "banner", "message", "card", "theme"),
        *("template", "templates", "field", "column", "tag", "label", "feature", "button"),
        *("segment", "list", "font", "typo", "word", "widget", "option", "setting", "page"),
        *("email", "auto-reply", "category", "file", "folder", "menu", "link", "day"),
        *("headline", "headlines", "slogan", "tagline", "caption", "copy", "phrase", "text"),
        *("wording", "hashtag", "campaign", "promo", "post", "preheader", "line", "sign"),
        *("series", "recipe", "book", "club", "podcast", "show", "film", "album", "song"),
        *("sale", "offer", "deal", "discount", "collection", "sticker", "icon"),
    }
)
_MENTION_BEFORE = frozenset({"called", "named", "labelled", "labeled", "titled", "word", "for"})


def _names_a_thing(doc: Doc, start: int, end: int, quoted: set[int]) -> bool:
    """Whether quoted words are a name: "the 'X' template", "a field called 'X'"."""
    while end < len(doc) and (end in quoted or doc[end].is_quote):
        end += 1
    while start > 0 and (start - 1 in quoted or doc[start - 1].is_quote):
        start -= 1
    after = doc[end].lower_ if end < len(doc) else ""
    before = doc[start - 1].lower_ if start > 0 else ""
    return after in _MENTION_AFTER or before in _MENTION_BEFORE or after in ("", ".", "?")


def _quoted(doc: Doc) -> set[int]:
    """Indices of the tokens between a pair of quotation marks in the same sentence."""
    inside: set[int] = set()
    for sent in doc.sents:
        opened: int | None = None
        for token in sent:
            if token.is_quote and token.text not in ("'s", "'m", "'re", "'ve", "'d", "'ll"):
                if opened is None:
                    opened = token.i
                else:
                    inside.update(range(opened + 1, token.i))
                    opened = None
    return inside


# Verbs that make a short line a sentence about something ("we sell", "is a") rather than a note.
_FINITE = frozenset(
    {
        *("sell", "make", "run", "offer", "provide", "build", "supply", "stock", "install"),
        *("do", "be", "will", "would", "can", "could", "should"),
    }
)


_JOKES = (("just", "kidding"), ("just", "joking"), ("only", "joking"), ("kidding",), ("jk",))
_NOES = frozenset({"no", "nope", "nah", "not"})


def _retracted(doc: Doc) -> set[int]:
    """Tokens of a clause that the words after it take back: "I was arrested... just
    kidding", "We're a Muslim dating site? No, we're a general one"."""
    taken: set[int] = set()
    tokens = [t for t in doc if not t.is_space]
    for k, token in enumerate(tokens):
        if not (token.is_punct and k + 1 < len(tokens)):
            continue
        following = [t.lower_ for t in tokens[k + 1 : k + 4]]
        joke = any(tuple(following[: len(j)]) == j for j in _JOKES)
        denial = (
            token.text == "?"
            and len(following) >= 2
            and following[0] in _NOES
            and following[1] in (",", "\u2014", "\u2013", "-", ".", "!")
        )
        if not (joke or denial):
            continue
        # Back to the start of the clause: a sentence start, a semicolon or a line break.
        first = token.i
        while (
            first > 0
            and doc[first - 1].text not in (";", "\n")
            and "\n" not in doc[first - 1].text
            and not doc[first].is_sent_start
        ):
            first -= 1
        taken.update(range(first, token.i))
    return taken


def _values(norm: str | dict[str, Any]) -> set[str]:
    return {norm} if isinstance(norm, str) else set(norm.get("IN", ()))


def _matcher(nlp: Language, key: str, patterns: list[list[dict[str, Any]]]) -> Any:
    from spacy.matcher import Matcher

    matcher = Matcher(nlp.vocab)
    matcher.add(key, patterns)
    return matcher


def _in_a_name(doc: Doc, start: int, end: int, words: set[str]) -> bool:
    """Whether capitalised words at ``start:end`` open a proper name with the next word."""
    if end >= len(doc) or not all(t.is_title for t in doc[start:end]):
        return False
    if doc[end - 1].lower_ in _TITLES:  # "Rabbi Cohen" is a person
        return False
    after = doc[end]
    return (
        after.is_title
        and after.is_alpha
        and not after.is_sent_start
        and after.norm_ not in words
        and after.lower_ not in _NOT_NAME_PARTS
    )


# Terms that stand before a person's name as their title.
_TITLES = frozenset(
    {
        *("rabbi", "imam", "reverend", "rev", "pastor", "father", "vicar", "sheikh", "swami"),
        *("guru", "bishop", "cardinal", "canon", "deacon", "sister", "brother", "elder"),
        *("councillor", "cllr", "comrade", "mp", "senator", "chaplain", "bhai", "granthi"),
    }
)
# Capitalised words that follow a term without making a name of it.
_NOT_NAME_PARTS = frozenset({"i", "party", "member", "members", "woman", "man", "british"})


def _is_plain(phrase: str) -> bool:
    """A phrase of ordinary words: no options, optional words, wildcards or exact forms."""
    return not any(c in phrase for c in "|?_=~*")


def _longest(matches: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Of overlapping matches of one term list, the longest ("waiting list for", not also
    "list for"): one finding per stretch of text and list."""
    kept: list[tuple[int, int, int]] = []
    taken: dict[int, list[tuple[int, int]]] = {}
    for match_id, start, end in sorted(matches, key=lambda m: (m[1] - m[2], m[1])):
        spans = taken.setdefault(match_id, [])
        if all(end <= s or start >= e for s, e in spans):
            spans.append((start, end))
            kept.append((match_id, start, end))
    return sorted(kept, key=lambda m: (m[1], m[2]))


def _outer(
    doc: Doc, start: int, end: int, words: frozenset[str] = frozenset()
) -> tuple[int, int, int]:
    """The term with the quotes and brackets around it ("the 'strike' button" is a button),
    and how far a blocker after it may start: past a coordination of two such words ("gay and
    lesbian film festival", "Hajj and Umrah packages"), but not past "and I run ..."."""
    while start > 0 and (doc[start - 1].is_quote or doc[start - 1].is_bracket):
        start -= 1
    while end < len(doc) and (doc[end].is_quote or doc[end].is_bracket):
        end += 1
    # Back over a list ("covers gender, ethnicity and disability"): a blocker before its first
    # item blocks every item.
    back = start
    if start > 0 and (doc[start - 1].lower_ in _COORDINATION or doc[start - 1].text == ","):
        i, commas = start - 1, doc[start - 1].text == ","
        while i > 0 and start - i <= COORDINATED_WORDS + 2:
            token = doc[i - 1]
            if (
                token.text == ","
                or token.lower_ in _COORDINATION
                or (token.is_alpha and not token.is_stop)
            ):
                commas = commas or token.text == ","
                i -= 1
            else:
                break
        back = i if commas else start  # a list has commas: "X and Y" alone is not one
    reach = end + BLOCK_AFTER
    if (
        end + 1 < len(doc)
        and doc[end].lower_ in _COORDINATION
        and not doc[end + 1].is_stop
        and (doc[end + 1].norm_ in words or doc[end + 1].is_title)
    ):
        for i in range(end + 1, min(len(doc), end + 1 + COORDINATED_WORDS)):
            if doc[i].is_punct and doc[i].text not in "-'":
                break
            reach = i
    return start if back == start else back, end, reach


def _blocks(block: tuple[str, int, int], start: int, end: int, reach: int) -> bool:
    kind, b_start, b_end = block
    if kind.startswith("not_after"):
        return b_start < start and start - b_end <= BLOCK_BEFORE and b_end <= end
    return b_end > end and b_start >= start and b_start <= reach


def _norm(token: Any, table: Any) -> str:
    lemma: str = token.lemma_
    if not lemma or lemma == token.text:
        lower = token.lower_
        return str(table.get(lower, lower)).lower()
    return lemma.lower()


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _variants(word: str, edits: int) -> set[str]:
    """The word and every string made from it by deleting up to ``edits`` letters."""
    variants = {word}
    for _ in range(edits):
        variants |= {d for v in variants for d in _deletions(v)}
    return variants


def _deletion_index(words: Iterable[str]) -> dict[str, set[str]]:
    """Symmetric-deletion index: two words within n edits share a variant with n deletions."""
    index: dict[str, set[str]] = defaultdict(set)
    for word in words:
        for variant in _variants(word, 2 if len(word) >= FUZZY_TWO - 1 else 1):
            index[variant].add(word)
    return dict(index)


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein with adjacent transpositions)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current.append(value)
        previous2, previous = previous, current
    return previous[-1]


def build_nlp() -> Language:
    """spaCy's rule-based English: tokeniser, lookup lemmatiser (spacy-lookups-data), sentences.

    No trained model and nothing downloaded: the lemma tables are files of an installed package.
    """
    import spacy

    # spaCy gives its logger a handler of its own, which printed its lines a second time, as
    # plain text, between the JSON lines of TIDINGS_LOG_FORMAT=json (a log shipper's parse
    # error): its lines go through the installation's handlers like everyone else's.
    for handler in list(logging.getLogger("spacy").handlers):
        if type(handler) is logging.StreamHandler:
            logging.getLogger("spacy").removeHandler(handler)
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("sentencizer")
    nlp.initialize()
    return nlp
