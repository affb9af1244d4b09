"""The session hook (contrib/flask/ihome_session.py) in the iHome-shaped site, on the database
under test (SITE_DB): each user the function registered gets one SQL row of their own, with an
integer id, and every view shows them that row's data and nobody else's. Each check reads the
stored rows, not only the answers."""
import threading

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from werkzeug.security import check_password_hash

import ihome_session
from conftest import (DB_KIND, JWT_SECRET, LANDLORD, PLAIN, REGISTERED, Visitor, mint, own_row,
                      random_mobile, register, secrets_of, stored_item)
from ihome_site import seed

# --- init_app: a model that cannot back the hook fails at start ---


def bad_app(url, columns, table_args=None, init_db=True):
    db = SQLAlchemy()
    attrs = {"__tablename__": "ih_user_profile", **columns}
    if table_args is not None:
        attrs["__table_args__"] = table_args
    User = type("User", (db.Model,), attrs)
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=url, IHOME_JWT_SECRETS=[JWT_SECRET])
    if init_db:
        db.init_app(app)
    return app, db, User


def ihome_columns(**changes):
    cols = {"id": sa.Column(sa.Integer, primary_key=True),
            "name": sa.Column(sa.String(32), unique=True, nullable=False),
            "password_hash": sa.Column(sa.String(128), nullable=False),
            "mobile": sa.Column(sa.String(11), unique=True, nullable=False)}
    cols.update(changes)
    return {k: v for k, v in cols.items() if v is not None}


AUTOINC = {"sqlite_autoincrement": True}

BAD_MODELS = [
    ("uuid id", ihome_columns(id=sa.Column(sa.String(36), primary_key=True)),
     "'id' must be an integer column"),
    ("mobile not unique", ihome_columns(mobile=sa.Column(sa.String(11), nullable=False)),
     "'mobile' must be unique"),
    ("mobile too short", ihome_columns(mobile=sa.Column(sa.String(8), unique=True)),
     "'mobile' must hold at least 11 characters"),
    ("no name", ihome_columns(name=None), "no column attribute 'name'"),
    ("unique name too short", ihome_columns(name=sa.Column(sa.String(12), unique=True)),
     "'name' is unique, so it must hold at least 16 characters"),
    ("no password column", ihome_columns(password_hash=None),
     "no column attribute 'password_hash'"),
    ("a NOT NULL column without default",
     ihome_columns(avatar_url=sa.Column(sa.String(128), nullable=False)),
     "NOT NULL column 'avatar_url' has no default"),
]


@pytest.mark.parametrize("case,columns,message", BAD_MODELS, ids=[c[0] for c in BAD_MODELS])
def test_init_app_refuses_a_model_lacking_what_the_hook_needs(database, case, columns, message):
    app, db, User = bad_app(database.url, columns, AUTOINC)
    with pytest.raises(ihome_session.ModelError) as refused:
        ihome_session.init_app(app, db, User)
    assert message in str(refused.value)


def test_init_app_refuses_sqlite_without_autoincrement_and_an_app_without_db(database, tmp_path):
    app, db, User = bad_app(database.url, ihome_columns())  # no sqlite_autoincrement
    if DB_KIND == "sqlite":
        with pytest.raises(ihome_session.ModelError, match="sqlite_autoincrement"):
            ihome_session.init_app(app, db, User)
    else:
        ihome_session.init_app(app, db, User)  # MariaDB never reuses an AUTO_INCREMENT value

    # The model says AUTOINCREMENT but the table on disk was created without it.
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ih_user_profile (id INTEGER PRIMARY KEY, "
                             "name VARCHAR(32) UNIQUE NOT NULL, password_hash VARCHAR(128) "
                             "NOT NULL, mobile VARCHAR(11) UNIQUE NOT NULL)")
    engine.dispose()
    app, db, User = bad_app(url, ihome_columns(), AUTOINC)
    with pytest.raises(ihome_session.ModelError, match="created without AUTOINCREMENT"):
        ihome_session.init_app(app, db, User)

    app, db, User = bad_app(database.url, ihome_columns(), AUTOINC, init_db=False)
    with pytest.raises(ihome_session.ModelError, match=r"db.init_app\(app\) first"):
        ihome_session.init_app(app, db, User)


