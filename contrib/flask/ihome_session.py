# -*- coding: utf-8 -*-
"""Let the Flask side of iHome accept the registration function's session cookie.

The function answers a registration with ``__Host-session=<JWT>`` (HS256, docs/sessions.md). The
rest of iHome (profile, rename, real-name check, houses, orders) is Flask views over the site's
SQL database, keyed by the integer ``ih_user_profile.id``, and they read the login state from
``session["user_id"]`` (``@login_required``). This hook, run before every request, verifies the
cookie and gives those views **the site's own row for that person**: it finds the SQL user by the
cookie's ``mobile`` (unique in both stores) and sets ``session["user_id"]`` to that row's integer
id, ``session["name"]`` to that row's name, ``session["mobile"]`` to the mobile. The cookie's
``sub`` (the function's UUIDv7) never reaches ``session``.

Runs unchanged on Python 2.7 and 3.6+, Flask 0.10.1 to 3.1, Flask-SQLAlchemy 2.2 to 3.1,
SQLAlchemy 1.1 to 2.x, PyJWT 1.7.1 and 2.x, redis-py 2.10.6 and later (scripts/hook-matrix).

Install::

    pip install "PyJWT>=1.7.1" "redis>=2.10.6"   # only these; docs/sessions.md: bounds per Python
    # copy this file beside the app (or put contrib/flask on PYTHONPATH), then, in create_app:
    from ihome_session import init_app
    db.init_app(app)                     # first: the hook uses the app's engine
    init_app(app, db, User)              # after app.config is loaded; raises if User won't do

``db`` is the app's ``flask_sqlalchemy.SQLAlchemy``, ``User`` its model of ``ih_user_profile``.
``init_app`` checks the model and raises ``ModelError`` (a ``ValueError``) naming every problem,
so an app that cannot work fails at start, not at a user's first request. It needs:

- ``id``: the table's one primary key column, an integer (``db.Integer``).
- ``mobile``: a string column of length >= 11, **unique** (``unique=True``, or a unique index or
  constraint on it alone). Uniqueness is what makes the creation below happen exactly once.
- ``name``: a string column of length >= 11 (the mobile is the first name); if it is unique, as
  iHome's is, length >= 16 so that a free variant fits (``13812345678_2``).
- ``password_hash`` (or the attribute named by ``password_attr=``): a string column long enough
  for ``NO_PASSWORD`` (32 characters).
- every other ``NOT NULL`` column has a default (``default=`` or ``server_default=``).
- on SQLite, ``__table_args__ = {"sqlite_autoincrement": True}``, and the table, if it exists,
  created with ``AUTOINCREMENT``: otherwise SQLite hands a deleted user's id to the next new user,
  and a browser whose session still names that id would see the new user's data. (MySQL 8.0 and
  MariaDB 10.2.4 and later never reuse an InnoDB ``AUTO_INCREMENT`` value, restarts included;
  older servers recompute it from ``MAX(id)`` at start, so do not delete users there.)

Configuration (``app.config``, else the environment, the same names the function reads):

- ``IHOME_JWT_SECRETS``: a list of keys; else ``JWT_SECRET`` and, during a rotation,
  ``JWT_SECRET_PREVIOUS`` from the environment. Order does not matter: the token's ``kid`` picks
  the key. Each at least 32 bytes.
- ``IHOME_JWT_ISSUER``, else ``JWT_ISSUER``, else ``ihome``.
- ``IHOME_SESSION_COOKIE``: the cookie's name, default ``__Host-session``.
- ``IHOME_SESSION_RECHECK_SECONDS``: how long a resolved login is trusted before the row is
  looked up again (default 300).
- ``IHOME_SESSION_API_PREFIX``: paths that answer JSON (default ``/api/``), see "database down".
- ``IHOME_SESSION_REDIS_URL``, else ``REDIS_URL``: the Redis the function writes the session
  state to (required). ``IHOME_SESSION_REDIS_TIMEOUT``: seconds to connect and to answer (0.5).

Behaviour:

- **Ended sessions.** After the cookie's signature and claims, every request with a cookie reads
  the session state with one ``MGET session_ended:<jti> session_user:<sub>``: a logged-out token
  (first key set), a user whose record is missing (Redis lost it: fail closed, the user logs in
  again), or a token whose ``sv`` claim (absent: 0) is below the user's version (a password
  change or reset, "log out everywhere", a disabled account) is not logged in, and the login
  state it gave Flask's session is dropped. Redis not answering (down, refused, over
  ``IHOME_SESSION_REDIS_TIMEOUT``) is never a login: not logged in, and on API paths iHome's
  DBERR, as with the database down. The verdict is never cached; the cache below keeps the SQL
  id and name only. The cookie is not deleted then: a fresh cookie the browser got meanwhile (a
  password change answers with one) must not be deleted by a slower request's answer.
- **Lookup.** ``mobile = '<11 digits>'`` (the unique index). On a miss, rows whose mobile *with
  surrounding white space removed* is that number are looked for too (legacy rows: the seed's
  ``re.match`` let ``"13812345678 "`` through, which SQLite stored as is); exactly one such row is
  that user, several are ambiguous and the request is "not logged in" (logged, never guessed).
  The exact row always wins over a variant. On MySQL/MariaDB with a ``PAD SPACE`` collation (all
  of MariaDB's defaults, MySQL 5.7's) ``=`` already ignores trailing spaces, and the unique index
  too, so a trailing-space row is found by the first query and cannot coexist with a clean one;
  MySQL 8's ``utf8mb4_0900_ai_ci`` is ``NO PAD`` and behaves as SQLite. The legacy row is used as
  it is; its mobile is not rewritten.
- **First sight.** No row: the hook inserts one as the seed's register view did: ``name`` = the
  mobile (or, when another user has taken that name, the first free of ``<mobile>_2`` ..
  ``<mobile>_9``, else ``<mobile>_<4 hex>``), ``mobile`` = the 11 digits, ``password_hash`` =
  ``NO_PASSWORD``, other columns their defaults. ``NO_PASSWORD`` contains no ``$``, so werkzeug's
  ``check_password_hash`` (iHome's ``User.check_password``) returns False for every password,
  without raising: the site's own login can never let anyone in as this user; they log in through
  the function.
- **Exactly once.** The unique index on ``mobile`` is the arbiter, on both databases: every
  worker that saw no row inserts; one insert wins, the others get an ``IntegrityError``, roll
  back, and read the winner's row in a new transaction. On MySQL/InnoDB a second insert of the same
  key waits on the first's lock until it commits (then fails as a duplicate) or rolls back (then
  goes on); a deadlock or lock wait timeout (1213, 1205) is retried. On SQLite the database lock
  serialises the inserts (the driver waits up to its ``timeout``, 5 s by default, for the lock);
  "database is locked" is retried. At most 5 tries, then the request gets "database down".
  A name clash is told apart from a lost race by re-reading: no row for the mobile means the name
  was taken, and the next variant is tried.
- **Cache.** The result is kept in Flask's session with the cookie's ``jti``: later requests of
  that session with the same token cost no query, in any worker. It is looked up again when the
  token changes, when Flask's session is lost, or after ``IHOME_SESSION_RECHECK_SECONDS``;
  ``session["name"]`` is then taken from the row again, so a rename (which updates the row and
  ``session["name"]``) survives, in this browser and others.
- **Deleted row: re-provisioned.** A valid cookie whose row was deleted gets a new row (a new id,
  never the old one: see SQLite above) at its next lookup; until then views find no row for the
  cached id and answer as for a missing user (iHome: ``NODATA``). Why: the function's store is
  the source of truth for who has an account, and the SQL row is the site's copy of it; without a
  tombstone the hook cannot tell "deleted" from "never seen", and a "not logged in" that a fresh
  browser would undo is no policy. To take an account away, remove it from the function's store
  (and its sessions end at ``exp``; see docs/sessions.md on revocation), then the row.
- **Not logged in.** A missing, tampered, expired or foreign cookie, one signed with a key not
  held, or one without a mobile: the login state that came from a cookie is dropped, nothing is
  raised, nothing of the token is logged. A login made by Flask itself (no cookie) is left alone.
- **Logging out.** When a view logs the user out (``session.clear()``) or in as someone else, the
  cookie is deleted in the same response, so the next request does not log them back in.
- **Database down.** The login state is dropped; a request under ``IHOME_SESSION_API_PREFIX``
  gets ``{"errno": "4001", "errmsg": "数据库异常"}`` (HTTP 200, as iHome's views answer) instead of
  running the view, so nobody is told they are logged out when they are not; other paths (pages)
  are served not logged in.
- **Logs** name the error's class and code and the mobile masked (``138****5678``); never a token,
  a key, a full mobile or an SQL statement with its parameters.
"""

