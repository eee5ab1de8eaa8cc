"""How fast a compiled campaign message is personalised (campaigns.rendering).

    .venv/bin/python -m bench.render [--messages 20000] [--runs 5]

Compiles a realistic newsletter once (Markdown body with headings, a table, a loop, a condition
and a dozen personalised values, inside the default layout: about 10 KB of HTML plus its text
part), then renders it for rotating fictional contacts, and in the same run times a bare
``str.format`` that fills the same number of values into a string of the same size (the floor
for "personalise 10 KB").  Prints the best of ``--runs`` for each.  Needs no database.

The budget (DESIGN.md, "Limits measured"): well under a third of a millisecond per message for
everything outside SMTP; rendering is one part of that.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace

from bench._report import report

BODY = """\
# Hello {{ contact.first_name | default("there") }}, here is what changed this month

Thank you for reading, {{ contact.first_name | default("friend") }}. You are on the
**{{ contact.attributes.plan | default("free") }}** plan{% if contact.company %} at
{{ contact.company }}{% endif %}, so this issue starts with what matters to you.

{% if contact.attributes.plan == "pro" %}
As a pro customer you get the new reporting dashboard today: open it from the menu, or
[read the guide]({{ view_url }}#reports). Your account manager will be in touch.
{% else %}
The new reporting dashboard is part of the pro plan. [Compare the plans]({{ view_url }}#plans)
to see whether it is worth it for {{ contact.company | default("your team") }}.
{% endif %}

## Release notes

We shipped three releases since the last issue. Each one is small on its own; together they
make the daily work noticeably quicker. The highlights:

{% for item in ["Faster imports", "Saved segments", "Scheduled sends"] %}
- **{{ item }}**, available to everyone from today
{% endfor %}

Imports now validate addresses as they stream in, so a file of a million rows is ready in
well under a minute. Saved segments let you name a query once and reuse it everywhere; they
update as your contacts change. Scheduled sends take a date and a time zone, and can be paused
or moved until the moment they start.

| Feature | Before | Now |
|---------|--------|-----|
| Import of 1M rows | 6 minutes | 40 seconds |
| Segment count | 3 seconds | 0.4 seconds |
| Preview | HTML only | HTML and text |

## Events

Join us at one of the spring meet-ups. We will show the roadmap, answer questions and listen
to what you need next. Places are limited; reply to this email to reserve one, and tell us if
you have access needs we should plan for.

| Where | When | What | Places left |
|-------|------|------|-------------|
| London | 14 March, 18:00 | Roadmap and questions | 12 |
| Manchester | 21 March, 17:30 | Hands-on workshop on segments | 8 |
| Leeds | 25 March, 18:00 | Deliverability clinic | 15 |
| Online | 28 March, 12:00 | Open office hours | unlimited |
| Bristol | 2 April, 18:00 | Templates and layouts, with examples | 10 |

## From the blog

*Why we keep the privacy policy in code.* A privacy notice that is generated from the same
file the software enforces cannot drift from what the software does. We wrote up how it works,
what it costs and what it does not solve. [Read it on the blog]({{ view_url }}#blog).

*Plain text matters.* Every message we send has a plain-text part written for people, not just
stripped tags: links keep their addresses, lists keep their bullets, tables their rows.

## Customer story

{{ contact.company | default("A customer of ours") }} is not the only team that asked us for
faster imports. One of our longest-standing customers, a small publisher with three
newsletters and a shop, used to spend every Monday morning cleaning spreadsheets before they
could be imported. With streaming validation the file goes in as it is: rows that cannot be
used are reported with the reason, the rest are ready in seconds, and nobody has to guess why
an address was refused. "We got our Monday mornings back," their editor told us, "and we
finally trust the numbers on the dashboard."

They also moved their three newsletters to saved segments. Instead of exporting a list for
each issue, they keep one segment per newsletter and let it follow the subscriptions. When a
reader unsubscribes from one newsletter in the preference centre, the next issue of that
newsletter simply does not go to them, while the other two still do.

## Tips for this month

1. Write the plain-text part yourself when the message is mostly links: it reads better.
2. Keep the preheader short and specific; it is the second line people see in their inbox.
3. Preview every campaign as two or three real contacts before scheduling it, including one
   with no company and one with an unusual name.
4. Use a fallback for every personal value, like
   "{{ contact.first_name | default('there') }}" in the greeting above.

## A note on your data

We hold your name, your email address ({{ contact.email }}) and, if you told us, your company
and job title{% if contact.job_title %} ({{ contact.job_title }}){% endif %}. You can see,
correct or delete it at any time from [your preferences]({{ preferences_url }}), and leave this
list with one click from the link at the bottom of every email.

Until next month,
the team at {{ controller.name }}
"""

FIRST = ["Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Hedy", "Katherine", "Radia"]
LAST = ["Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Lamarr", "Johnson"]
PLANS = ["free", "pro", "team", None]


def _contacts(count: int) -> list[SimpleNamespace]:
    people = []
    for i in range(count):
        plan = PLANS[i % len(PLANS)]
        people.append(
            SimpleNamespace(
                pk=i + 1,
                name=f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}",
                email=f"person{i}@example.com",
                company="" if i % 5 == 0 else f"Company {i % 97} Ltd",
                job_title="Engineer" if i % 3 == 0 else "",
                attributes={"plan": plan} if plan else {},
            )
        )
    return people


def _best(runs: int, once: Callable[[], int]) -> float:
    """Seconds per item, best of ``runs`` (``once`` returns how many items it did)."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        items = once()
        timings.append((time.perf_counter() - started) / items)
    return min(timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
    import django

    django.setup()
    from tidings.campaigns.rendering import CompiledMessage, MessageLinks

    started = time.perf_counter()
    compiled = CompiledMessage.from_sources(
        subject="{{ contact.first_name | default('Hello') }}, this month's news",
        preheader="News, events and a dashboard for {{ contact.company | default('you') }}",
        body=BODY,
        fmt="markdown",
    )
    compile_ms = (time.perf_counter() - started) * 1000

    contacts = _contacts(1000)
    links = [
        MessageLinks(
            unsubscribe_url=f"https://news.example.com/u/{c.pk}:abcdefghijklmnopqrstuvwxyz0123/",
            preferences_url=f"https://news.example.com/p/{c.pk}:abcdefghijklmnopqrstuvwxyz01234/",
            view_url=f"https://news.example.com/v/42/{c.pk}:abcdefghij/",
        )
        for c in contacts
    ]
    sample = compiled.render(contacts[1], links[1])
    sizes = [len(compiled.render(c, lk).html) for c, lk in zip(contacts, links, strict=True)]

    def render_all() -> int:
        n = len(contacts)
        render = compiled.render
        for i in range(args.messages):
            render(contacts[i % n], links[i % n])
        return args.messages

    # The floor: the finished message as a format string with as many fields, evenly spread.
    output = sample.subject + sample.html + sample.text
    fields = len(re.findall(r"\{\{", compiled.html_source + compiled.text_source)) + 1
    step = max(len(output) // fields, 1)
    pieces = [output[i : i + step] for i in range(0, len(output), step)][:fields]
    format_string = "{}".join(p.replace("{", "{{").replace("}", "}}") for p in pieces)
    holes = format_string.count("{}")
    values = [
        (c.name, c.email, c.company, lk.unsubscribe_url, lk.preferences_url)
        for c, lk in zip(contacts, links, strict=True)
    ]
    arguments = [(v * (holes // len(v) + 1))[:holes] for v in values]

    def format_all() -> int:
        n = len(arguments)
        for i in range(args.messages):
            format_string.format(*arguments[i % n])
        return args.messages

    render_all()  # warm up
    per_render = _best(args.runs, render_all)
    per_format = _best(args.runs, format_all)

    print(
        f"message: {statistics.mean(sizes) / 1024:.1f} KB HTML on average, "
        f"{len(sample.text) / 1024:.1f} KB text, {fields} personalised values"
    )
    print(f"compile once per campaign: {compile_ms:.0f} ms (checks included)")
    print(
        f"render: {per_render * 1e6:.1f} µs per message, {1 / per_render:,.0f} messages/s "
        "on one core"
    )
    print(
        f"str.format floor ({holes} fields, same size): {per_format * 1e6:.1f} µs, "
        f"{1 / per_format:,.0f}/s"
    )
    print(f"ratio render / str.format: {per_render / per_format:.1f}x")
    budget = 1 / 3 * 1e-3
    print(f"share of the 333 µs per-message budget: {per_render / budget:.0%}")
    report(
        "render",
        "render one message",
        per_render * 1e6,
        "µs",
        baseline=per_format * 1e6,
        baseline_label="str.format of the same size",
        target=budget * 1e6,
        scale=f"{args.messages:,} messages",
    )

    # Open/click tracking for people who allow it (campaigns/tracking.py): the pixel and a
    # signed token per campaign link, added to the rendered HTML.
    from tidings.campaigns.tracking import LinkTracker, static_links

    # The newsletter's own links are personal (view_url); add five plain ones, as most have.
    extra = "".join(
        f'<p><a href="https://example.net/page-{i}?utm=news">Page {i}</a></p>' for i in range(5)
    )
    raw = static_links(compiled.html_source + extra)
    tracker = LinkTracker(42, {url: i for i, url in enumerate(raw)})
    htmls = [
        compiled.render(c, lk).html.replace("</body>", extra + "</body>")
        for c, lk in zip(contacts[:100], links, strict=False)
    ]

    def track_all() -> int:
        apply = tracker.apply
        for i in range(args.messages):
            apply(htmls[i % 100], 1_000_000 + i)
        return args.messages

    per_track = _best(args.runs, track_all)
    print(
        f"tracking ({len(raw)} campaign links + pixel): {per_track * 1e6:.1f} µs per message, "
        f"{per_track / per_render:.0%} of a render, {per_track / budget:.0%} of the budget"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