def test_the_sites_own_model_passes(make_app):
    hook = make_app().ihome_session
    assert list(hook.keys) == [ihome_session.key_id(JWT_SECRET.encode())]
    assert hook.users.name_unique


# --- a user registered through the function ---

def test_a_function_user_gets_one_row_of_their_own_on_first_sight(front, stores, database,
                                                                  make_app):
    mobile = random_mobile()
    token = register(front, stores, mobile)
    assert database.users(mobile) == [], "no row before the site sees the cookie"
    app = make_app()
    visitor = Visitor(app, token)

    profile = visitor.api("GET", "/user")
    assert profile["errno"] == "0", profile
    row = own_row(database, mobile)
    assert profile["data"]["user_id"] == row["id"] and profile["data"]["mobile"] == mobile
    assert row["name"] == mobile, "named as the seed's register view named users"
    assert row["id"] not in database.seeded.values()
    # A password value that can never verify, whatever is tried.
    assert row["password_hash"] == ihome_session.NO_PASSWORD
    for tried in ("", "!", ihome_session.NO_PASSWORD, "correct horse battery", "123456"):
        assert not check_password_hash(row["password_hash"], tried)
    with visitor.client.session_transaction() as s:
        assert type(s["user_id"]) is int and s["user_id"] == row["id"]
        assert (s["name"], s["mobile"]) == (mobile, mobile)
    # The DynamoDB user is the same person: same mobile, and its UUID is nowhere in SQL.
    item = stored_item(stores, mobile)
    assert item["mobile"] == mobile
    assert item["user_id"] not in {str(v) for v in row.values()}

    # The next request of this session (same jti) costs the hook no query.
    statements = []
    engine = app.ihome_session.users.engine
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        assert visitor.api("GET", "/session")["data"]["name"] == mobile
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    assert statements == []
    assert len(database.users(mobile)) == 1


def test_no_view_shows_a_new_user_anyone_elses_data(front, stores, database, make_app):
    mobile = random_mobile()
    visitor = Visitor(make_app(), register(front, stores, mobile))
    landlord_before = own_row(database, LANDLORD["mobile"])
    bodies = [visitor.api("GET", path) for path in
              ("/session", "/user", "/users/auth", "/user/houses", "/user/orders",
               "/user/orders?role=landlord")]
    assert all(b["errno"] == "0" for b in bodies), bodies
    me = own_row(database, mobile)
    assert bodies[1]["data"]["user_id"] == me["id"]
    assert bodies[2]["data"] == {"user_id": me["id"], "real_name": None, "id_card": None}
    assert bodies[3]["data"]["houses"] == [] and bodies[4]["data"]["orders"] == []
    text = repr(bodies)
    for other in seed.USERS:
        for secret in secrets_of(other):
            assert secret not in text, f"{secret!r} of another user shown"

    # Writes land on the user's own row, and on nobody else's.
    assert visitor.api("POST", "/users/auth",
                       {"real_name": "张三", "id_card": "11010119900307451X"})["errno"] == "0"
    me = own_row(database, mobile)
    assert (me["real_name"], me["id_card"]) == ("张三", "11010119900307451X")
    assert own_row(database, LANDLORD["mobile"]) == landlord_before

    published = visitor.api("POST", "/houses/info", {
        "title": "新房源", "price": "200", "area_id": "1", "address": "海淀", "room_count": "2",
        "acreage": "60", "unit": "两室", "capacity": "3", "beds": "两张", "deposit": "100",
        "min_days": "1", "max_days": "0"})
    assert published["errno"] == "0", published
    house = database.rows("SELECT * FROM ih_house_info WHERE id = :id",
                          id=published["data"]["house_id"])[0]
    assert house["user_id"] == me["id"]

    landlords_house = database.rows("SELECT id FROM ih_house_info WHERE user_id = :u",
                                    u=landlord_before["id"])[0]["id"]
    booked = visitor.api("POST", "/orders", {"house_id": landlords_house,
                                             "start_date": "2031-01-01",
                                             "end_date": "2031-01-03"})
    assert booked["errno"] == "0", booked
    order = database.rows("SELECT * FROM ih_order_info WHERE id = :id",
                          id=booked["data"]["order_id"])[0]
    assert (order["user_id"], order["house_id"], order["days"]) == (me["id"], landlords_house, 2)
    mine = visitor.api("GET", "/user/orders")["data"]["orders"]
    assert [o["order_id"] for o in mine] == [order["id"]]