import binascii
import hashlib
import logging
import numbers
import os
import re
import time

import jwt
import redis
import sqlalchemy as sa
from flask import g, jsonify, request, session

LEEWAY_SECONDS = 60  # clock skew tolerated on exp, as the Rust verifier
MIN_KEY_BYTES = 32
FIELDS = ("user_id", "name", "mobile")
MARK = "ihome_session"  # {"jti", "id", "at"}: set when the login state came from the cookie
NO_PASSWORD = "!registered-through-the-function"  # no "$": no werkzeug hash, never verifies
MOBILE = re.compile(r"1[3-9][0-9]{9}\Z")  # with .match: the whole string
ATTEMPTS = 5
MYSQL_RETRY = {1205, 1213}  # lock wait timeout, deadlock
REDIS_TIMEOUT_SECONDS = 0.5  # connect and read: a slow Redis is a Redis error, not a slow site
ENDED = "session_ended:"  # + jti: "1" once that one session was logged out
USER = "session_user:"  # + sub: the user's session version; tokens with a lower sv are ended

log = logging.getLogger(__name__)
try:
    STRINGS = (str, unicode)  # noqa: F821  (Python 2)
except NameError:
    STRINGS = (str,)
SA_1_3 = tuple(int(p) for p in sa.__version__.split(".")[:2]) < (1, 4)  # select([...]), no .all()


