"""The delivery engine: a database thread and an event loop, and the queue between them.

The top of the sending layers (models → rendering → queue → lifecycle → **engine**): it claims
rows from the ``queue``, builds each message from its campaign's compiled template, sends it
through the ``transports``, records the results, and asks the ``lifecycle`` to finish or pause
campaigns.  Its modules:

- ``run``: the database thread's loop (``Engine``), ``DeliveryThread`` (inside ``tidings worker``)
  and ``deliver_pending`` (one pass, for scripts and tests);
- ``context``: what a campaign's messages need, prepared once (``CampaignContext``);
- ``jobs``: which claimed rows may still be sent (consent, suppression, tracking) per batch;
- ``dispatcher``: the event loop's senders and the thread it runs in;
- ``builders``: optional processes that render, track, build and sign campaign messages
  (``TIDINGS_DELIVERY_BUILDERS``), so signing does not hold the event loop's GIL;
- ``breaker``: the circuit breaker that pauses a failing campaign.
"""

from .breaker import Breaker
from .context import CampaignContext, Job, OneOffFactories
from .dispatcher import Dispatcher, EventLoopThread
from .run import DeliveryThread, Engine, EngineStats, deliver_pending

__all__ = [
    "Breaker",
    "CampaignContext",
    "DeliveryThread",
    "Dispatcher",
    "Engine",
    "EngineStats",
    "EventLoopThread",
    "Job",
    "OneOffFactories",
    "deliver_pending",
]
