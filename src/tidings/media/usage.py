"""Where a picture of the library is still used, as the apps above media say.

Campaign bodies, templates and layouts hold a picture by its address (``/media/<key>/...``), not
by a foreign key, so deleting a picture would leave a scheduled newsletter to go out with a
broken image.  The apps that hold addresses register a finder here (campaigns does, in its
``ready``); ``do_delete_image`` refuses while any finder names a use.
"""

from __future__ import annotations

from collections.abc import Callable

# key -> what uses it, in words ("the scheduled campaign “June news”")
Finder = Callable[[str], list[str]]
_finders: list[Finder] = []


def register(finder: Finder) -> None:
    if finder not in _finders:
        _finders.append(finder)


def uses_of(key: str) -> list[str]:
    """What still shows the picture stored under ``key``, in words; [] when nothing does."""
    return [use for finder in _finders for use in finder(key)]
