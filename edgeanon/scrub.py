"""Removes credentials from text before it reaches a log line, an error message or `doctor`'s output.

One scrubber for everything: `scrub(text)` hides the user information of every URI in the text
(`rtsp://user:p@ss@host/s` -> `rtsp://***@host/s`, up to the last '@' of the URI) and the value of
every password-like `key=value` (`user-pw=secret`, `password: 123` -> `user-pw=***`). `ScrubFilter`
applies it to every record a logging handler emits. `short_error(exc)` is the one way an exception
becomes part of a message. `split_uri` is the one URI parser (daemon, `doctor`), with the same rule
for where the user information ends, so what it finds is what the scrubber hides.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

MASK = "***"

# A URI: scheme://, then everything up to white space, a quote or the end of a gst element ('!').
# ('!' does not end it: a password may hold one; a gst pipeline's " ! " has white space around it.)
_URI = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s'\"<>]*)")
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
    """A source or broker URI without its credentials, for logs and messages. Text meant as a URI but
    without its scheme (`admin:pw@cam/s`) may still be credentials@host: nothing before its last '@' is shown."""
    if "://" not in uri and "@" in uri:
        return f"{MASK}@{scrub(uri.rsplit('@', 1)[1])}"
    return scrub(uri)


def short_error(exc: BaseException) -> str:
    """Exception type and the first line of its message, cut short and scrubbed (never a dump of arrays,
    never a credential): the one way an exception goes into a log line or an error message."""
    first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    text = scrub(first)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class UriError(ValueError):
    """A URI that cannot be parsed; the message names it without its credentials."""


@dataclass(frozen=True)
class Uri:
    """A URI split as edgeanon reads it: `scheme://[user[:password]@]host[:port]rest`."""

    scheme: str
    user: str | None
    password: str | None
    host: str  # '' when there is no authority (file:///clip.mp4); IPv6 without brackets
    port: int | None
    rest: str  # path, query and fragment, as written

    @property
    def safe(self) -> str:
        """The URI without its credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        auth = f"{MASK}@" if self.user is not None else ""
        return scrub(f"{self.scheme}://{auth}{host}{port}{self.rest}")


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def split_uri(uri: str) -> Uri:
    """Split `uri`; UriError (without credentials) for one that cannot be read unambiguously.

    The user information ends at the LAST '@', as in `scrub`: a password may hold '@' and ':'. A '/', '?'
    or '#' before that '@' is refused: other URI readers (FFmpeg's among them) end the host there, so the
    rest of the password would be sent as a path to a host named after the user; percent-encode them.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep or not _SCHEME.match(scheme):
        raise UriError(f"{safe_uri(uri)!r}: expected SCHEME://..., e.g. rtsp://host/stream")
    userinfo: str | None = None
    if "@" in rest and not rest.startswith("/"):
        userinfo, rest = rest.rsplit("@", 1)
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    hostport, tail = rest[:end], rest[end:]
    safe = f"{scheme}://{MASK + '@' if userinfo is not None else ''}{scrub(rest)}"
    if userinfo is not None and any(c in userinfo for c in "/?#"):
        raise UriError(f"{safe!r}: the user name or password holds '/', '?' or '#' (or the path holds '@'): "
                       "percent-encode them (%2F, %3F, %23, %40)")
    user = password = None
    if userinfo is not None:
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
    port_text = ""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise UriError(f"{safe!r}: '[' of an IPv6 address without its ']'")
        host, after = hostport[1:close], hostport[close + 1:]
        if after and not after.startswith(":"):
            raise UriError(f"{safe!r}: unexpected text after the IPv6 address")
        port_text = after[1:]
        has_port = bool(after)
    else:
        host, colon, port_text = hostport.partition(":")
        has_port = bool(colon)
    port = None
    if has_port:
        if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
            raise UriError(f"{safe!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    if userinfo is not None and not host:
        raise UriError(f"{safe!r}: no host after the credentials")
    return Uri(scheme, user, password, host, port, tail)


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
