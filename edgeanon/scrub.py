"""Removes credentials from text before it reaches a log line, an error message or `doctor`'s output.

One scrubber for everything: `scrub(text)` hides the user information of every URI in the text
(`rtsp://user:p@ss@host/s` -> `rtsp://***@host/s`, up to the last '@' of the URI) and the value of
every password-like `key=value` (`user-pw=secret`, `password: 123` -> `user-pw=***`). `ScrubFilter`
applies it to every record a logging handler emits.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# A URI: scheme://, then everything up to white space, a quote or the end of a gst element ('!').
_URI = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s'\"<>!]*)")
# Secret-looking keys, with '=' or ':' and a value (quoted or one word); the key is kept, the value masked.
# `key = value` (TOML, gst properties, query strings) or `"key": value` (JSON).
_SECRET_KEYS = (r"password|passwd|passphrase|pwd|user-pw|user_pw|secret|token|api[-_]?key|access[-_]?key"
                r"|authorization|credentials?")
_SECRET = re.compile(rf"(?P<key>(?<![A-Za-z0-9])(?:{_SECRET_KEYS})(?:\s*=\s*|['\"]\s*:\s*))"
                     r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&)\]}]+)", re.IGNORECASE)


def _uri(match: re.Match) -> str:
    scheme, rest = match.group("scheme"), match.group("rest")
    if rest.startswith("/") or "@" not in rest:  # file:///a@b has no authority, nothing to hide
        return match.group(0)
    # Everything up to the LAST '@': a password may itself hold '@' (or '/', ':').
    return f"{scheme}{MASK}@{rest.rsplit('@', 1)[1]}"


def scrub(text: str) -> str:
    """`text` with every URI's credentials and every password-like value replaced by ***."""
    if not text:
        return text
    text = _URI.sub(_uri, text)
    return _SECRET.sub(lambda m: f"{m.group('key')}{MASK}", text)


def safe_uri(uri: str) -> str:
    """A source or broker URI without its credentials, for logs and messages."""
    return scrub(uri)


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs each record's final message (and its exception text) in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error report
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def install_log_scrubber(logger: logging.Logger | None = None) -> None:
    """Add a ScrubFilter to every handler of `logger` (the root logger by default), once each."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())