def test_an_existing_sql_user_is_logged_in_as_their_own_row(database, make_app):
    # A user who registered on the Flask site before, whose mobile the function now vouches for
    # (issue 15 imports them; 14 logs them in): their row, with the name they chose.
    visitor = Visitor(make_app(), mint(PLAIN["mobile"]))
    profile = visitor.api("GET", "/user")["data"]
    assert profile["user_id"] == database.seeded[PLAIN["mobile"]]
    assert (profile["name"], profile["mobile"]) == (PLAIN["name"], PLAIN["mobile"])
    assert len(database.users(PLAIN["mobile"])) == 1


def test_a_name_another_user_took_gets_a_free_variant(front, stores, database, make_app):
    mobile = random_mobile()
    # User #2 renamed themselves to this mobile before its owner came.
    database.execute("UPDATE ih_user_profile SET name = :n WHERE mobile = :m",
                     n=mobile, m=PLAIN["mobile"])
    try:
        visitor = Visitor(make_app(), register(front, stores, mobile))
        assert visitor.api("GET", "/session")["data"]["name"] == f"{mobile}_2"
        assert own_row(database, mobile)["name"] == f"{mobile}_2"
        assert own_row(database, PLAIN["mobile"])["name"] == mobile, "user #2 untouched"
    finally:
        database.execute("UPDATE ih_user_profile SET name = :n WHERE mobile = :m",
                         n=PLAIN["name"], m=PLAIN["mobile"])


def test_a_rename_survives_the_next_request_and_a_new_browser_session(database, make_app):
    mobile = random_mobile()
    token = mint(mobile)
    app = make_app()
    visitor = Visitor(app, token)
    assert visitor.api("GET", "/session")["data"]["name"] == mobile
    new_name = "新名字" + mobile[-4:]
    assert visitor.api("PUT", "/users/name", {"name": new_name})["errno"] == "0"
    assert own_row(database, mobile)["name"] == new_name
    assert visitor.api("GET", "/session")["data"]["name"] == new_name
    assert visitor.api("GET", "/user")["data"]["name"] == new_name
    # Flask's session gone (another browser, same token): the name comes from the row.
    assert Visitor(app, token).api("GET", "/session")["data"]["name"] == new_name
    # So does it once the cached login is looked up again.
    fresh = Visitor(make_app(IHOME_SESSION_RECHECK_SECONDS=0), token)
    assert fresh.api("GET", "/session")["data"]["name"] == new_name
    assert fresh.api("PUT", "/users/name", {"name": LANDLORD["name"]})["errno"] == "4003"


def test_a_deleted_row_is_provisioned_again_under_a_new_id(database, make_app):
    mobile = random_mobile()
    token = mint(mobile)
    app = make_app(IHOME_SESSION_RECHECK_SECONDS=0)
    visitor = Visitor(app, token)
    first = visitor.api("GET", "/user")["data"]["user_id"]
    database.execute("DELETE FROM ih_user_profile WHERE id = :id", id=first)
    # A newer user now holds the highest id: an id reused would be theirs.
    later = Visitor(app, mint(random_mobile()))
    assert later.api("GET", "/user")["errno"] == "0"
    again = visitor.api("GET", "/user")["data"]
    row = own_row(database, mobile)
    assert again["user_id"] == row["id"] and row["id"] > first
    assert database.user(first) is None
    # With the default recheck, the cached id points at nothing until then: no data, not another's.
    cached = Visitor(make_app(), token)
    user_id = cached.api("GET", "/user")["data"]["user_id"]
    database.execute("DELETE FROM ih_user_profile WHERE id = :id", id=user_id)
    assert cached.api("GET", "/user")["errno"] == "4002"


