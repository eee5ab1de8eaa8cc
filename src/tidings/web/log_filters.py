"""Keep signed tokens out of log lines.

Links in emails carry signed tokens (/c/<token>, /p/<token>, /u/<token> ...).  They hold only
ids, but they work as keys (an unsubscribe token never expires), so Django's "Not Found: /p/..."
lines and any other message quoting a path get the token replaced.
"""

from __future__ import annotations

import logging
import re

# A path segment after one of the token-bearing prefixes, up to the next slash, space or quote.
_TOKEN_PATH = re.compile(r"(/(?:c|p|u|t|o|r|v)/)[^/\s\"'?]{16,}")
# Operator invitations and password resets: /join/<uid>/<token>/, /login/reset/<uid>/<token>/.
_ACCOUNT_TOKEN_PATH = re.compile(r"(/(?:join|reset)/[^/\s\"'?]+/)[^/\s\"'?]{16,}")


def redact(text: str) -> str:
    return _ACCOUNT_TOKEN_PATH.sub(r"\1[token]", _TOKEN_PATH.sub(r"\1[token]", text))


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True
