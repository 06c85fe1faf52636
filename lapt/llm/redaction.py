"""The one redactor: no secret reaches a trace, a log line, an error message or a run directory.

Used by the trace writer for every line, by the LLM client for every error and attempt line, and by the
run directory for the settings it saves. It hides the values of the API keys this process knows
(environment variables named like credentials, keys registered with :func:`register_secret`), anything
shaped like a key (``sk-...``, ``lsv2_...``, bearer tokens, ``"api_key": "..."`` fields) and the
password part of a URL (``http://user:KEY@host/v1`` becomes ``http://user:[redacted]@host/v1``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping

REDACTED = "[redacted]"

_SHAPED = re.compile(
    r"sk-[A-Za-z0-9_\-]{8,}"  # OpenAI-style keys (sk-..., sk-proj-...)
    r"|lsv2_[A-Za-z0-9_]{8,}"  # LangSmith keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"  # Authorization header values
)
_SECRET_FIELD = re.compile(
    r'("(?:[A-Za-z0-9_\-]*api[_\-]?key|authorization|proxy-authorization|cookie|password|secret)"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)
# scheme://user:password@host -> the password goes (the user name stays: it says which account)
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:\"']*:)([^\s/@\"']+)(@)")
_FIELD_HINTS = ("api", "auth", "cookie", "passw", "secret")  # what every _SECRET_FIELD match contains
# Something at least one of the patterns needs (key prefixes, field hints; a URL with user info needs
# "://" and "@"), looked for as plain substrings of the lower-cased text: many times faster than a
# case-insensitive alternation over the long lines of a trace.
_HINT_WORDS = ("sk-", "lsv2_", "bearer", *_FIELD_HINTS)
_SECRET_ENV = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_MIN_SECRET = 8  # shorter values would redact ordinary words
_REGISTERED: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret (e.g. an API key given in code, not in the environment) so nothing shows it."""
    if value and len(value) >= _MIN_SECRET:
        _REGISTERED.add(value)


def environment_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of environment variables named like credentials (``*_API_KEY``, ``*_TOKEN``, ...)."""
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if _SECRET_ENV.search(k) and len(v) >= _MIN_SECRET}


class Redactor:
    """Replaces secrets in text: known values (raw and JSON-escaped), key-shaped strings, URL passwords."""

    def __init__(self, secrets: Iterable[str] = ()):
        values = {s for s in secrets if s and len(s) >= _MIN_SECRET}
        self._forms = sorted(values | {json.dumps(s)[1:-1] for s in values}, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, self._forms))) if self._forms else None

    @classmethod
    def from_environment(cls, extra: Iterable[str] = ()) -> Redactor:
        """Everything this process knows to be secret: the environment, registered keys and ``extra``."""
        return cls([*environment_secrets(), *_REGISTERED, *extra])

    def __call__(self, text: str) -> str:
        # One scan for every hint first: each rewrite runs only on text that may hold what it looks for,
        # which keeps redaction cheap on the (many, almost always clean) trace lines.
        if self._known is not None and self._known.search(text):
            text = self._known.sub(REDACTED, text)
        lower = text.lower()
        url = "@" in text and "://" in text
        if not url and not any(hint in lower for hint in _HINT_WORDS):
            return text
        if "sk-" in lower or "lsv2_" in lower or "bearer" in lower:
            text = _SHAPED.sub(REDACTED, text)
        if any(hint in lower for hint in _FIELD_HINTS):
            text = _SECRET_FIELD.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
        if url:
            text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)
        return text


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` without the secrets this process knows about (for error messages and logs)."""
    return Redactor.from_environment(extra)(text)


def redact_url(url: str | None) -> str | None:
    """A URL without the password of its user info (what a run directory may record)."""
    if url is None:
        return None
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", url)