def test_invalid_cookies_are_not_logged_in_and_create_nothing(database, make_app):
    mobile = random_mobile()
    good = mint(mobile)
    head, payload, sig = good.split(".")
    other = mint(LANDLORD["mobile"]).split(".")[1]
    cases = {
        "garbage": "not-a-token",
        "empty parts": "..",
        "tampered to user #1": f"{head}.{other}.{sig}",
        "unknown key": mint(mobile, key="x" * 40),
        "expired": mint(mobile, exp=1_000_000, iat=900_000),
        "other issuer": mint(mobile, iss="elsewhere"),
        "no mobile": mint(mobile, mobile=None),
        "mobile not a mobile": mint(mobile, mobile="01a2"),
        "mobile a number": mint(mobile, mobile=13812345678),
    }
    app = make_app()
    for case, token in cases.items():
        visitor = Visitor(app, token)
        for path in ("/session", "/user", "/users/auth", "/user/houses"):
            assert visitor.api("GET", path)["errno"] == "4101", (case, path)
        assert visitor.page().status_code == 200
    assert database.users(mobile) == []
    assert len(database.users(LANDLORD["mobile"])) == 1


def test_logging_out_deletes_the_cookie_and_stays_out(database, make_app):
    app = make_app()
    visitor = Visitor(app, mint(random_mobile()))
    assert visitor.api("GET", "/session")["errno"] == "0"
    visitor.page()
    resp = visitor.client.delete("/api/v1.0/session", base_url=Visitor.BASE,
                                 headers={"X-CSRFToken": visitor.csrf,
                                          "Referer": Visitor.BASE + "/"})
    assert resp.get_json()["errno"] == "0"
    deleted = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("__Host-session=;")]
    assert deleted and "Max-Age=0" in deleted[0] and "Secure" in deleted[0], deleted
    assert visitor.client.get_cookie("__Host-session") is None
    assert visitor.api("GET", "/session")["errno"] == "4101"
    assert visitor.api("GET", "/user")["errno"] == "4101"


def test_legacy_mobiles_with_surrounding_spaces(database, make_app):
    app = make_app()
    exact, trailing, leading, twice = (random_mobile() for _ in range(4))
    legacy = [trailing + " ", " " + leading, exact, exact + " ", twice + " ", twice + "\t"]
    refused = []
    for i, value in enumerate(legacy):
        try:
            database.execute("INSERT INTO ih_user_profile (name, password_hash, mobile) "
                             "VALUES (:n, 'pbkdf2:sha256:1$x$y', :m)",
                             n=f"legacy{i}{value.strip()}", m=value)
        except sa.exc.SQLAlchemyError as e:
            refused.append((value, type(e).__name__))

    def ids(mobile):
        return [r["id"] for r in database.users(mobile)]

    def seen(mobile):
        return Visitor(app, mint(mobile)).api("GET", "/user")

    if DB_KIND == "sqlite":  # stored as typed; compared exactly
        assert refused == []
        assert seen(trailing)["data"]["user_id"] == ids(trailing)[0]
        assert seen(leading)["data"]["user_id"] == ids(leading)[0]
        clean = [r["id"] for r in database.users(exact) if r["mobile"] == exact]
        assert seen(exact)["data"]["user_id"] == clean[0], "the clean row wins"
        assert seen(twice)["errno"] == "4101", "two candidates: not logged in, no guess"
        assert len(ids(twice)) == 2, "and no third row"
    else:
        mode = database.rows("SELECT @@SESSION.sql_mode AS m")[0]["m"]
        assert "STRICT_TRANS_TABLES" in mode or "STRICT_ALL_TABLES" in mode, mode
        # Strict mode refuses 12 characters in VARCHAR(11) (Data too long) unless the extra
        # ones are trailing white space, which it drops with a note: "m " and "m\t" are stored
        # as "m", and the unique index refuses them beside "m".
        assert refused == [(" " + leading, "DataError"), (exact + " ", "IntegrityError"),
                           (twice + "\t", "IntegrityError")], refused
        assert [r["mobile"] for r in database.users(trailing)] == [trailing]
        assert seen(trailing)["data"]["user_id"] == ids(trailing)[0]
        assert seen(exact)["data"]["user_id"] == ids(exact)[0]
        assert seen(twice)["data"]["user_id"] == ids(twice)[0]
        assert database.rows("SELECT id FROM ih_user_profile WHERE mobile = :m",
                             m=exact + "  ") == [{"id": ids(exact)[0]}]
        assert seen(leading)["errno"] == "0"  # no legacy row could exist: a new one
    for mobile in (trailing, exact, twice):
        assert sorted(r["mobile"].strip() for r in database.users(mobile)) == \
            [mobile] * len(database.users(mobile)), "legacy rows are used as they are"
    assert any(r["mobile"] != r["mobile"].strip() for r in database.users(trailing)) \
        == (DB_KIND == "sqlite"), "not rewritten"