def key_id(secret):
    """The header's kid: lowercase hex of the first 8 bytes of SHA-256 over the key's bytes."""
    return binascii.hexlify(hashlib.sha256(secret).digest()[:8]).decode("ascii")


def mask(mobile):
    """A mobile as logs may show it: 138****5678."""
    if isinstance(mobile, STRINGS) and len(mobile) >= 7:
        return mobile[:3] + "****" + mobile[-4:]
    return "?"


class ModelError(ValueError):
    """The app's model or database cannot back the hook; the message says what to change."""


class ResolveError(Exception):
    """The database did not answer (or kept refusing) while resolving a user."""


def _key_bytes(secret):
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


class SessionVerifier(object):
    def __init__(self, secrets_, issuer="ihome"):
        keys = [_key_bytes(s) for s in secrets_ if s]
        if not keys:
            raise ValueError("no session key configured (JWT_SECRET)")
        if any(len(k) < MIN_KEY_BYTES for k in keys):
            raise ValueError("a session key is shorter than 32 bytes")
        self.keys = dict((key_id(k), k) for k in keys)
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
            elif isinstance(kid, STRINGS) and kid in self.keys:
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
                    )
                except jwt.InvalidSignatureError:
                    continue
                return claims if _well_formed(claims) else None
            return None
        except jwt.InvalidTokenError:
            return None
        except Exception as e:  # a malformed cookie must never become a 500
            log.warning("session cookie refused: %s", type(e).__name__)
            return None


def _well_formed(claims):
    """exp, iat, iss present (PyJWT checks them when present: 2.x's options={"require": ...}
    does not exist in 1.x); sub and jti non-empty strings (they name Redis keys); sv, when
    present, an integer >= 0."""
    if not all(name in claims for name in ("exp", "iat", "iss")):
        return False
    for name in ("sub", "jti"):
        if not (isinstance(claims.get(name), STRINGS) and claims[name]):
            return False
    sv = claims.get("sv", 0)
    return isinstance(sv, numbers.Integral) and not isinstance(sv, bool) and sv >= 0


class StoreError(Exception):
    """Redis did not answer the session-state check (down, timed out, refused)."""


class SessionState(object):
    """The server-side state of sessions, as the function writes it (docs/sessions.md, "What ends
    a session"): ``session_ended:<jti>`` once that session was logged out, ``session_user:<sub>``
    the user's session version. One ``MGET`` per request; nothing of the answer is kept."""

    LIVE, ENDED, UNKNOWN = "live", "ended", "unknown"

    def __init__(self, client):
        self.client = client

    def check(self, claims):
        """LIVE, ENDED or UNKNOWN (the user's record is missing: Redis lost it) for a verified
        token's claims; raises StoreError when Redis does not answer."""
        try:
            ended, version = self.client.mget([ENDED + claims["jti"], USER + claims["sub"]])
        except Exception as e:  # redis.RedisError, or anything else: never accept then
            raise StoreError(type(e).__name__)
        if ended is not None:
            return self.ENDED
        if version is None:
            return self.UNKNOWN
        try:
            current = int(version)
        except (TypeError, ValueError):
            log.error("session store: a session version that is not an integer: not logged in")
            return self.UNKNOWN
        return self.ENDED if claims.get("sv", 0) < current else self.LIVE


