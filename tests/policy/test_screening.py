"""Sensitive-data screening: special-category content in free text is redacted or refused, per
the policy, and ordinary business text that merely looks close is left alone."""

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pytest

from tidings.policy import Policy, load_policy
from tidings.policy.commands import EXAMPLE_POLICY
from tidings.policy.schema import SENSITIVE_TEXT, Sensitive
from tidings.policy.screening import (
    CATEGORIES,
    CHUNK_CHARS,
    RULES_DIR,
    Finding,
    Screened,
    Screener,
    SensitiveDataRefused,
    find_sensitive,
    screen_text,
)

# One sentence per category, and words from it that must never survive screening.
EXAMPLES = {
    "health": ("I'm off work with depression at the moment.", ["depression"]),
    "religious_or_philosophical_beliefs": (
        "As a practising Muslim I can't attend on Friday.",
        ["Muslim", "practising"],
    ),
    "political_opinions": ("I vote Labour and always have.", ["Labour", "vote"]),
    "racial_or_ethnic_origin": ("As a Black British woman I rarely see myself in ads.", ["Black"]),
    "sex_life_or_orientation": ("I'm a bisexual man.", ["bisexual"]),
    "trade_union_membership": ("I'm a Unite union rep at our site.", ["Unite", "rep", "site"]),
    "genetic": ("My BRCA1 test came back positive.", ["BRCA1", "positive"]),
    "biometric": ("Please delete the facial recognition template of me.", ["facial"]),
    "criminal_history": ("I have a conviction for fraud from 2012.", ["fraud", "2012"]),
}

HARD_NEGATIVES = [
    "We've seen healthy growth in sign-ups this quarter.",
    "The union of our two companies completes on 1 April.",
    "European Union regulations require a lawful basis for every email.",
    "The party starts at 6 in the main hall.",
    "Our health-check endpoint returns 503 when the queue is backed up.",
    "I have a strong conviction that this approach will work.",
    "Labour costs went up 8% this year.",
    "There's a race condition in the scheduler.",
    "He threw himself into the project with gay abandon.",
    "I disabled the webhook because it kept timing out.",
    "We diagnosed the bounce issue as a misconfigured SPF record.",
    "Please check the SSH key fingerprint before you connect.",
    "Our scheduler uses a genetic algorithm to pick send times.",
    "The new hire is on a six-month probation period.",
    "Christian from accounts will send the purchase order.",
    "Mass mailing to the whole list is scheduled for 9 am.",
    "The Black Friday sale email goes out on the 28th.",
    "We were charged twice for the March invoice.",
]


@cache
def example_policy() -> Policy:
    return load_policy(EXAMPLE_POLICY)


def policy_with(*categories: str, on_detect: str = "redact") -> Policy:
    sensitive = Sensitive(categories=categories, on_detect=on_detect)
    return example_policy().model_copy(update={"sensitive": sensitive})


ALL = policy_with(*CATEGORIES)


@pytest.mark.parametrize("category", CATEGORIES)
def test_each_category_is_redacted_with_a_note_naming_only_the_category(category):
    sentence, _ = EXAMPLES[category]
    text = f"Thanks for the quote. {sentence} Please invoice us in May."

    screened = screen_text(text, ALL)

    label = SENSITIVE_TEXT[category]
    assert screened == Screened(
        f"Thanks for the quote. [removed: {label}] Please invoice us in May.", (category,)
    )
    assert screened.note == f"removed: {label}"


@pytest.mark.parametrize("category", CATEGORIES)
def test_the_removed_words_appear_nowhere_in_the_result(category):
    sentence, words = EXAMPLES[category]

    screened = screen_text(f"Hello. {sentence}", ALL)

    for word in words:
        assert word not in screened.text
        assert word not in screened.note
        assert word not in repr(screened)


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_ordinary_business_text_that_looks_close_is_left_alone(text):
    assert find_sensitive(text, ALL) == []
    assert screen_text(text, ALL) == Screened(text, ())


