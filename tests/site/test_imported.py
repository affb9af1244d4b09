"""The cut-over, end to end (issue 15, section 3): users of the old Flask site, their passwords
hashed by werkzeug's own generate_password_hash in the versions the site ran, are brought into the
function's table by the real `ihome-import` binary, then log in with their old password in
headless Chromium on the iHome-shaped site, through the function, and find what they had.

This module runs its own stack, built as conftest.py builds the session's (the same app, hook,
front and function): a fresh database of the kind under test (SITE_DB) holding only the legacy
users below, gunicorn, a front that sends POST /api/v1.0/users AND POST /api/v1.0/sessions to
the function (what production routes after the cut-over), the function under `cargo lambda
watch` on a fresh DynamoDB table. Its own database, so the import's summary and report can be
checked exactly: the session's database holds whatever the other modules left in it.

The function's LOGIN_LIMIT_IP is raised (tests/browser/conftest.py's Function): `cargo lambda
watch` gives every request sourceIp 127.0.0.1, so every login of every check on this machine
within the hour would share one per-address count of 100. The per (mobile, address) and
per-mobile limits keep their defaults; every mobile here is fresh.
"""
import datetime
import importlib.util
import json
import os
import subprocess

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

import ihome_session
from conftest import (DB_KIND, JWT_SECRET, PASSWORD, SECRET_KEY, Database, ROOT, Site, harness,
                      own_row, random_mobile, register)
from front import LOGIN_ROUTE, Front
from ihome_site import create_app, db, seed
from ihome_site.models import Area, House, User
from test_browser import fill, log_out, open_page, publish, session_cookie, text_of, wait

SESSIONS = "/api/v1.0/sessions"
ARGON2ID = "$argon2id$v=19$m=19456,t=2,p=1$"
WRONG = "not the old password"


