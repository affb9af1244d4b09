"""The iHome-shaped Flask site (ihome_site/) with the session hook, on a real database, behind one
front with the registration function. Run by scripts/site-test, which installs and starts what
this needs (Redis, the local DynamoDB server, MariaDB; chromium; jQuery) and runs the suite once
per database: SITE_DB=mariadb (MARIADB_URL: the server's URL without a database) or sqlite.

Pieces, each started once per run and polled for readiness (never a fixed wait):
- `database`: a fresh MariaDB database (utf8mb4, the server in strict mode) or SQLite file,
  seeded by `seed_users` (ihome_site/seed.py; override the fixture to seed others);
- `site`: the app under gunicorn, several sync workers (SITE_WORKERS, default 4);
- `front`: http://127.0.0.1:<port> (front.py), POST /api/v1.0/users and POST /api/v1.0/sessions
  to the function under `cargo lambda watch` (tests/browser/conftest.py's Function, on a fresh
  DynamoDB table), the rest to gunicorn: the routing after the cut-over (docs/migration.md).
  SITE_FUNCTION_LOGIN=0 leaves the login route to gunicorn, where the site has no login view;
- `make_app`: the same app in-process (Flask's test client), for what a test must count or break.
"""
import http.client
import importlib.util
import json
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import time
import uuid

import jwt
import pytest
import redis as redis_lib
import sqlalchemy as sa

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from front import Front  # noqa: E402
from ihome_site import create_app, seed  # noqa: E402
import ihome_session  # noqa: E402  (ihome_site put contrib/flask on the path)


def _browser_harness():
    """tests/browser/conftest.py as a module of its own name: its Stores, Function, poll and
    browser fixture serve here unchanged."""
    spec = importlib.util.spec_from_file_location("browser_harness",
                                                  ROOT / "tests" / "browser" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["browser_harness"] = module
    spec.loader.exec_module(module)
    return module


harness = _browser_harness()
poll, free_port, random_mobile = harness.poll, harness.free_port, harness.random_mobile
browser = harness.browser  # headless Chromium, a fresh profile, zh-CN
JWT_SECRET = harness.JWT_SECRET  # the function's key, so the hook's too
SECRET_KEY = secrets.token_hex(32)  # Flask's session key, shared by gunicorn and make_app
DB_KIND = os.environ.get("SITE_DB", "sqlite")
COOKIE = "__Host-session"
PASSWORD = "correct horse battery"
REGISTERED = []  # every mobile registered through the function in this run (the log check)
REDIS = redis_lib.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
SESSION_TTL = 86400 + 60  # the function's session_user:<sub> expiry (SESSION_TTL_SECONDS + 60)
LANDLORD, PLAIN = seed.USERS  # user #1: real name, ID card, a house; user #2


def secrets_of(user):
    """What no other user may ever be shown of a seeded `user`."""
    found = [user["mobile"], user["name"], user.get("real_name"), user.get("id_card"),
             *[h["title"] for h in user.get("houses", [])]]
    return [s for s in found if s]


def own_row(database, mobile):
    """The one SQL row of `mobile`, with an integer id."""
    rows = database.users(mobile)
    assert len(rows) == 1, rows
    row = rows[0]
    assert type(row["id"]) is int and row["mobile"] == mobile
    return row


class Database:
    """A fresh database of the kind under test, and the test's own view of it."""

    def __init__(self, kind, rundir):
        self.kind = kind
        tag = secrets.token_hex(4)
        if kind == "mariadb":
            base = os.environ["MARIADB_URL"]
            self.name = f"ihome_site_{tag}"
            admin = sa.create_engine(f"{base}/?charset=utf8mb4")
            with admin.begin() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4")
            admin.dispose()
            self.url = f"{base}/{self.name}?charset=utf8mb4"
        elif kind == "sqlite":
            self.path = rundir / f"ihome-{tag}.db"
            self.url = f"sqlite:///{self.path}"
        else:
            raise AssertionError(f"SITE_DB={kind}: mariadb or sqlite")
        self.engine = sa.create_engine(self.url)

    def rows(self, sql, **params):
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]

    def execute(self, sql, **params):
        with self.engine.begin() as conn:
            return conn.execute(sa.text(sql), params).rowcount

    def users(self, mobile):
        """Every user row whose mobile contains `mobile` (legacy spaces included)."""
        return self.rows("SELECT * FROM ih_user_profile WHERE mobile LIKE :m ORDER BY id",
                         m=f"%{mobile}%")

    def user(self, user_id):
        found = self.rows("SELECT * FROM ih_user_profile WHERE id = :id", id=user_id)
        return found[0] if found else None

    def drop(self):
        self.engine.dispose()
        if self.kind == "mariadb":
            admin = sa.create_engine(f"{os.environ['MARIADB_URL']}/")
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE {self.name}")
            admin.dispose()


