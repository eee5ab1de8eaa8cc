"""Deliverability: will the mail arrive, and what happened to it?

- ``dns``: the configured resolver (``TIDINGS_DNS_RESOLVER``) and "could not ask" versus
  "no such record".
- ``checks``: a sender domain's health (SPF, DKIM, DMARC and alignment, reverse DNS, MTA-STS,
  TLS-RPT, BIMI), each failed check with the record to publish.
- ``senders``: checks run for senders (on adding, daily, on demand), "verified" set from them,
  owners emailed about regressions.

This package sits beside the campaign pages (it reads the models, the DKIM keys and the
transports' configuration, and writes only senders' health and DMARC reports); the sending
layers (queue, lifecycle, engine) never import it.
"""