def test_a_policy_listing_only_health_does_not_redact_religion():
    health_only = policy_with("health")
    text = "As a practising Muslim I can't attend on Friday. My diabetes appointment is at 10."

    screened = screen_text(text, health_only)

    assert screened == Screened(
        "As a practising Muslim I can't attend on Friday. [removed: health]", ("health",)
    )


def test_a_policy_listing_no_categories_screens_nothing():
    text = "I have a criminal record and my diabetes appointment is at 10."
    assert screen_text(text, policy_with()) == Screened(text, ())
    assert find_sensitive(text, policy_with()) == []


def test_reject_mode_refuses_with_a_message_that_names_categories_only():
    reject = policy_with(*CATEGORIES, on_detect="reject")
    text = "I have a conviction for fraud. As a practising Muslim I pray on Fridays."

    with pytest.raises(SensitiveDataRefused) as caught:
        screen_text(text, reject)

    refused = caught.value
    assert isinstance(refused, ValueError)
    assert refused.categories == ("religious_or_philosophical_beliefs", "criminal_history")
    message = str(refused)
    assert "religious or philosophical beliefs" in message
    assert "criminal convictions and offences" in message
    for word in ["conviction for", "fraud", "Muslim", "pray", "Friday"]:
        assert word not in message


def test_reject_mode_passes_ordinary_text_through():
    reject = policy_with(*CATEGORIES, on_detect="reject")
    text = "Please renew our support contract for another year."
    assert screen_text(text, reject) == Screened(text, ())


def test_only_the_sentence_that_states_the_fact_is_removed():
    text = (
        "Hi, we'd like a demo next week. I saw Dr. Patel about my depression, so please email "
        "rather than call. Thanks, Sam"
    )
    assert screen_text(text, ALL).text == (
        "Hi, we'd like a demo next week. [removed: health] Thanks, Sam"
    )


def test_a_line_or_a_semicolon_ends_the_removed_statement_and_bullets_stay():
    text = (
        "Notes:\n- prefers email\n- diabetic, lunch at 12\n- invoice to finance\n"
        "As a practising Muslim I can't attend on Friday; could we do Thursday?"
    )
    assert screen_text(text, ALL).text == (
        "Notes:\n- prefers email\n- [removed: health]\n- invoice to finance\n"
        "[removed: religious or philosophical beliefs] could we do Thursday?"
    )


def test_several_categories_in_one_sentence_share_one_marker_in_policy_order():
    screened = screen_text("I'm a gay Unite union rep.", ALL)

    assert screened.text == "[removed: trade union membership, sex life or sexual orientation]"
    assert screened.removed == ("trade_union_membership", "sex_life_or_orientation")
    assert screened.note == "removed: trade union membership, sex life or sexual orientation"


def test_find_sensitive_gives_the_category_and_the_span_of_the_matched_words():
    text = "Renewal is due. My BRCA1 test came back positive."

    findings = find_sensitive(text, ALL)

    assert [f.category for f in findings] == ["genetic"]
    finding = findings[0]
    assert isinstance(finding, Finding)
    assert "BRCA1" in text[finding.start : finding.end]


def test_curly_apostrophes_are_screened_like_straight_ones():
    screened = screen_text("I’m gay and my husband handles billing.", ALL)
    assert screened.removed == ("sex_life_or_orientation",)


def test_empty_and_blank_text_comes_back_unchanged():
    assert screen_text("", ALL) == Screened("", ())
    assert screen_text("  \n\t", ALL) == Screened("  \n\t", ())
    assert find_sensitive("", ALL) == []


