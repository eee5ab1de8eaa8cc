"""Bounces and complaints: reports about the mail we sent, from wherever they come.

One module per source, each with the same shape: a ``parse`` that turns what arrived into a list
of ``Finding`` (kind, the address concerned, the ids that lead back to our message), and nothing
else; ``processing`` matches findings to the message we sent and does what they call for.

- ``dsn``: delivery status notifications (RFC 3464 and the usual non-standard ones: Postfix, Exim,
  Gmail, Outlook...), read by flufl.bounce: a permanent failure is a hard bounce, a temporary
  one a soft bounce.
- ``arf``: complaint reports (RFC 5965, ``message/feedback-report``) from mailbox providers'
  feedback loops.
- ``mail``: a message arriving by the MTA pipe or the bounce mailbox: ARF when it is one,
  otherwise a DSN.
- ``esp``: django-anymail's tracking webhooks (Amazon SES, SendGrid, Postmark, Mailgun, Brevo...),
  whose signature or basic-auth check anymail makes before we see an event.
- ``mailbox``: ``tidings bounces fetch``: reads a bounce mailbox over IMAP or POP3.

**Matching.**  A report leads back to the queue row it is about by the Message-ID we gave the
message (``messages.message_id_for``: it names the row and carries an HMAC, so a report cannot
point at someone else's row) found anywhere in the returned message, or by the VERP envelope
sender (``bounces+d123.<mac>@…``, ``TIDINGS_BOUNCE_VERP``) the report was addressed to, or, for
ESP webhooks, by the provider's message id stored on the row.
"""
