"""Who may use the dashboard, and how a page proves a POST is its own.

- **Token.** With a token, every request must carry it: the ``flowrt_ui_auth`` cookie
  (set by the login form, or by a first ``GET ...?token=`` which is then redirected to
  the same address without the token), or an ``Authorization: Bearer`` header (scripts).
  Anything else gets 401 and the login form. The cookie holds an HMAC of the token, not
  the token; the token never appears in a redirect, a page or the access log.
- **Host.** Without a token the dashboard listens on a loopback address only, and answers
  only requests addressed to a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``): a
  web page elsewhere cannot reach it through DNS rebinding.
- **CSRF.** Every action is a POST carrying the ``csrf`` field of the page's form: an HMAC
  of the browser's session cookie (``flowrt_ui_session``) under a key of this server
  process. A POST whose ``Origin`` (or ``Sec-Fetch-Site``) says it comes from another site
  is refused first. A POST authenticated by a bearer header needs no CSRF field (a
  browser never adds that header on its own).
- **Headers.** Every response forbids framing, sniffing, referrers to other sites and
  any script or connection that is not the server's own (a Content Security Policy).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["AUTH_COOKIE", "SESSION_COOKIE", "Guard", "is_loopback", "safe_next"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

AUTH_COOKIE = "flowrt_ui_auth"
SESSION_COOKIE = "flowrt_ui_session"
#: the smallest token accepted: 16 characters of secrets.token_urlsafe() are 96 bits
MIN_TOKEN = 16

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; connect-src 'self'; form-action 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on
    # the form POSTs, which the Origin check could then not tell from another site
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name, without port) is this machine only."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port (``[::1]:8080`` -> ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def safe_next(target: str | None, base: str) -> str:
    """Where to go after logging in: a path of this server (never another site:
    ``//evil.example`` and ``https://...`` become the runs page)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return base + "/"
    return target


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header: no cookies
        return {}
    return {k: m.value for k, m in jar.items()}


class Guard:
    """The server's secrets and checks: the ``token`` (None: no authentication, loopback
    only), the key of CSRF tokens (new for each server process), and the path the
    dashboard is served under (``base``, for cookies and redirects).

    Args:
        token: what every request must carry, or None.
        base: the path prefix the dashboard is mounted at ("" at the root).
        loopback_only: answer only requests addressed to a loopback name.
        access_log: write one line per request to stderr (method, path, status, time;
            a ``token`` parameter is never written).
    """

    def __init__(self, token: str | None, *, base: str = "", loopback_only: bool = True,
                 access_log: bool = False) -> None:
        self.token = token
        self.base = base
        self.loopback_only = loopback_only
        self.access_log = access_log
        self._key = secrets.token_bytes(32)
        self._auth = (hmac.new(token.encode("utf-8", "surrogatepass"), b"flowrt-ui-auth",
                               hashlib.sha256).hexdigest() if token is not None else None)

    # -- authentication ---------------------------------------------------------------

    def token_ok(self, given: str | None) -> bool:
        """Whether ``given`` is the token (in constant time)."""
        if self.token is None:
            return True
        if given is None:
            return False
        return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                   self.token.encode("utf-8", "surrogatepass"))

    @property
    def auth_cookie(self) -> str:
        """The value of the authentication cookie (an HMAC of the token)."""
        assert self._auth is not None
        return self._auth

    def authenticated(self, headers: dict[str, str]) -> str | None:
        """How the request proves it has the token: ``"none-needed"``, ``"bearer"``,
        ``"cookie"``, or None when it does not."""
        if self.token is None:
            return "none-needed"
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and self.token_ok(auth[7:].strip()):
            return "bearer"
        cookie = _cookies(headers).get(AUTH_COOKIE)
        if cookie is not None and self._auth is not None and hmac.compare_digest(
                cookie.encode("ascii", "replace"), self._auth.encode("ascii")):
            return "cookie"
        return None

    # -- CSRF -------------------------------------------------------------------------

    def csrf_for(self, session: str) -> str:
        """The CSRF token of the browser session ``session``."""
        return hmac.new(self._key, session.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()

    def csrf_ok(self, session: str | None, given: str | None) -> bool:
        """Whether ``given`` is the CSRF token of ``session``."""
        if not session or not given:
            return False
        return hmac.compare_digest(self.csrf_for(session).encode("ascii"),
                                   given.encode("ascii", "replace"))

    @staticmethod
    def new_session() -> str:
        """A new browser session id."""
        return secrets.token_urlsafe(24)

    def cookie(self, name: str, value: str, *, max_age: int | None = None) -> str:
        """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, for the dashboard's path."""
        text = f"{name}={value}; Path={self.base or '/'}; HttpOnly; SameSite=Lax"
        if max_age is not None:
            text += f"; Max-Age={max_age}"
        return text

    # -- the ASGI middleware ----------------------------------------------------------

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """``app`` behind the checks above (host, token), with the security headers and
        the access log on every response."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            t0 = time.perf_counter()
            status = [0]

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                    names = {k.lower() for k, _ in message.get("headers", ())}
                    extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                    message["headers"] = [*message.get("headers", ()), *extra]
                await send(message)

            try:
                await self._guarded(app, scope, receive, send_with_headers)
            finally:
                if self.access_log:
                    self._log(scope, status[0], time.perf_counter() - t0)

        return guarded

    async def _guarded(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        if self.loopback_only and not is_loopback(_host_name(headers.get("host", ""))):
            await _plain(send, 421, "This dashboard answers requests addressed to "
                                    "127.0.0.1, localhost or [::1] only.\n")
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # mounted under a path: the dashboard's own part
            path = path[len(root):]
        if self.token is None:
            await app(scope, receive, send)
            return
        # A first visit with ?token=...: set the cookie and drop the token from the address.
        query = scope.get("query_string", b"").decode("latin-1")
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k == "token" for k, _ in pairs) and scope.get("method") in ("GET", "HEAD"):
            given = next(v for k, v in pairs if k == "token")
            if self.token_ok(given):
                rest = urlencode([(k, v) for k, v in pairs if k != "token"])
                target = scope.get("root_path", "") + path + ("?" + rest if rest else "")
                await send({"type": "http.response.start", "status": 303, "headers": [
                    (b"location", target.encode("latin-1", "replace")),
                    (b"set-cookie", self.cookie(AUTH_COOKIE, self.auth_cookie).encode()),
                    (b"cache-control", b"no-store"), (b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
        if path == "/login" or self.authenticated(headers) is not None:
            scope.setdefault("state", {})["auth"] = self.authenticated(headers)
            await app(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD") and "text/html" in headers.get("accept", ""):
            # the login form, with this page to come back to
            from ._pages import login_page
            target = scope.get("root_path", "") + path + (f"?{query}" if query and not any(
                k == "token" for k, _ in pairs) else "")
            body = login_page(scope.get("root_path", ""), target, None).encode("utf-8")
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"www-authenticate", b'Bearer realm="flowrt ui"'),
                (b"cache-control", b"no-store"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await _plain(send, 401, "This dashboard needs its token: log in at /login, or send "
                                "'Authorization: Bearer TOKEN'.\n",
                     [(b"www-authenticate", b'Bearer realm="flowrt ui"')])

    def _log(self, scope: Scope, status: int, seconds: float) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            pairs = [(k, "***" if k == "token" else v)
                     for k, v in parse_qsl(query, keep_blank_values=True)]
            query = "?" + urlencode(pairs, safe="*/:")
        client = scope.get("client") or ("-", 0)
        line = (f"{client[0]} {scope.get('method', '-')} {scope.get('root_path', '')}"
                f"{scope.get('path', '')}{query} {status} {seconds * 1000:.1f}ms")
        print(line.encode("ascii", "backslashreplace").decode("ascii"), file=sys.stderr,
              flush=True)


async def _plain(send: Send, status: int, text: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