def _string_length(column):
    return getattr(column.type, "length", None)


def _is_unique(table, column):
    if column.unique or (column.primary_key and len(table.primary_key.columns) == 1):
        return True
    for index in table.indexes:
        if index.unique and list(index.columns) == [column]:
            return True
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and list(constraint.columns) == [column]:
            return True
    return False


class Users:
    """The app's users table as the hook reads and writes it (SQLAlchemy Core, its own
    connections: the view's ``db.session`` is never touched)."""

    def __init__(self, engine, model, password_attr="password_hash"):
        self.engine = engine
        self.table, self.cols, problems = self._check(model, password_attr)
        if engine.dialect.name == "sqlite":
            problems += self._check_sqlite()
        if problems:
            raise ModelError(
                "ihome_session.init_app: the model {0!r} cannot back the session hook:\n- "
                .format(getattr(model, "__name__", model)) + "\n- ".join(problems))
        self.name_unique = _is_unique(self.table, self.cols["name"])

    @staticmethod
    def _check(model, password_attr):
        try:
            mapper = sa.inspect(model)
            table = mapper.local_table
        except Exception:
            return None, {}, ["{0!r} is not a mapped SQLAlchemy model (db.Model)".format(model)]
        problems, cols = [], {}
        for attr in ("id", "mobile", "name", password_attr):
            column = mapper.columns.get(attr)
            if column is None:
                problems.append("no column attribute {0!r}".format(str(attr)))
            else:
                cols[attr] = column
        if "id" in cols:
            if list(table.primary_key.columns) != [cols["id"]]:
                problems.append("'id' must be the table's one primary key column")
            if not isinstance(cols["id"].type, sa.Integer):
                problems.append("'id' must be an integer column (the site's user ids are integers)")
        for attr, least in (("mobile", 11), ("name", 11), (password_attr, len(NO_PASSWORD))):
            column = cols.get(attr)
            if column is None:
                continue
            if not isinstance(column.type, sa.String):
                problems.append("{0!r} must be a string column".format(str(attr)))
            elif (_string_length(column) or least) < least:
                problems.append("{0!r} must hold at least {1} characters".format(str(attr), least))
        if "mobile" in cols and not _is_unique(table, cols["mobile"]):
            problems.append("'mobile' must be unique (unique=True, or a unique index on it alone): "
                            "the database refusing a second row makes creation exactly-once")
        name = cols.get("name")
        if name is not None and _is_unique(table, name) and (_string_length(name) or 16) < 16:
            problems.append("'name' is unique, so it must hold at least 16 characters "
                            "(room for a free variant of the mobile, 13812345678_2)")
        for column in table.columns:
            if column in cols.values() or column.nullable or column.primary_key:
                continue
            if column.default is None and column.server_default is None:
                problems.append("NOT NULL column {0!r} has no default: the hook could not "
                                "create a user row".format(str(column.name)))
        return table, cols, problems

    def _check_sqlite(self):
        problems = []
        if not self.table.dialect_options["sqlite"]["autoincrement"]:
            problems.append("on SQLite, declare __table_args__ = {'sqlite_autoincrement': True}: "
                            "without AUTOINCREMENT a deleted user's id goes to the next new user")
        with self.engine.connect() as conn:
            sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND "
                                       "name = :name"), {"name": self.table.name}).scalar()
        if sql is not None and "AUTOINCREMENT" not in sql.upper():
            problems.append("on SQLite, the existing table {0!r} was created without "
                            "AUTOINCREMENT: recreate it (copy the rows over)"
                            .format(str(self.table.name)))
        return problems

    def _columns(self):
        c = self.cols
        return _select(c["id"], c["name"], c["mobile"])

    def find(self, conn, mobile):
        """(id, name) of the row for mobile, None if there is none; raises LookupError when
        several legacy rows could be it."""
        rows = conn.execute(self._columns().where(self.cols["mobile"] == mobile)).fetchall()
        if len(rows) == 1:
            return int(rows[0].id), rows[0].name
        if len(rows) > 1:  # only without a unique index; init_app refuses that model
            raise LookupError(len(rows))
        like = self._columns().where(self.cols["mobile"].like("%" + mobile + "%"))
        rows = [r for r in conn.execute(like).fetchall() if r.mobile.strip() == mobile]
        if len(rows) > 1:
            raise LookupError(len(rows))
        return (int(rows[0].id), rows[0].name) if rows else None

    def free_name(self, conn, mobile):
        if not self.name_unique:
            return mobile
        wanted = [mobile] + ["{0}_{1}".format(mobile, k) for k in range(2, 10)]
        taken = set(row[0] for row in conn.execute(_select(self.cols["name"]).where(
            self.cols["name"].in_(wanted))).fetchall())
        free = [n for n in wanted if n not in taken]
        if free:
            return free[0]
        return "{0}_{1}".format(mobile, binascii.hexlify(os.urandom(2)).decode("ascii"))

    def resolve(self, mobile, password_attr):
        """(id, name) of mobile's row, created if there is none; None if ambiguous."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                # One transaction per try (conn.begin(): SQLAlchemy 1.1 to 2.x alike), a
                # fresh one, with a fresh snapshot, after a lost race.
                with self.engine.connect() as conn, conn.begin():
                    try:
                        found = self.find(conn, mobile)
                    except LookupError as n:
                        log.error("session for %s refused: %s legacy rows match its mobile",
                                  mask(mobile), n.args[0])
                        return None
                    if found is not None:
                        return found
                    name = self.free_name(conn, mobile)
                    result = conn.execute(self.table.insert().values({
                        self.cols["name"]: name, self.cols["mobile"]: mobile,
                        self.cols[password_attr]: NO_PASSWORD}))
                    user_id = int(result.inserted_primary_key[0])
                log.info("created user %d for %s", user_id, mask(mobile))  # committed
                return user_id, name
            except sa.exc.IntegrityError:
                # Another worker created the row first (read it next time round), or the name
                # was taken meanwhile (the next round picks another).
                log.info("user for %s: insert refused as a duplicate, reading again (try %d)",
                         mask(mobile), attempt)
            except sa.exc.OperationalError as e:
                code = getattr(e.orig, "args", [None])[0] if e.orig is not None else None
                retry = code in MYSQL_RETRY or (isinstance(code, str) and "locked" in code)
                if not retry:
                    raise ResolveError(_describe(e))
                log.info("user for %s: %s, trying again (try %d)", mask(mobile), _describe(e),
                         attempt)
            except sa.exc.SQLAlchemyError as e:
                raise ResolveError(_describe(e))
        raise ResolveError("gave up after {0} tries".format(ATTEMPTS))


def _select(*columns):
    """SELECT columns: select(a, b) since SQLAlchemy 1.4 (2.0 requires it), select([a, b])
    before."""
    return sa.select(list(columns)) if SA_1_3 else sa.select(*columns)


def _describe(e):
    """An SQLAlchemy error without its statement or parameters (they hold the mobile)."""
    orig = getattr(e, "orig", None)
    code = getattr(orig, "args", [None])[0] if orig is not None else None
    code = code if isinstance(code, int) else None
    return "{0}({1}{2})".format(type(e).__name__, type(orig).__name__ if orig else "",
                                " {0}".format(code) if code else "")


class SessionHook(object):
    """What init_app returns: ``verifier`` (``.keys``: kid -> key; log the kids, never the keys),
    ``users`` (the table the hook resolves against) and ``state`` (``.client``: the Redis client
    the session state is read with)."""

    def __init__(self, verifier, users, state):
        self.verifier = verifier
        self.users = users
        self.state = state

    @property
    def keys(self):
        return self.verifier.keys


def init_app(app, db, User, password_attr="password_hash"):
    """Installs the before/after-request hooks on ``app``; returns a ``SessionHook``. Raises
    ``ModelError`` when ``User`` (or, on SQLite, its table) cannot back the hook."""
    secrets_ = app.config.get("IHOME_JWT_SECRETS") or [
        os.environ.get("JWT_SECRET"),
        os.environ.get("JWT_SECRET_PREVIOUS"),
    ]
    issuer = app.config.get("IHOME_JWT_ISSUER") or os.environ.get("JWT_ISSUER") or "ihome"
    cookie = app.config.get("IHOME_SESSION_COOKIE", "__Host-session")
    recheck = float(app.config.get("IHOME_SESSION_RECHECK_SECONDS", 300))
    api_prefix = app.config.get("IHOME_SESSION_API_PREFIX", "/api/")
    verifier = SessionVerifier(secrets_, issuer)
    redis_url = app.config.get("IHOME_SESSION_REDIS_URL") or os.environ.get("REDIS_URL")
    if not redis_url:
        raise ValueError("no session store configured: IHOME_SESSION_REDIS_URL or REDIS_URL "
                         "(the Redis the function writes session_user:/session_ended: to)")
    timeout = float(app.config.get("IHOME_SESSION_REDIS_TIMEOUT", REDIS_TIMEOUT_SECONDS))
    state = SessionState(_redis_client(redis_url, timeout))
    if "sqlalchemy" not in app.extensions:
        raise ModelError("ihome_session.init_app: call db.init_app(app) first")
    with app.app_context():
        engine = _engine(db, User)
        users = Users(engine, User, password_attr)

    def drop_login():
        if MARK in session:  # the login state came from a cookie: it goes with it
            for field in FIELDS + (MARK,):
                session.pop(field, None)

    def refuse(status):
        """Not logged in; on an API path, iHome's DBERR when a store did not answer."""
        drop_login()
        if status == "down" and request.path.startswith(api_prefix):
            return jsonify(errno="4001", errmsg=u"数据库异常")
        return None

    @app.before_request
    def load_ihome_session():
        token = request.cookies.get(cookie)
        claims = verifier.claims(token) if token else None
        g.ihome_session_user = None
        mobile = claims.get("mobile") if claims else None
        if not (isinstance(mobile, STRINGS) and MOBILE.match(mobile)):
            if claims:
                log.warning("session cookie without a valid mobile: not logged in")
            drop_login()
            return None
        try:
            verdict = state.check(claims)
        except StoreError as e:
            log.error("session for %s not checked: session store %s", mask(mobile), e)
            return refuse("down")
        if verdict != SessionState.LIVE:
            log.info("session for %s refused: %s", mask(mobile), verdict)
            return refuse(verdict)
        mark = session.get(MARK)
        now = time.time()
        if (isinstance(mark, dict) and mark.get("jti") == claims["jti"]
                and type(session.get("user_id")) is int and mark.get("id") == session["user_id"]
                and session.get("mobile") == mobile and 0 <= now - mark.get("at", 0) < recheck):
            g.ihome_session_user = session["user_id"]
            return None
        try:
            found = users.resolve(mobile, password_attr)
        except ResolveError as e:
            log.error("session for %s not resolved: %s", mask(mobile), e)
            return refuse("down")
        if found is None:
            drop_login()
            return None
        user_id, name = found
        session["user_id"], session["name"], session["mobile"] = user_id, name, mobile
        session[MARK] = {"jti": claims["jti"], "id": user_id, "at": int(now)}
        g.ihome_session_user = user_id
        return None

    @app.after_request
    def forget_ihome_session(response):
        user_id = getattr(g, "ihome_session_user", None)  # g.pop: Flask 0.11 and later
        g.ihome_session_user = None
        if user_id is not None and session.get("user_id") != user_id:
            # The view logged out or in as someone else: the cookie must not log them back in.
            _delete_cookie(response, cookie)
            session.pop(MARK, None)
        return response

    return SessionHook(verifier, users, state)