def test_a_database_that_is_down_answers_dberr_not_500(make_app):
    from conftest import SECRET_KEY, free_port
    from ihome_site import create_app
    # Nothing listens there: every query fails as an unreachable server does.
    app = create_app(f"mysql+pymysql://root@127.0.0.1:{free_port()}/none", SECRET_KEY,
                     IHOME_JWT_SECRETS=[JWT_SECRET])
    visitor = Visitor(app, mint(random_mobile()))
    assert visitor.api("GET", "/user") == {"errno": "4001", "errmsg": "数据库异常"}
    assert visitor.api("GET", "/session") == {"errno": "4001", "errmsg": "数据库异常"}
    assert b"<h1" in visitor.page().data, "pages still served"
    with visitor.client.session_transaction() as s:
        assert "user_id" not in s


def test_ten_parallel_first_requests_on_several_workers_create_one_row(front, stores, site,
                                                                      database):
    workers, mobiles = set(), []
    for _ in range(3):
        mobile = random_mobile()
        mobiles.append(mobile)
        token = register(front, stores, mobile)
        barrier = threading.Barrier(10)
        answers = [None] * 10

        def first_request(i):
            import http.client
            import json
            conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=60)
            conn.connect()
            barrier.wait(timeout=30)  # all ten connected, then all send at once
            conn.request("GET", "/api/v1.0/user", headers={"Cookie": f"__Host-session={token}"})
            resp = conn.getresponse()
            answers[i] = (resp.status, resp.getheader("X-Worker-Pid"), json.loads(resp.read()))
            conn.close()

        threads = [threading.Thread(target=first_request, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert all(a is not None and a[0] == 200 for a in answers), answers
        row = own_row(database, mobile)
        assert {a[2]["errno"] for a in answers} == {"0"}, answers
        assert {a[2]["data"]["user_id"] for a in answers} == {row["id"]}
        workers |= {a[1] for a in answers}
    assert len(workers) >= 2, f"the requests reached only {workers}"
    log = site.log_text().splitlines()
    for mobile in mobiles:
        masked = f"{mobile[:3]}****{mobile[-4:]}"
        assert len([line for line in log if "created user" in line and masked in line]) == 1
    lost = [line for line in log if "refused as a duplicate" in line
            and any(f"{m[:3]}****{m[-4:]}" in line for m in mobiles)]
    print(f"\nparallel first requests: workers {sorted(workers)}, {len(lost)} inserts lost the "
          "race and read the winner's row")


def test_logs_show_masked_mobiles_and_no_token(site, front):
    with open(front.function.log.name, errors="replace") as watch:
        text = site.log_text() + watch.read()
    assert REGISTERED, "the run registered users"
    for mobile in REGISTERED:
        assert mobile not in text, "a full mobile in a log"
    assert "eyJ" not in text and JWT_SECRET not in text
    created = [line for line in site.log_text().splitlines() if "created user" in line]
    assert created and all("****" in line for line in created), created
