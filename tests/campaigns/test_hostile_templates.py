"""Templates written to break out of the sandbox or to exhaust the worker: refused at save time,
or stopped within a time and size limit while sending."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from jinja2.exceptions import SecurityError

from tidings.campaigns.rendering import (
    CampaignSandbox,
    CompiledMessage,
    Limits,
    MessageLinks,
    TemplateProblem,
    check_template,
)

LINKS = MessageLinks("https://x.example/u/", "https://x.example/p/", "https://x.example/v/")
SECRET_SETTINGS = ("SECRET_KEY", "DATABASES", "django")


@pytest.fixture
def generous_clock(monkeypatch):
    """Save-time checks with a 5 s clock instead of 50 ms, for tests about the other limits (or
    about the send-time clock): on a loaded machine the 50 ms check would otherwise win first."""
    import tidings.campaigns.rendering as rendering

    monkeypatch.setattr(rendering.contract, "CHECK_LIMITS", rendering.Limits(seconds=5.0))


def person(**attributes):
    return SimpleNamespace(
        pk=7, name="Mallory", email="m@example.com", company="", job_title="", attributes=attributes
    )


def refusal(body: str, fmt: str = "html") -> str:
    """The problems with ``body``, as one string; fails if it was accepted, or took too long."""
    started = time.perf_counter()
    problems = check_template("Subject", body, fmt)
    assert time.perf_counter() - started < 3, "the check must stay quick on hostile input"
    assert problems, f"accepted: {body!r}"
    assert all(p.part == "body" for p in problems)
    return " / ".join(p.message for p in problems)


# --- escaping the sandbox ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{{ contact.name.__class__ }}", "'__class__' cannot be used"),
        ("{{ contact.name.__class__.__mro__[1].__subclasses__() }}", "'__class__' cannot be used"),
        ("{{ contact.attributes.get.__globals__ }}", "'__globals__' cannot be used"),
        ("{{ contact.attributes.items.__self__ }}", "'__self__' cannot be used"),
        ("{{ contact['__class__'] }}", "'__class__' cannot be used"),
        ("{{ contact.name|attr('__class__') }}", "'__class__'"),
        ("{{ cycler.__init__.__globals__ }}", "'__init__' cannot be used"),
        ("{{ namespace.mro() }}", "'mro' cannot be used"),
        ('{{ "{0.__class__}".format(contact.name) }}', "'format' cannot be used"),
        ('{{ "{0}".format_map(contact) }}', "'format_map' cannot be used"),
        ('{{ "%s" % contact.name }}', "% is not available"),
        ('{{ contact.name|format("x") }}', "no filter named 'format'"),
        ("{{ contact.name|safe }}", "no filter named 'safe'"),
        ("{% autoescape false %}{{ contact.name }}{% endautoescape %}", "cannot be switched off"),
        ('{% include "other.html" %}', "{% include %} is not available"),
        ('{% import "macros.html" as m %}', "{% import %} is not available"),
        ('{% extends "base.html" %}', "{% extends %} is not available"),
        ("{% raw %}{{ x }}{% endraw %}", "{% raw %} is not available"),
        ("{{ lipsum(100000) }}", 'unknown variable "lipsum"'),
        ("{{ config }} {{ settings }} {{ request }}", 'unknown variable "config"'),
        ("{{ contact.name.center(100000000) }}", "center() cannot be called"),
        ("{{ contact.name.encode() }}", "encode() cannot be called"),
        ("{{ contact.attributes.update({'x': 1}) }}", "'update' of a dict cannot be used"),
    ],
)
def test_reaching_outside_the_sandbox_is_refused_at_save_time(body, expected):
    assert expected in refusal(body)


def test_the_sandbox_itself_refuses_private_names_and_unlisted_calls_at_render_time():
    env = CampaignSandbox(autoescape=False)
    with pytest.raises(SecurityError):
        env.from_string("{{ x.__class__ }}").render(x="a")
    with pytest.raises(SecurityError):
        env.from_string("{{ x|attr('__class__') }}").render(x="a")
    with pytest.raises(SecurityError):
        env.from_string("{{ f() }}").render(f=print)
    with pytest.raises(SecurityError):
        env.from_string('{{ "{0.__class__}".format(x) }}').render(x="a")
    assert env.from_string("{{ x.upper() }} {{ d.get('k') }}").render(x="a", d={"k": 1}) == "A 1"


def test_nothing_secret_can_be_printed_by_any_name():
    names = ["settings", "config", "request", "environ", "os", "self", "django", "globals"]
    body = " ".join(f"{{{{ {name} }}}}" for name in names)
    for problem in check_template("S", body, "html"):
        assert problem.message.startswith("unknown variable")
    html = CampaignSandbox(autoescape=True).from_string(body).render()
    assert not any(secret in html for secret in SECRET_SETTINGS)


# --- exhausting the worker ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "range() is limited to 10,000 numbers"),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}",
            "loops run more than 10,000 times",
        ),
        ('{{ "x" * 100000000 }}', "longer than 1,000,000 characters"),
        ('{{ ["x"] * 100000000 }}', "at most 10,000 items"),
        ("{{ 7 ** 100000 }}", "too large a power"),
        ('{% set x = "x" * 1000 %}' + "{% set x = x ~ x %}" * 30 + "{{ x }}", "1,000,000"),
        (
            '{% set ns = namespace(s="xxxxxxxxxx") %}{% for i in range(40) %}'
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "1,000,000",
        ),
        ('{{ "x"|center(1000000000) }}', "1,000,000"),
        ('{{ ("x" * 1000)|replace("x", "y" * 1000)|replace("y", "z" * 1000) }}', "1,000,000"),
        ("{{ contact.name|indent(100000000) }}", "1,000,000"),
        ('{{ range(10000)|join("x" * 1000) }}', "1,000,000"),
        ("{{ [1]|batch(100000000, 'x')|list }}", "batch() is limited"),
        (
            '{% set a = ["' + "x" * 1000 + '"] * 1000 %}{% set b = [a, a, a, a, a, a, a, a] %}'
            "{% set c = [b, b, b, b, b, b, b, b] %}{{ c }}",
            "1,000,000",
        ),
        (
            "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}"
            "{{ m(40) }}",
            ("more than 10,000 times", "took longer than 50 ms"),  # whichever comes first
        ),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "within itself too deeply"),
        (
            "{% for i in range(1200) %}{{ 'y' * 1000 }}{% endfor %}",
            "longer than 1,000,000 characters",
        ),
        (
            "{% for i in range(3000) %}" + "z" * 2000 + "{% endfor %}",
            "more than 4,000,000 characters",
        ),
    ],
)
def test_templates_that_would_exhaust_the_worker_are_refused_quickly(
    body, expected, generous_clock
):
    reason = refusal(body)
    assert any(e in reason for e in expected) if isinstance(expected, tuple) else expected in reason


def test_a_template_too_slow_for_one_message_is_refused_at_save_time():
    body = (
        "{% set big = range(3000)|list %}{% for i in range(9999) %}"
        "{% if (big|sort|length) > 0 %}{% endif %}{% endfor %}"
    )
    assert "took longer than 50 ms" in refusal(body)


def test_the_problem_says_where_the_hostile_part_is():
    ((problem,),) = [check_template("S", "Fine\n\nStill fine {{ contact.__class__ }}", "html")]
    assert (problem.line, problem.column) == (3, 23)


# --- at send time ----------------------------------------------------------------------------
def test_data_that_would_blow_up_the_template_gets_it_rendered_without_that_data():
    compiled = CompiledMessage.from_sources(
        subject="S",
        body="A{% for i in range(contact.attributes.n|int) %}"
        "{% for j in range(contact.attributes.n|int) %}x{% endfor %}{% endfor %}B",
        fmt="html",
    )
    rendered = compiled.render(person(n=5000), LINKS)  # 25 million loops: over the limit
    assert "AB" in rendered.html  # rendered without the data: no x between A and B


def test_a_template_that_fails_while_sending_raises_a_template_problem_not_a_hang():
    # Passes the save-time check, but the engine's limits for this campaign are tighter.
    compiled = CompiledMessage.from_sources(
        subject="S",
        body="{% for i in range(50) %}{{ i }}{% endfor %}",
        fmt="html",
        limits=Limits(loop_iterations=10),
    )
    with pytest.raises(TemplateProblem) as caught:
        compiled.render(person(), LINKS)
    assert caught.value.part == "body"
    assert "loops run more than 10 times" in caught.value.message
    assert "Mallory" not in str(caught.value)  # the reason, never the contact


def test_the_time_limit_holds_while_sending(generous_clock):
    compiled = CompiledMessage.from_sources(
        subject="S",
        # About 1 ms a pass, run in the HTML and in the text part: ~20 ms, within the save-time
        # check's 50 ms.  The clock is read every 8 passes.
        body="{% set big = range(2000)|list %}{% for i in range(10) %}"
        "{% if (big|sort|length) > 0 %}{% endif %}{% endfor %}",
        fmt="html",
        limits=Limits(seconds=0.002),
    )
    with pytest.raises(TemplateProblem, match="took longer than 2 ms"):
        compiled.render(person(), LINKS)


def test_the_output_size_limit_holds_while_sending():
    compiled = CompiledMessage.from_sources(
        subject="S",
        body="{% for i in range(100) %}{{ contact.attributes.chunk }}{% endfor %}",
        fmt="html",
        limits=Limits(output_chars=50_000),
    )
    assert compiled.render(person(chunk="ok"), LINKS).html
    # 100 x 1,000 characters: over the campaign's limit with the data, fine without it.
    rendered = compiled.render(person(chunk="x" * 1000), LINKS)
    assert "x" * 1000 not in rendered.html


# --- the check itself cannot be made slow --------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        "{{" * 5000,  # Jinja's parser would recurse 5,000 levels deep
        "x {{ a }" * 20000,  # thousands of tags that never close
        "{% if contact.name %}\n" + "{{ '" * 40000,
        "{#" * 5000,
    ],
    ids=["nested", "unclosed", "unclosed-strings", "comments"],
)
def test_a_broken_template_is_reported_quickly_however_it_is_broken(body):
    started = time.perf_counter()
    assert check_template("S", body, "html")
    assert time.perf_counter() - started < 2


def test_a_template_with_thousands_of_tags_is_refused_before_it_is_compiled():
    started = time.perf_counter()
    assert "at most 1,500 per part" in refusal("{{ contact.name }}" * 5000)
    assert time.perf_counter() - started < 1