def test_a_very_long_text_is_screened_in_pieces_without_losing_anything():
    line = "Please send the quote for the Pro plan to our finance team.\n"
    ordinary = line * (CHUNK_CHARS // len(line) + 10)  # more than one piece on its own
    text = ordinary + "I have a criminal record.\n" + ordinary + "My diabetes appointment is soon."

    screened = screen_text(text, ALL)

    assert screened.text == (
        ordinary + "[removed: criminal convictions and offences]\n" + ordinary + "[removed: health]"
    )
    assert screened.removed == ("health", "criminal_history")


def test_the_installations_policy_is_used_when_none_is_given():
    # settings.TIDINGS_POLICY is the example policy: all nine categories, redact.
    assert screen_text("I'm a Unite union rep.").removed == ("trade_union_membership",)
    assert [f.category for f in find_sensitive("My iris scan was taken.")] == ["biometric"]


def test_threads_share_one_engine_and_get_the_same_answers():
    screener = Screener()
    texts = [EXAMPLES[c][0] for c in CATEGORIES] + HARD_NEGATIVES[:5]

    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda t: screener.screen(t, CATEGORIES), texts * 4))

    assert concurrent == [screener.screen(t, CATEGORIES) for t in texts * 4]


def test_an_unknown_category_is_an_error():
    with pytest.raises(ValueError, match="unknown sensitive categories: astrology"):
        Screener().find("text", ["astrology"])


def test_a_broken_rule_names_its_file_and_pattern(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    genetic = rules / "genetic.toml"
    text = genetic.read_text(encoding="utf-8")
    text = text.replace('name = "genetic_test"', 'name = "broken"', 1)
    text = text.replace("regex = '''\\b genetic", "regex = '''(\\b genetic", 1)  # unbalanced
    genetic.write_text(text, encoding="utf-8")

    with pytest.raises(ValueError, match=r"genetic\.toml: patterns\[0\] \(broken\): not a valid"):
        Screener(rules)


class NetworkAttempts(list):
    """Stands in for socket's connecting calls and records each attempt."""

    def refuse(self, *args, **kwargs):
        self.append(args)
        raise OSError("no network access in this test")


def test_building_the_engine_and_screening_make_no_network_connection(monkeypatch):
    attempts = NetworkAttempts()

    class NoConnections(socket.socket):
        connect = connect_ex = sendto = attempts.refuse

    monkeypatch.setattr(socket, "socket", NoConnections)
    monkeypatch.setattr(socket, "create_connection", attempts.refuse)
    monkeypatch.setattr(socket, "getaddrinfo", attempts.refuse)

    screened = Screener().screen("I have a criminal record.", CATEGORIES)

    assert screened.removed == ("criminal_history",)
    assert attempts == []


def test_importing_presidio_and_spacy_makes_no_network_connection():
    # A fresh interpreter, so that the imports themselves happen with the network refused.
    code = textwrap.dedent(
        """
        import socket

        attempts = []

        def refuse(*args, **kwargs):
            attempts.append(args)
            raise OSError("no network access in this test")

        class NoConnections(socket.socket):
            connect = connect_ex = sendto = refuse

        socket.socket = NoConnections
        socket.create_connection = socket.getaddrinfo = refuse

        from tidings.policy.screening import CATEGORIES, Screener

        screened = Screener().screen("My BRCA1 test came back positive.", CATEGORIES)
        print(screened.text, len(attempts))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[removed: genetic data] 0"


def test_a_text_written_to_the_person_counts_their_you_and_your():
    # An operator's reply is addressed to the person: "your diagnosis" is theirs.  What people
    # write to us uses "your" for the company, so plain screening leaves it alone.
    from tidings.policy.screening import find_sensitive

    reply = "Sorry to hear about your cancer diagnosis. Your order ships tomorrow."
    found = find_sensitive(reply, addressed=True)
    assert [f.category for f in found] == ["health"]
    assert reply[found[0].start : found[0].end].lower().startswith(("your", "cancer"))
    assert find_sensitive(reply) == []
    assert find_sensitive("Your order ships tomorrow, thank you.", addressed=True) == []