def _seed_script():
    """scripts/seed-legacy-users.py as a module: its werkzeug_hashes() runs werkzeug's own
    generate_password_hash in .venv/werkzeug-<version> (scripts/site-test installs them)."""
    spec = importlib.util.spec_from_file_location(
        "seed_legacy_users", ROOT / "scripts" / "seed-legacy-users.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The site's users before the function existed, each hashed by one werkzeug version's default;
# `created_at` is what the import makes of `created` (naive, read at its default +08:00).
# The first types full-width letters and digits (a Chinese input method in full-width mode):
# werkzeug hashed those bytes as typed, and so the function must verify them.
LEGACY = [
    {"key": "werkzeug 2.0.3 pbkdf2:sha256:260000", "werkzeug": "2.0.3", "method": None,
     "format": "pbkdf2:sha256:260000$", "password": "老密码ｐａｓｓ２０２１", "houses": 2,
     "created": datetime.datetime(2021, 5, 20, 20, 5, 21),
     "created_at": "2021-05-20T12:05:21.000Z"},
    # Stored with a trailing space (the seed's re.match let it through; MariaDB's VARCHAR(11)
    # drops it, SQLite keeps it): the import and the hook both find the 11 digits.
    {"key": "werkzeug 3.1.9 scrypt:32768:8:1", "werkzeug": "3.1.9", "method": None,
     "format": "scrypt:32768:8:1$", "password": "scrypt old pass 3.1", "houses": 1,
     "trailing_space": True,
     "created": datetime.datetime(2024, 6, 18, 23, 59, 59),
     "created_at": "2024-06-18T15:59:59.000Z"},
    {"key": "werkzeug 0.11.15 pbkdf2:sha1:1000", "werkzeug": "0.11.15", "method": None,
     "format": "pbkdf2:sha1:1000$", "password": "sha1 old pass 2015", "houses": 1,
     "created": datetime.datetime(2015, 3, 1, 9, 30), "created_at": "2015-03-01T01:30:00.000Z"},
]
# A hash werkzeug 0.11 made that werkzeug 3 cannot check (salted sha1): the import refuses it.
REFUSED = {"key": "werkzeug 0.11.15 salted sha1", "werkzeug": "0.11.15", "method": "sha1",
           "format": "sha1$", "password": "salted sha1 pass", "houses": 1,
           "created": datetime.datetime(2016, 1, 1)}


def make_legacy_users():
    """Fresh mobiles, names and house titles for this run; hashes by werkzeug itself."""
    script = _seed_script()
    users = [dict(spec) for spec in (*LEGACY, REFUSED)]
    for i, user in enumerate(users):
        user["mobile"] = random_mobile()
        user["stored_mobile"] = user["mobile"] + (" " if user.get("trailing_space") else "")
        user["name"] = f"老住户{i}_{user['mobile'][-4:]}"
        user["titles"] = [f"{user['name']}的房源{j}" for j in range(user["houses"])]
        user["hash"] = script.werkzeug_hashes(user["werkzeug"],
                                              [(user["method"], user["password"])])[0]
        assert user["hash"].startswith(user["format"]), (user["key"], user["hash"][:24])
    return users


def seed_legacy(app, users):
    """The site's tables and areas, then the users as the old site stored them (each a landlord
    who passed the real-name check, so myhouse.html lists their houses); sets each `id`."""
    seed.seed(app, [])
    with app.app_context():
        area = Area.query.filter_by(name="海淀区").one()
        for user in users:
            row = User(name=user["name"], mobile=user["stored_mobile"], password_hash=user["hash"],
                       real_name="王建国", id_card="11010119800101" + user["mobile"][-4:],
                       create_time=user["created"])
            db.session.add(row)
            for title in user["titles"]:
                fields = {**seed.HOUSE_DEFAULTS, "deposit": seed.HOUSE_DEFAULTS["deposit"] * 100}
                db.session.add(House(user=row, area=area, title=title, price=25800, **fields))
            db.session.flush()
            user["id"] = row.id
        db.session.commit()


def importer():
    """The `ihome-import` binary, built by cargo (a no-op when it is up to date)."""
    built = subprocess.run(
        ["cargo", "build", "-q", "-p", "ihome-import", "--locked", "--message-format=json"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stderr[-3000:]
    for line in built.stdout.splitlines():
        msg = json.loads(line)
        if (msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "ihome-import"
                and msg.get("executable")):
            return msg["executable"]
    raise AssertionError("cargo built no ihome-import binary")


class Stack:
    """The module's own database, site, function and front; the import's binary and runs."""

    def __init__(self, rundir):
        self.rundir = rundir
        self.users = make_legacy_users()
        self.mobiles = [u["mobile"] for u in self.users]  # every mobile used, for the log check
        self.legacy = {u["key"]: u for u in self.users}
        self.database = Database(DB_KIND, rundir)
        self.site = self.front = None
        try:
            self.app = create_app(self.database.url, SECRET_KEY, IHOME_JWT_SECRETS=[JWT_SECRET])
            seed_legacy(self.app, self.users)
            self.site = Site(self.database, rundir, 2)
            self.stores = harness.Stores()
            self.front = Front(self.site.port, function_login=True)
            self.front.function = harness.Function(self.stores, "ihome", self.front.origin, rundir)
            self.binary = importer()
            self.runs = []
        except BaseException:
            self.stop()
            raise

    def run_import(self):
        """Runs ihome-import over the site's whole ih_user_profile into the function's table:
        (exit status, stdout, the report's lines)."""
        report = self.rundir / f"import-{len(self.runs) + 1}.jsonl"
        env = {k: v for k, v in os.environ.items() if k != "IHOME_IMPORT_MYSQL_URL"}
        args = [self.binary, "--users-table", self.stores.table, "--report", str(report)]
        if DB_KIND == "mariadb":
            # From the environment, as docs/migration.md says (a URL in argv shows in `ps`).
            base = os.environ["MARIADB_URL"].replace("mysql+pymysql://", "mysql://", 1)
            env["IHOME_IMPORT_MYSQL_URL"] = f"{base}/{self.database.name}"
        else:
            args += ["--sqlite", str(self.database.path)]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        lines = [json.loads(line) for line in report.read_text().splitlines()]
        self.runs.append(done.stdout + done.stderr + report.read_text())
        return done.returncode, done.stdout, lines

    def item(self, mobile):
        """The function's item for `mobile`, every attribute (legacy_id is a number), or None."""
        got = self.stores.ddb.get_item(TableName=self.stores.table, Key={"mobile": {"S": mobile}},
                                       ConsistentRead=True).get("Item")
        return {k: next(iter(v.values())) for k, v in got.items()} if got else None

    def items(self):
        found, start = {}, {}
        while True:
            page = self.stores.ddb.scan(TableName=self.stores.table, ConsistentRead=True, **start)
            for raw in page["Items"]:
                found[raw["mobile"]["S"]] = {k: next(iter(v.values())) for k, v in raw.items()}
            if "LastEvaluatedKey" not in page:
                return found
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    def flask_session(self, driver):
        """The browser's Flask session, as the hook left it (signed, readable with the key)."""
        value = [c["value"] for c in driver.get_cookies() if c["name"] == "session"]
        assert len(value) == 1, driver.get_cookies()
        return self.app.session_interface.get_signing_serializer(self.app).loads(value[0])

    def sessions_exchanges(self):
        return [e for e in self.front.exchanges if e["path"] == SESSIONS]

    def stop(self):
        if self.front is not None:
            self.front.stop()
            if self.front.function is not None:
                self.front.function.stop()
        if self.site is not None:
            self.site.stop()
        self.database.drop()


@pytest.fixture(scope="module")
def stack(rundir):
    own = rundir / "imported"
    own.mkdir(exist_ok=True)
    made = Stack(own)
    yield made
    made.stop()


def summary_counts(lines):
    summary = dict(lines[-1])
    assert summary.pop("outcome") == "summary"
    summary.pop("seconds")
    return summary


def counts(read, imported=0, already_imported=0, by_function=0, rejected=0):
    return {"read": read, "imported": imported,
            "already_there": already_imported + by_function, "already_imported": already_imported,
            "registered_through_function": by_function, "rejected": rejected, "conflicts": 0,
            "conflicting_mobiles": 0, "failed": 0, "not_attempted": 0, "dry_run": False,
            "would_import": 0, "throttled_waits": 0, "slow_waits": 0}


def masked(mobile):
    return f"{mobile[:3]}****{mobile[-4:]}"


@pytest.fixture(scope="module")
def imported(stack):
    """The first import, before anyone logs in: every item as it was written."""
    status, stdout, lines = stack.run_import()
    refused = stack.legacy[REFUSED["key"]]
    assert (status, summary_counts(lines)) == (1, counts(4, imported=3, rejected=1)), stdout
    assert stdout.splitlines()[0] == ("read 4, imported 3, already there 0 (0 imported before, "
                                      "0 registered through the function), rejected 1, "
                                      "conflicts 0 (0 mobiles), failed 0")
    assert lines[:-1] == [{"outcome": "rejected", "id": refused["id"],
                           "mobile": masked(refused["mobile"]),
                           "reasons": ["password_hash_unsupported"]}]
    items = stack.items()
    assert sorted(items) == sorted(u["mobile"] for u in legacy_users(stack))
    for user in legacy_users(stack):
        item = items[user["mobile"]]
        assert (item["legacy_id"], item["name"], item["password_hash"], item["created_at"]) == \
            (str(user["id"]), user["name"], user["hash"], user["created_at"]), user["key"]
    return items


def legacy_users(stack):
    """The users the import brings, in LEGACY's order."""
    return [stack.legacy[spec["key"]] for spec in LEGACY]


def log_in_on_page(driver, stack, mobile, password):
    """Types into login.html and submits; returns the exchange the front passed to the function,
    once the page has dealt with the answer."""
    before = len(stack.sessions_exchanges())
    driver.get(f"{stack.front.origin}/login.html")
    fill(driver, {"mobile": mobile, "password": password})
    driver.find_element(By.ID, "login").click()
    exchange = wait(driver, lambda _: stack.sessions_exchanges()[before:])[-1]
    if exchange["code"] == "logged_in":
        wait(driver, EC.url_to_be(f"{stack.front.origin}/"))
        wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    else:
        wait(driver, EC.visibility_of_element_located((By.ID, "errmsg")))
    return exchange


def register_on_page(driver, stack, mobile, code):
    """Fills register.html and submits; returns the alert's text, or None once the page moved to
    index.html (registered)."""
    driver.get(f"{stack.front.origin}/register.html")
    fill(driver, {"mobile": mobile, "phonecode": code, "password": PASSWORD,
                  "password2": PASSWORD})
    driver.find_element(By.ID, "register").click()
    # An open alert blocks every other command: look for it first.
    got = wait(driver, lambda d: EC.alert_is_present()(d) or d.current_url.endswith("/index.html"))
    if got is True:
        return None
    text = got.text
    got.accept()
    return text


def houses_of(database, user_id):
    return database.rows("SELECT * FROM ih_house_info WHERE user_id = :u ORDER BY id", u=user_id)


def listed_houses(driver, stack):
    open_page(driver, stack.front, "myhouse.html")
    return [(int(h.get_attribute("data-house-id")), h.text)
            for h in driver.find_elements(By.CSS_SELECTOR, "li.house")]


def test_only_the_function_logs_anyone_in(stack):
    assert LOGIN_ROUTE in stack.front.routes
    # The site itself has no login view: straight to gunicorn, POST /api/v1.0/sessions is a 404.
    status, _, _ = stack.site.request("POST", SESSIONS, {"content-type": "application/json"},
                                      json.dumps({"mobile": "13800000001", "password": "x"}))
    assert status == 404


@pytest.mark.parametrize("key", [spec["key"] for spec in LEGACY])
def test_an_imported_user_logs_in_with_the_old_password_and_finds_their_houses(
        stack, imported, browser, key):
    user = stack.legacy[key]
    mobile, database = user["mobile"], stack.database
    rows = database.users(mobile)
    assert len(rows) == 1, rows
    row_before = rows[0]
    assert row_before["id"] == user["id"]
    # SQLite keeps the trailing space; MariaDB's VARCHAR(11) dropped it.
    assert row_before["mobile"] == (user["stored_mobile"] if DB_KIND == "sqlite" else mobile)
    houses_before = houses_of(database, user["id"])
    assert [h["title"] for h in houses_before] == user["titles"]
    users_before = database.rows("SELECT COUNT(*) AS n FROM ih_user_profile")[0]["n"]
    item_before = imported[mobile]

    # A wrong password: one message, no cookie, the werkzeug hash left as it is.
    exchange = log_in_on_page(browser, stack, mobile, WRONG)
    assert (exchange["status"], exchange["code"]) == (200, "bad_credentials")
    assert text_of(browser, "errmsg") == "用户名或密码错误"
    assert session_cookie(browser) == []
    assert stack.item(mobile) == item_before

    # The old password, exactly as typed on the old site: logged in, through the function.
    exchange = log_in_on_page(browser, stack, mobile, user["password"])
    assert (exchange["status"], exchange["code"]) == (200, "logged_in")
    assert exchange["headers"]["sec-fetch-site"] == "same-origin"
    assert text_of(browser, "user-name") == user["name"]
    cookie = session_cookie(browser)
    assert len(cookie) == 1 and cookie[0]["httpOnly"] and cookie[0]["secure"]
    claims = harness.verify_jwt(cookie[0]["value"])
    assert (claims["sub"], claims["name"], claims["mobile"]) == \
        (item_before["user_id"], user["name"], mobile)

    # The hook joined the cookie to their old row: the same SQL id, no new row.
    assert stack.flask_session(browser)["user_id"] == user["id"]
    open_page(browser, stack.front, "my.html")
    assert (text_of(browser, "user-name"), text_of(browser, "user-mobile")) == \
        (user["name"], mobile)
    assert stack.flask_session(browser)["user_id"] == user["id"]

    # Their houses, as before, under the same id.
    assert listed_houses(browser, stack) == [(h["id"], h["title"]) for h in houses_before]
    assert houses_of(database, user["id"]) == houses_before
    assert database.users(mobile) == [row_before]
    assert database.rows("SELECT COUNT(*) AS n FROM ih_user_profile")[0]["n"] == users_before

    # The function's item: argon2id now, everything else as the import wrote it.
    item = stack.item(mobile)
    assert item["password_hash"].startswith(ARGON2ID), key
    assert {k: v for k, v in item.items() if k != "password_hash"} == \
        {k: v for k, v in item_before.items() if k != "password_hash"}

    # The same number cannot register again, even with a valid SMS code.
    stack.stores.set_code(mobile, "864209")
    assert register_on_page(browser, stack, mobile, "864209") == "手机号已存在"
    refused = [e for e in stack.front.exchanges if e["path"] == "/api/v1.0/users"][-1]
    assert (refused["status"], refused["code"]) == (200, "mobile_exists")
    assert stack.item(mobile) == item, "no second account, the upgraded hash kept"
    assert database.users(mobile) == [row_before]


def test_a_row_the_import_refused_cannot_log_in_and_its_number_registers_anew(
        stack, imported, browser):
    user = stack.legacy[REFUSED["key"]]
    mobile = user["mobile"]
    exchange = log_in_on_page(browser, stack, mobile, user["password"])
    assert (exchange["status"], exchange["code"]) == (200, "bad_credentials")
    assert text_of(browser, "errmsg") == "用户名或密码错误"
    assert stack.item(mobile) is None and session_cookie(browser) == []

    # As docs/migration.md says, the number is free in the function: its holder registers, and
    # the hook joins the new account to the old row by mobile (their houses follow the number).
    stack.stores.set_code(mobile, "975310")
    assert register_on_page(browser, stack, mobile, "975310") is None
    item = stack.item(mobile)
    assert "legacy_id" not in item and item["password_hash"].startswith(ARGON2ID)
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert text_of(browser, "user-name") == user["name"]
    assert stack.flask_session(browser)["user_id"] == user["id"]
    assert [t for _, t in listed_houses(browser, stack)] == user["titles"]
    assert [r["id"] for r in stack.database.users(mobile)] == [user["id"]]


def test_a_user_registered_through_the_function_logs_out_and_back_in_as_the_same_person(
        stack, browser):
    front, database = stack.front, stack.database
    mobile = random_mobile()
    stack.mobiles.append(mobile)
    stack.stores.set_code(mobile, "135790")
    assert register_on_page(browser, stack, mobile, "135790") is None
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert text_of(browser, "user-name") == mobile
    me = own_row(database, mobile)
    assert me["password_hash"] == ihome_session.NO_PASSWORD
    item = stack.item(mobile)

    # A new name and the real-name check (myhouse.html needs it), then a house.
    new_name = "新租客" + mobile[-4:]
    open_page(browser, front, "profile.html")
    fill(browser, {"new-name": new_name})
    browser.find_element(By.ID, "save-name").click()
    wait(browser, EC.visibility_of_element_located((By.ID, "saved")))
    open_page(browser, front, "auth.html")
    fill(browser, {"real-name": "赵六", "id-card": "440301199501016789"})
    browser.find_element(By.ID, "save-auth").click()
    wait(browser, EC.visibility_of_element_located((By.ID, "saved")))
    open_page(browser, front, "newhouse.html")
    title = "注册后发布的房源" + mobile[-4:]
    publish(browser, front, {
        "house-title": title, "house-price": "199", "house-address": "朝阳区望京",
        "house-room-count": "1", "house-acreage": "45", "house-unit": "一室一厅",
        "house-capacity": "2", "house-beds": "双人床", "house-deposit": "300",
        "house-min-days": "1", "house-max-days": "0"})
    houses = houses_of(database, me["id"])
    assert [h["title"] for h in houses] == [title]
    mine = [(h["id"], h["title"]) for h in houses]
    assert listed_houses(browser, stack) == mine

    # The site's logout: the function's cookie goes, and the site says so.
    log_out(browser, front)

    # Back in through login.html: the function, then the same row, name and houses.
    exchange = log_in_on_page(browser, stack, mobile, PASSWORD)
    assert (exchange["status"], exchange["code"]) == (200, "logged_in")
    assert text_of(browser, "user-name") == new_name
    claims = harness.verify_jwt(session_cookie(browser)[0]["value"])
    # The cookie names the function's user; its `name` is the item's (the mobile): the rename
    # lives in SQL only, and the site shows the row's name.
    assert (claims["sub"], claims["name"]) == (item["user_id"], mobile)
    assert stack.flask_session(browser)["user_id"] == me["id"]
    open_page(browser, front, "my.html")
    assert (text_of(browser, "user-name"), text_of(browser, "user-mobile")) == (new_name, mobile)
    assert listed_houses(browser, stack) == mine
    assert [r["id"] for r in database.users(mobile)] == [me["id"]], "one row, all along"
    assert houses_of(database, me["id"]) == houses
    assert stack.item(mobile) == item, "an argon2id login leaves the item as it is"


def test_importing_again_after_the_cut_over_changes_no_item(stack, imported):
    # A user who registered through the function and was seen by the site: the hook gave them an
    # SQL row whose password_hash is NO_PASSWORD (whatever else this module did before).
    mobile = random_mobile()
    stack.mobiles.append(mobile)
    token = register(stack.front, stack.stores, mobile)
    status, _, body = stack.site.request("GET", "/api/v1.0/user",
                                         {"Cookie": f"__Host-session={token}"})
    assert status == 200 and json.loads(body)["errno"] == "0"
    hook_rows = stack.database.rows("SELECT id FROM ih_user_profile WHERE password_hash = :p",
                                    p=ihome_session.NO_PASSWORD)
    assert own_row(stack.database, mobile)["id"] in [r["id"] for r in hook_rows]
    read = stack.database.rows("SELECT COUNT(*) AS n FROM ih_user_profile")[0]["n"]
    before = stack.items()

    status, stdout, lines = stack.run_import()
    # Nothing new to import; the three legacy users are already there (upgraded or not); the
    # refused row still is; and every row the hook made is already there "by hook": that person
    # registered through the function, so the import writes nothing and counts no rejection.
    assert (status, summary_counts(lines)) == \
        (1, counts(read, already_imported=3, by_function=len(hook_rows), rejected=1)), stdout
    refused = stack.legacy[REFUSED["key"]]
    got = [line for line in lines if line.get("id") == refused["id"]]
    assert len(got) == 1 and got[0]["outcome"] == "rejected" and \
        got[0]["reasons"] == ["password_hash_unsupported"], got
    for row in hook_rows:
        got = [line for line in lines if line.get("id") == row["id"]]
        assert len(got) == 1 and got[0]["outcome"] == "already_there" and \
            got[0]["by"] == "hook" and "user_id" not in got[0], got
    assert stack.items() == before, "an import never replaces an item"


def test_no_log_holds_a_password_hash_token_or_whole_mobile(stack):
    """Everything the module's function, site and imports logged or reported (run last)."""
    with open(stack.front.function.log.name, errors="replace") as watch:
        function_log = watch.read()
    assert "logged_in" in function_log, "the logins above were logged"
    outputs = {"function": function_log, "site": stack.site.log_text(),
               "imports": "\n".join(stack.runs)}
    assert stack.runs, "the imports ran"
    secrets = [PASSWORD, WRONG, JWT_SECRET, "eyJ", "$argon2", *stack.mobiles]
    for user in stack.users:
        secrets += [user["password"], user["hash"]]
    for where, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"the {where} output contains {secret[:6]}…"
