"""Let the Flask side of iHome accept the registration function's session cookie.

The function answers a registration with ``__Host-session=<JWT>`` (HS256, docs/sessions.md). The
rest of iHome (profile, rename, real-name check, houses, orders) is Flask views over the site's
SQL database, keyed by the integer ``ih_user_profile.id``, and they read the login state from
``session["user_id"]`` (``@login_required``). This hook, run before every request, verifies the
cookie and gives those views **the site's own row for that person**: it finds the SQL user by the
cookie's ``mobile`` (unique in both stores) and sets ``session["user_id"]`` to that row's integer
id, ``session["name"]`` to that row's name, ``session["mobile"]`` to the mobile. The cookie's
``sub`` (the function's UUIDv7) never reaches ``session``.

Install::

    pip install PyJWT==2.15.1 Flask-SQLAlchemy==3.1.1   # the versions scripts/requirements.txt pins
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

Behaviour:

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

import hashlib
import logging
import os
import re
import secrets
import time

import jwt
import sqlalchemy as sa
from flask import g, jsonify, request, session

LEEWAY_SECONDS = 60  # clock skew tolerated on exp, as the Rust verifier
MIN_KEY_BYTES = 32
FIELDS = ("user_id", "name", "mobile")
MARK = "ihome_session"  # {"jti", "id", "at"}: set when the login state came from the cookie
NO_PASSWORD = "!registered-through-the-function"  # no "$": no werkzeug hash, never verifies
MOBILE = re.compile(r"1[3-9][0-9]{9}")
ATTEMPTS = 5
MYSQL_RETRY = {1205, 1213}  # lock wait timeout, deadlock

log = logging.getLogger(__name__)


def key_id(secret):
    """The header's kid: lowercase hex of the first 8 bytes of SHA-256 over the key's bytes."""
    return hashlib.sha256(secret).digest()[:8].hex()


def mask(mobile):
    """A mobile as logs may show it: 138****5678."""
    return f"{mobile[:3]}****{mobile[-4:]}" if isinstance(mobile, str) and len(mobile) >= 7 else "?"


class ModelError(ValueError):
    """The app's model or database cannot back the hook; the message says what to change."""


class ResolveError(Exception):
    """The database did not answer (or kept refusing) while resolving a user."""


class SessionVerifier:
    def __init__(self, secrets_, issuer="ihome"):
        keys = [s.encode() if isinstance(s, str) else bytes(s) for s in secrets_ if s]
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
                f"ihome_session.init_app: the model {getattr(model, '__name__', model)!r} cannot "
                "back the session hook:\n- " + "\n- ".join(problems))
        self.name_unique = _is_unique(self.table, self.cols["name"])

    @staticmethod
    def _check(model, password_attr):
        try:
            mapper = sa.inspect(model)
            table = mapper.local_table
        except Exception:
            return None, {}, [f"{model!r} is not a mapped SQLAlchemy model (db.Model)"]
        problems, cols = [], {}
        for attr in ("id", "mobile", "name", password_attr):
            column = mapper.columns.get(attr)
            if column is None:
                problems.append(f"no column attribute {attr!r}")
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
                problems.append(f"{attr!r} must be a string column")
            elif (_string_length(column) or least) < least:
                problems.append(f"{attr!r} must hold at least {least} characters")
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
                problems.append(f"NOT NULL column {column.name!r} has no default: "
                                "the hook could not create a user row")
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
            problems.append(f"on SQLite, the existing table {self.table.name!r} was created "
                            "without AUTOINCREMENT: recreate it (copy the rows over)")
        return problems

    def _columns(self):
        c = self.cols
        return sa.select(c["id"], c["name"], c["mobile"])

    def find(self, conn, mobile):
        """(id, name) of the row for mobile, None if there is none; raises LookupError when
        several legacy rows could be it."""
        rows = conn.execute(self._columns().where(self.cols["mobile"] == mobile)).all()
        if len(rows) == 1:
            return int(rows[0].id), rows[0].name
        if len(rows) > 1:  # only without a unique index; init_app refuses that model
            raise LookupError(len(rows))
        like = self._columns().where(self.cols["mobile"].like(f"%{mobile}%"))
        rows = [r for r in conn.execute(like).all() if r.mobile.strip() == mobile]
        if len(rows) > 1:
            raise LookupError(len(rows))
        return (int(rows[0].id), rows[0].name) if rows else None

    def free_name(self, conn, mobile):
        if not self.name_unique:
            return mobile
        wanted = [mobile] + [f"{mobile}_{k}" for k in range(2, 10)]
        taken = set(conn.execute(sa.select(self.cols["name"]).where(
            self.cols["name"].in_(wanted))).scalars())
        free = [n for n in wanted if n not in taken]
        return free[0] if free else f"{mobile}_{secrets.token_hex(2)}"

    def resolve(self, mobile, password_attr):
        """(id, name) of mobile's row, created if there is none; None if ambiguous."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.engine.connect() as conn:
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
                    conn.commit()
                    log.info("created user %d for %s", user_id, mask(mobile))
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
                    raise ResolveError(_describe(e)) from None
                log.info("user for %s: %s, trying again (try %d)", mask(mobile), _describe(e),
                         attempt)
            except sa.exc.SQLAlchemyError as e:
                raise ResolveError(_describe(e)) from None
        raise ResolveError(f"gave up after {ATTEMPTS} tries")


def _describe(e):
    """An SQLAlchemy error without its statement or parameters (they hold the mobile)."""
    orig = getattr(e, "orig", None)
    code = getattr(orig, "args", [None])[0] if orig is not None else None
    code = code if isinstance(code, int) else None
    return f"{type(e).__name__}({type(orig).__name__ if orig else ''}{f' {code}' if code else ''})"


class SessionHook:
    """What init_app returns: ``verifier`` (``.keys``: kid -> key; log the kids, never the keys)
    and ``users`` (the table the hook resolves against)."""

    def __init__(self, verifier, users):
        self.verifier = verifier
        self.users = users

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
    if "sqlalchemy" not in app.extensions:
        raise ModelError("ihome_session.init_app: call db.init_app(app) first")
    with app.app_context():
        engine = db.session.get_bind(mapper=sa.inspect(User))
        users = Users(engine, User, password_attr)

    def drop_login():
        if MARK in session:  # the login state came from a cookie: it goes with it
            for field in (*FIELDS, MARK):
                session.pop(field, None)

    @app.before_request
    def load_ihome_session():
        token = request.cookies.get(cookie)
        claims = verifier.claims(token) if token else None
        g.ihome_session_user = None
        mobile = claims.get("mobile") if claims else None
        if not (isinstance(mobile, str) and MOBILE.fullmatch(mobile)):
            if claims:
                log.warning("session cookie without a valid mobile: not logged in")
            drop_login()
            return None
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
            drop_login()
            if request.path.startswith(api_prefix):
                return jsonify(errno="4001", errmsg="数据库异常")
            return None
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
        user_id = g.pop("ihome_session_user", None)
        if user_id is not None and session.get("user_id") != user_id:
            # The view logged out or in as someone else: the cookie must not log them back in.
            response.delete_cookie(cookie, path="/", secure=True, httponly=True, samesite="Lax")
            session.pop(MARK, None)
        return response

    return SessionHook(verifier, users)