def _redis_client(url, timeout):
    """A client for url whose every call fails within about ``timeout`` seconds: no retries
    (redis-py 6 and later retry a failed call 3 times with backoff by default)."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
               "retry_on_timeout": False}
    try:
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        options["retry"] = Retry(NoBackoff(), 0)
    except ImportError:  # redis-py before 4.0 does not retry
        pass
    return redis.Redis.from_url(url, **options)


def _engine(db, model):
    """The engine of model's bind: db.engines (Flask-SQLAlchemy 3), else db.get_engine (2.x).
    Not db.session.get_bind: Flask-SQLAlchemy 2.5's refuses SQLAlchemy 1.4's arguments."""
    table = sa.inspect(model).local_table
    key = getattr(model, "__bind_key__", None) or table.info.get("bind_key") or \
        table.metadata.info.get("bind_key")
    if hasattr(db, "engines"):
        return db.engines[key]
    return db.get_engine(bind=key)


def _delete_cookie(response, name):
    """Set-Cookie deleting the __Host- cookie (Secure and Path=/, or the browser ignores it)."""
    try:
        response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="Lax")
    except TypeError:  # Werkzeug before 2.0: delete_cookie takes no secure
        response.set_cookie(name, "", expires=0, max_age=0, path="/", secure=True, httponly=True)
