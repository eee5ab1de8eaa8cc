"""Mail to the support address: read (``mail``), matched and acted on (``processing``), from
the MTA pipe (``tidings inbound process``) or the mailbox the worker fetches (``mailbox``)."""
