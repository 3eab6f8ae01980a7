"""Credentials out of anything printed or recorded: a source or destination URL (an RTSP camera's
`rtsp://user:password@host/`, an SRT passphrase, a token in a query) is named in stderr lines, the JSON
summary, the dashboard's events and error messages — FFmpeg's own messages quote the URL too — so every such
text passes through `redact` first."""

from __future__ import annotations

import re

MASK = "***"
# userinfo: everything after `scheme://` up to the last `@` before the path, as FFmpeg splits it
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")
_SECRET_PARAMS = ("password", "passwd", "pass", "pwd", "passphrase", "token", "access_token", "auth",
                  "authorization", "key", "api_key", "apikey", "secret", "sig", "signature", "credential",
                  "credentials", "user", "username")
_PARAMS = re.compile(r"([?&;](?:%s)=)[^&;#\s'\"]*" % "|".join(_SECRET_PARAMS), re.IGNORECASE)


def redact(text) -> str:
    """`text` with URL credentials masked: `scheme://user:pass@` → `scheme://***@`, `?password=x` → `?password=***`."""
    text = str(text)
    if "://" not in text and "=" not in text:
        return text
    return _PARAMS.sub(lambda m: m.group(1) + MASK, _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text))