class Site:
    """The app under gunicorn, `workers` sync workers, its log in rundir/gunicorn.log."""

    def __init__(self, database, rundir, workers):
        self.port = free_port()
        self.log_path = rundir / "gunicorn.log"
        self.log = open(self.log_path, "w")
        env = {**os.environ, "SITE_DB_URL": database.url, "SITE_SECRET_KEY": SECRET_KEY,
               "JWT_SECRET": JWT_SECRET}
        env.pop("JWT_SECRET_PREVIOUS", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "sync",
             "-b", f"127.0.0.1:{self.port}", "--chdir", str(HERE), "--timeout", "60",
             "--access-logfile", "-", "--log-level", "info", "ihome_site:create_app()"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        poll("gunicorn", self.ready, 60)

    def ready(self):
        assert self.proc.poll() is None, f"gunicorn exited: see {self.log_path}"
        try:
            status, _, body = self.request("GET", "/api/v1.0/session")
            return status == 200 and b'"errno"' in body
        except OSError:
            return False

    def request(self, method, path, headers=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def log_text(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="session")
def rundir():
    path = ROOT / ".run" / f"site-{DB_KIND}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def seed_users():
    return seed.USERS


@pytest.fixture(scope="session")
def database(rundir, seed_users):
    db = Database(DB_KIND, rundir)
    try:
        db.seeded = seed.seed(create_app(db.url, SECRET_KEY, IHOME_JWT_SECRETS=[JWT_SECRET]),
                              seed_users)
        yield db
    finally:
        db.drop()


@pytest.fixture(scope="session")
def site(database, rundir):
    server = Site(database, rundir, int(os.environ.get("SITE_WORKERS", "4")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stores():
    return harness.Stores()


@pytest.fixture(scope="session")
def front(stores, site, rundir):
    made = Front(site.port, function_login=os.environ.get("SITE_FUNCTION_LOGIN", "1") != "0")
    try:
        made.function = harness.Function(stores, "ihome", made.origin, rundir)
        yield made
    finally:
        made.stop()
        if made.function is not None:
            made.function.stop()


@pytest.fixture
def make_app(database):
    """The site's app in this process, on the database under test; config overrides allowed."""
    def make(**config):
        return create_app(database.url, SECRET_KEY, IHOME_JWT_SECRETS=[JWT_SECRET], **config)
    return make


def register(front, stores, mobile):
    """Registers `mobile` through the front, as the register page does; returns the JWT the
    function set as __Host-session, after checking the user is stored in DynamoDB."""
    stores.set_code(mobile, "246810")
    body = json.dumps({"mobile": mobile, "sms_code": "246810", "password": PASSWORD,
                       "password2": PASSWORD})
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=60)
    try:
        conn.request("POST", "/api/v1.0/users", body=body,
                     headers={"content-type": "application/json", "origin": front.origin})
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        cookies = resp.headers.get_all("set-cookie") or []
    finally:
        conn.close()
    assert answer["code"] == "registered", answer
    token = [c.split(";")[0].split("=", 1)[1] for c in cookies if c.startswith(COOKIE + "=")]
    assert len(token) == 1, cookies
    assert stored_item(stores, mobile) is not None, "the function stored the user"
    REGISTERED.append(mobile)
    return token[0]


def stored_item(stores, mobile):
    """The user's DynamoDB item, each attribute's value as stored (S a str, N an int, BOOL a
    bool), or None. (The browser harness's Stores.item reads string attributes only; the item
    now holds session_version, a number, and may hold disabled, a bool.)"""
    got = stores.ddb.get_item(TableName=stores.table, Key={"mobile": {"S": mobile}},
                              ConsistentRead=True).get("Item")
    if got is None:
        return None
    plain = {}
    for name, value in got.items():
        (kind, raw), = value.items()
        plain[name] = int(raw) if kind == "N" else raw
    return plain


def mint(number, key=JWT_SECRET, version=0, **claims):
    """A session for the mobile `number` as the function signs it (claims overridable, the
    mobile claim too; None drops one), and its user's session version in Redis as the function
    writes it at a login (`session_user:<sub>` = `version`; None writes nothing)."""
    now = int(time.time())
    body = {"sub": str(uuid.uuid4()), "name": number, "mobile": number, "iat": now,
            "exp": now + 86400, "iss": "ihome", "jti": secrets.token_hex(16), **claims}
    body = {k: v for k, v in body.items() if v is not None}
    if version is not None and isinstance(body.get("sub"), str):
        REDIS.set(f"session_user:{body['sub']}", str(version), ex=SESSION_TTL)
    return jwt.encode(body, key, algorithm="HS256",
                      headers={"kid": ihome_session.key_id(key.encode())})


def claims_of(token):
    """The claims of a token (the test's own reading; the hook verifies)."""
    return jwt.decode(token, options={"verify_signature": False})


class Visitor:
    """One browser as Flask's test client plays it: the function's cookie, Flask's session
    cookie, the csrf_token cookie from a page, sent back as X-CSRFToken."""
    BASE = "https://localhost"  # __Host-session is Secure: the client sends it over https only

    def __init__(self, app, token=None):
        self.client = app.test_client()
        if token:
            self.set_token(token)
        self.csrf = None

    def set_token(self, token):
        self.client.set_cookie(COOKIE, token, secure=True, httponly=True)

    def page(self, name="index.html"):
        resp = self.client.get("/" + name, base_url=self.BASE)
        assert resp.status_code == 200, resp.status_code
        self.csrf = self.client.get_cookie("csrf_token").value
        return resp

    def api(self, method, path, data=None):
        if self.csrf is None and method != "GET":
            self.page()
        resp = self.client.open("/api/v1.0" + path, method=method, json=data,
                                base_url=self.BASE,
                                headers={"X-CSRFToken": self.csrf or "",
                                         "Referer": self.BASE + "/"})
        assert resp.status_code == 200, (path, resp.status_code, resp.data[:200])
        return resp.get_json()
