"""Let the Flask side of iHome accept the registration function's session cookie.

The function answers a registration with ``__Host-session=<JWT>`` (HS256, docs/sessions.md).
Existing Flask views read the login state from ``session["user_id"]`` (``@login_required``).
This hook, run before every request, verifies that cookie and sets ``session["user_id"]``,
``session["name"]`` and ``session["mobile"]`` from it, as the seed's register view did, so those
views work unchanged.

Install::

    pip install PyJWT==2.15.1            # the version scripts/requirements.txt pins
    # copy this file beside the app (or put contrib/flask on PYTHONPATH), then:
    from ihome_session import init_app
    init_app(app)                        # after app.config is loaded

Configuration (``app.config``, else the environment, the same names the function reads):

- ``IHOME_JWT_SECRETS``: a list of keys; else ``JWT_SECRET`` and, during a rotation,
  ``JWT_SECRET_PREVIOUS`` from the environment. Order does not matter: the token's ``kid`` picks
  the key. Each at least 32 bytes.
- ``IHOME_JWT_ISSUER``, else ``JWT_ISSUER``, else ``ihome``.
- ``IHOME_SESSION_COOKIE``: the cookie's name, default ``__Host-session``.

Behaviour: a valid cookie logs the request in as its ``sub`` (``user_id`` is the UUIDv7 string
the function stored). A missing, tampered, expired or foreign cookie, or one signed with a key
not held, is "not logged in": the login state that came from a cookie is dropped, nothing is
raised, and nothing of the token is logged. A login made by Flask itself (no cookie involved) is
left alone. When a view logs the user out (``session.clear()``) or in as someone else, the cookie
is deleted in the same response, so the next request does not log them back in.
"""

import hashlib
import logging
import os

import jwt
from flask import g, request, session

LEEWAY_SECONDS = 60  # clock skew tolerated on exp, as the Rust verifier
MIN_KEY_BYTES = 32
FIELDS = ("user_id", "name", "mobile")
MARK = "ihome_session_jti"  # set when the login state came from the cookie

log = logging.getLogger(__name__)


def key_id(secret):
    """The header's kid: lowercase hex of the first 8 bytes of SHA-256 over the key's bytes."""
    return hashlib.sha256(secret).digest()[:8].hex()


class SessionVerifier:
    def __init__(self, secrets, issuer="ihome"):
        keys = [s.encode() if isinstance(s, str) else bytes(s) for s in secrets if s]
        if not keys:
            raise ValueError("no session key configured (JWT_SECRET)")
        if any(len(k) < MIN_KEY_BYTES for k in keys):
            raise ValueError("a session key is shorter than 32 bytes")
        self.keys = {key_id(k): k for k in keys}
        self.issuer = issuer

    def claims(self, token):
        """The token's claims if it is a valid session, else None. Never raises."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "HS256":
                return None
            kid = header.get("kid")
            if kid is None:  # signed before the header carried kid: try each key
                candidates = list(self.keys.values())
            elif isinstance(kid, str) and kid in self.keys:
                candidates = [self.keys[kid]]
            else:
                return None  # an unknown kid is refused without a try
            for key in candidates:
                try:
                    claims = jwt.decode(
                        token,
                        key,
                        algorithms=["HS256"],
                        issuer=self.issuer,
                        leeway=LEEWAY_SECONDS,
                        options={"require": ["exp", "iat", "iss", "sub", "jti"]},
                    )
                except jwt.InvalidSignatureError:
                    continue
                return claims if claims["sub"] else None
            return None
        except jwt.InvalidTokenError:
            return None
        except Exception as e:  # a malformed cookie must never become a 500
            log.warning("session cookie refused: %s", type(e).__name__)
            return None


def init_app(app):
    """Installs the before/after-request hooks on ``app``; returns the verifier."""
    secrets = app.config.get("IHOME_JWT_SECRETS") or [
        os.environ.get("JWT_SECRET"),
        os.environ.get("JWT_SECRET_PREVIOUS"),
    ]
    issuer = app.config.get("IHOME_JWT_ISSUER") or os.environ.get("JWT_ISSUER") or "ihome"
    cookie = app.config.get("IHOME_SESSION_COOKIE", "__Host-session")
    verifier = SessionVerifier(secrets, issuer)

    @app.before_request
    def load_ihome_session():
        token = request.cookies.get(cookie)
        claims = verifier.claims(token) if token else None
        g.ihome_session_sub = claims["sub"] if claims else None
        if claims:
            if session.get("user_id") != claims["sub"] or session.get(MARK) != claims["jti"]:
                session["user_id"] = claims["sub"]
                session["name"] = claims.get("name", claims.get("mobile"))
                session["mobile"] = claims.get("mobile")
                session[MARK] = claims["jti"]
        elif MARK in session:  # the cookie that logged this session in is gone or invalid
            for field in (*FIELDS, MARK):
                session.pop(field, None)

    @app.after_request
    def forget_ihome_session(response):
        sub = g.pop("ihome_session_sub", None)
        if sub is not None and session.get("user_id") != sub:
            # The view logged out or in as someone else: the cookie must not log them back in.
            response.delete_cookie(cookie, path="/", secure=True, httponly=True, samesite="Lax")
            session.pop(MARK, None)
        return response

    return verifier
