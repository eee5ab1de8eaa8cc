"""Same-sex couples that a text shows only by putting two facts together.

"My husband and I" says nothing about anyone's orientation; "my boyfriend Dave is the other
director; I'm Tom" does: the writer is a man (Tom) and so is his partner.  Neither half matches a
term or a pattern, so :mod:`tidings.policy.screening` asks this module, for the category
``sex_life_or_orientation``, where a text pairs

- someone — the writer ("my husband", "I'm Tom"), the contact a CRM note is about ("Contact's
  husband ...; the contact is Steve", "Has a wife named Sarah; contact is Emma"), or a named
  person ("Mark's husband", "his partner Steve") —
- with a partner of the same sex: the partner word says it (husband, wife, boyfriend ...) or the
  partner's name does ("my partner Dave").

Whose sex a name is comes from ``gender-guesser``'s dictionary of first names (Jörg Michael's
list of about 40,000 names in many languages): only names it calls plainly male or female count,
never the ones it marks "mostly", unisex or unknown ("Jo", "Sam"); a title ("Mr", "Ms") says it
too.  A guess can be wrong, and then a sentence is removed that need not have been: the cost the
policy accepts for not keeping the fact when it is there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import regex

MALE, FEMALE = "male", "female"

_FLAGS = regex.VERBOSE | regex.MULTILINE
_TITLED = r"(?: Mr | Mrs | Ms | Miss | Mx ) \.? \s+ [A-Z][a-z]+"
# A first name (not a possessive: "Sarah's husband" is Sarah's, not the writer's name).
_NAME = rf"(?: {_TITLED} | [A-Z][a-z]{{1,14}} (?! ['’]s \b | \w ) )"
_OWNER = rf"(?: {_TITLED} | [A-Z][a-z]{{1,14}} )"
_PARTNER = r"""(?i: (?: ex- | ex \s+ | former \s+ )? )
    (?i: husband | hubby | boyfriend | fianc[eé] | wife | missus | girlfriend | fianc[eé]e
    | partner | spouse | other \s+ half )"""
# "my husband, Mark", "his partner (Steve)", "my partner is called Sam"
_NAMED = rf"""(?: \s* [,(:]? \s*
    (?i: is \s+ (?: called \s+ )? | 's \s+ called \s+ | called \s+ | named \s+ )?
    (?P<name> {_NAME} ) )?"""
_WORD_SEX = {
    "husband": MALE,
    "hubby": MALE,
    "boyfriend": MALE,
    "fiance": MALE,
    "fiancé": MALE,
    "wife": FEMALE,
    "missus": FEMALE,
    "girlfriend": FEMALE,
    "fiancee": FEMALE,
    "fiancée": FEMALE,
}
_TITLE_SEX = {"mr": MALE, "mrs": FEMALE, "ms": FEMALE, "miss": FEMALE}

# The writer's partner: "my husband", "my boyfriend Dave", "my partner, Steve", "Partner's
# name: David", "I'm engaged to Priya".  Not a business partner or a partner in crime.
_MY_PARTNER = regex.compile(
    rf"""\b (?i: my | our ) \s+ (?: (?i: \w+ ) \s+ )?? (?<! (?i: business | business \s+ ) )
    (?P<word> {_PARTNER} ) \b
    (?! \s+ (?i: in \s+ crime | organisations? | companies | firms? ) ) {_NAMED}
    | \b (?i: partner's \s+ name | spouse's \s+ name ) \s* (?: : | \s+ is ) \s*
      (?P<name> {_NAME} )
    | \b (?i: I'm | I \s+ am | Im | I've \s+ been | I \s+ got ) \s+
      (?i: (?: happily | newly | now | recently ) \s+ )?
      (?i: engaged | married ) \s+ (?i: to ) \s+ (?P<name> {_NAME} )""",
    _FLAGS,
)
# The writer's own name: "I'm Tom", "my name is Sarah", "This is Jake", "Tom here", a sign-off.
_MY_NAME = regex.compile(
    rf"""\b (?i: I'm | I \s+ am | Im | my \s+ name \s+ is | my \s+ name's | this \s+ is | it's )
      \s+ (?P<name> {_NAME} ) \b
    | (?i: \b my \s+ name \s* : ) \s* (?P<name> {_NAME} )
    | \b (?-i: I ) \s* \( (?P<name> {_NAME} )
    | ^ \s* (?P<name> {_NAME} ) \s+ (?i: here ) \b
    | (?: ^ | [.!]\s+ ) (?i: thanks | thank \s+ you | cheers | regards | best | love | thx | ta )
      [,!]? \s+ (?P<name> {_NAME} ) \s* [.!]? \s* \Z
    | (?: —|–|\s-) \s* (?P<name> {_NAME} ) \s* \Z""",
    _FLAGS,
)
# The contact a note is about: "the contact is Steve", "Contact: Emma", and their partner:
# "Contact's husband", "Partner: Robert (husband)", "Has a wife named Sarah" (a note whose
# subject is left out).
_CONTACT_NAME = regex.compile(
    rf"""\b (?i: (?: the \s+ )? contact (?: \s+ is | \s* : ) | contact \s+ name \s* : ) \s*
    (?P<name> {_NAME} )""",
    _FLAGS,
)
_CONTACT_PARTNER = regex.compile(
    rf"""\b (?i: contact's | the \s+ contact's ) \s+ (?: (?i: \w+ ) \s+ )?? (?P<word> {_PARTNER} )
      \b {_NAMED}
    | (?: ^ | [.;!?] \s+ ) (?i: partner | spouse | husband | wife ) \s* : \s* (?P<name> {_NAME} )
      (?: \s* \( (?P<word> {_PARTNER} ) \) )?
    | (?: ^ | [.;!?] \s+ )
      (?P<word> (?i: husband | wife | boyfriend | girlfriend | partner | fianc[eé]e? ) )
      \s+ (?P<name> {_NAME} )
    | (?: ^ | [.;!?] \s+ ) (?i: has | have \s+ got | married \s+ to ) \s+ (?i: a \s+ )?
      (?P<word> {_PARTNER} ) \b
      (?: \s* ,? \s* (?i: called \s+ | named \s+ )? (?P<name> {_NAME} ) )?""",
    _FLAGS,
)
# A named person's or a pronoun's partner: "Mark's husband Ahmed", "his partner Steve",
# "Kate and her partner Lucy".
_THEIR_PARTNER = regex.compile(
    rf"""(?: \b (?P<owner> {_OWNER} ) ['’]s | \b (?P<pronoun> (?i: his | her ) )
      | \b (?P<owner> {_NAME} ) \s+ (?i: and | with ) \s+ (?i: his | her ) )
    \s+ (?: (?i: \w+ ) \s+ )?? (?<! (?i: business \s+ ) ) (?P<word> {_PARTNER} ) \b {_NAMED}""",
    _FLAGS,
)
# Two named people married or together: "Kevin is married to Brian", "Anna and Beth got married".
_PAIR = regex.compile(
    rf"""\b (?P<owner> {_NAME} ) \s+
      (?i: (?: is | was | 's | got | has \s+ been ) \s+ (?: married | engaged ) \s+ to
        | married | marries | is \s+ marrying | dates | is \s+ dating | is \s+ seeing
        | lives \s+ with \s+ (?: his | her ) \s+ partner )
      \s+ (?P<name> {_NAME} )
    | \b (?P<owner> {_NAME} ) \s+ (?i: and | & ) \s+ (?P<name> {_NAME} ) \s+
      (?i: (?: are | were | got | have \s+ been | 've \s+ been ) \s+
        (?: married | engaged | a \s+ couple | together ) ) \b""",
    _FLAGS,
)
_CUE = regex.compile(rf"\b{_PARTNER}|married|engaged|dating|seeing|together", _FLAGS)


@dataclass(frozen=True)
class _Fact:
    sex: str
    start: int
    end: int


class CoupleFinder:
    """Finds the stretches of a text that together show a same-sex couple."""

    def __init__(self) -> None:
        self._detector: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the names dictionary (a few tenths of a second), once."""
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    import gender_guesser.detector  # type: ignore[import-untyped]

                    self._detector = gender_guesser.detector.Detector(case_sensitive=False)

    def name_sex(self, name: str) -> str | None:
        words = name.replace(".", " ").split()
        if len(words) > 1:
            return _TITLE_SEX.get(words[0].lower())
        self.load()
        sex = self._detector.get_gender(words[0])
        return sex if sex in (MALE, FEMALE) else None

    def _partner(self, match: regex.Match[str]) -> _Fact | None:
        word = " ".join(match["word"].lower().split()) if match["word"] else ""
        word = regex.sub(r"^(?:ex-|ex |former )", "", word)
        sex = _WORD_SEX.get(word)
        if sex is None and match["name"]:
            sex = self.name_sex(match["name"])
        return _Fact(sex, match.start(), match.end()) if sex else None

    def _named(self, match: regex.Match[str]) -> _Fact | None:
        sex = self.name_sex(match["name"])
        return _Fact(sex, match.start(), match.end()) if sex else None

    def find(self, text: str) -> list[tuple[int, int]]:
        """Character spans (the partner's mention and what shows the other's sex), or []."""
        if not _CUE.search(text):
            return []
        spans: list[tuple[int, int]] = []
        for partner_rx, name_rx in ((_MY_PARTNER, _MY_NAME), (_CONTACT_PARTNER, _CONTACT_NAME)):
            partners = [f for m in partner_rx.finditer(text) if (f := self._partner(m))]
            if not partners:
                continue
            names = [f for m in name_rx.finditer(text) if (f := self._named(m))]
            for partner in partners:
                for own in names:
                    # The partner's own name ("my husband, Mark") is not the writer's.
                    if own.sex == partner.sex and not (
                        own.start < partner.end and partner.start < own.end
                    ):
                        spans += [(partner.start, partner.end), (own.start, own.end)]
        for match in _THEIR_PARTNER.finditer(text):
            theirs = self._partner(match)
            if theirs is None:
                continue
            owner: str | None
            if match["pronoun"]:
                owner = MALE if match["pronoun"].lower() == "his" else FEMALE
                # "his husband" the rules' patterns find; here the partner is known by name.
                if match["word"].lower() not in ("partner", "spouse", "other half"):
                    continue
            else:
                owner = self.name_sex(match["owner"])
            if owner and owner == theirs.sex:
                spans.append((match.start(), match.end()))
        for match in _PAIR.finditer(text):
            first, other = self.name_sex(match["owner"]), self.name_sex(match["name"])
            if first and first == other:
                spans.append((match.start(), match.end()))
        return sorted(set(spans))
