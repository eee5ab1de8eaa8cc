from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from tests.journeys.helpers import make_list, person, subscriber, welcome
from tidings.journeys.models import Enrolment, Journey, JourneyVersion
from tidings.journeys.simulate import simulate

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("journeys", *args, stdout=out)
    return out.getvalue()


def test_export_then_load_round_trips_a_journey(tmp_path):
    steps = welcome().current().steps
    text = _run("export", "Welcome")
    assert 'kind = "send_email"' in text and "booked a demo" in text
    Journey.objects.all().delete()
    path = tmp_path / "welcome.toml"
    path.write_text(text)
    assert "created (version 1)" in _run("load", str(path))
    assert Journey.objects.get().current().steps == steps
    assert _run("export", "Welcome") == text


def test_loading_changed_steps_makes_a_new_version(tmp_path):
    welcome()
    text = _run("export", "Welcome").replace('duration = "2 days"', 'duration = "3 days"')
    path = tmp_path / "welcome.toml"
    path.write_text(text)
    assert "updated (version 2)" in _run("load", str(path))
    assert JourneyVersion.objects.count() == 2


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ('kind = "wait"\nduration = "2 days"', 'kind = "teleport"', "steps[1].kind: unknown step"),
        (
            'template = "Welcome"',
            'template = "Missing"',
            "steps[0].template: no template is called",
        ),
        ('name = "Welcome"', 'name = "Welcome"\ncolour = "red"', "colour: unknown key"),
    ],
)
def test_a_bad_file_is_refused_with_key_paths(tmp_path, old, new, error):
    welcome(activate=False)
    text = _run("export", "Welcome").replace(old, new, 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CommandError) as caught:
        _run("load", str(path))
    assert f"{path}: {error}" in str(caught.value)


def test_a_loop_without_a_wait_is_refused(tmp_path):
    path = tmp_path / "loop.toml"
    path.write_text(
        'name = "Loop"\ntopic = ""\n[trigger]\nkind = "manual"\n'
        '[[steps]]\nid = "a"\nkind = "webhook"\nevent = "x"\nnext = "b"\n'
        '[[steps]]\nid = "b"\nkind = "remove_attribute"\nkey = "plan"\nnext = "a"\n'
    )
    with pytest.raises(CommandError, match=r"steps\[0\]: a loop through this step never waits"):
        _run("load", str(path))
    assert not Journey.objects.exists()


def test_simulate_prints_the_timeline_and_writes_nothing(time_machine):
    time_machine.move_to(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), tick=False)
    welcome()
    subscriber("Ann Example", make_list(), email="ann@example.com")
    out = _run("simulate", "Welcome", "--contact", "ann@example.com", "--days", "10")
    assert 'email "Welcome, Ann"' in out
    assert "waits until Wed 09 Dec 2026" in out
    assert 'email "Three tips"' in out
    assert not Enrolment.objects.exists()


def test_the_simulator_shows_where_consent_stops_someone():
    journey = welcome()
    bob = person("Bob Example")
    moments = simulate(journey, bob)
    assert moments[-1].stops
    assert moments[-1].what == 'would leave: no consent to "product news" emails'


def test_simulate_names_an_unknown_contact_without_a_traceback():
    welcome()
    with pytest.raises(CommandError, match="no contact has that address"):
        _run("simulate", "Welcome", "--contact", "nobody@example.com")


@pytest.mark.parametrize(
    ("days", "error"),
    [("-5", "1 to 365 days, not -5"), ("0", "not 0"), ("100000000", "not 100000000")],
)
def test_simulate_refuses_a_horizon_it_cannot_follow_in_one_line(days, error):
    """ "--days -5" printed a timeline "beyond the -5 days simulated"; a huge number was an
    OverflowError traceback."""
    ada = subscriber("Ada Example", make_list())
    welcome()
    with pytest.raises(CommandError, match=error):
        _run("simulate", "Welcome", "--contact", ada.email, "--days", days)


def test_the_simulator_takes_the_timeout_way_of_a_wait_for_an_event():
    steps = [
        {
            "id": "ask",
            "kind": "wait_event",
            "event": "demo_booked",
            "timeout": "3 days",
            "then": "done",
            "else": "nudge",
        },
        {"id": "nudge", "kind": "send_email", "template": "Welcome", "subject": "Still keen?"},
        {"id": "done", "kind": "end"},
    ]
    journey = welcome(steps=steps, goals=[])
    moments = simulate(journey, subscriber("Ann Example", make_list()))
    assert 'for "demo_booked"' in moments[0].what
    assert moments[1].what == 'email "Still keen?"'


def test_a_file_nested_too_deeply_is_refused_in_one_line(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text('name = "Deep"\nx = ' + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(CommandError, match="not valid TOML: nested too deeply"):
        _run("load", str(path))
    assert not Journey.objects.exists()


@pytest.mark.parametrize("value", ['"abc"', "[1]", "1.5", "true"])
def test_a_trigger_list_that_is_not_a_list_id_is_refused_in_one_line(tmp_path, value):
    make_list()
    path = tmp_path / "t.toml"
    path.write_text(
        f'name = "T"\ntopic = "product news"\n[trigger]\nkind = "confirmed"\nlist = {value}\n'
        '[[steps]]\nid = "a"\nkind = "end"\n'
    )
    with pytest.raises(CommandError, match=r"trigger_params.list: choose a list of the topic"):
        _run("load", str(path))
    assert not Journey.objects.exists()


def test_an_event_trigger_named_by_a_number_is_refused(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        'name = "T"\ntopic = ""\n[trigger]\nkind = "event"\nname = 5\n'
        '[[steps]]\nid = "a"\nkind = "end"\n'
    )
    with pytest.raises(CommandError, match=r"trigger_params.name: name the event"):
        _run("load", str(path))
