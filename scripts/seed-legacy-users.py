#!/usr/bin/env python3
"""Creates the iHome site's user table (`ih_user_profile`'s shape) as the importer meets it, with
password hashes made by werkzeug's own generate_password_hash in the versions the site may have
run, each from its own venv (.venv/werkzeug-<version>, scripts/lib.sh's ensure_werkzeug).

    seed-legacy-users.py --hashes-only                      # compute the fixture's hashes (cached)
    seed-legacy-users.py --mysql URL --table T              # the table in MariaDB/MySQL
    seed-legacy-users.py --sqlite PATH --table T            # ... in a SQLite file
    seed-legacy-users.py --jsonl PATH                       # ... as a JSON Lines export
    seed-legacy-users.py ... --filler N [--filler-start ID] # plus N generated valid users
    seed-legacy-users.py ... --no-fixture                   # the generated users alone

Prints {"rows": [the fixture's rows], "filler": {start, count, password, password_hash}} as JSON
on stdout (passwords included: they are test data), so a test can check every row and later log
each imported user in with the old password.

Hashes take 10 ms to 1 s each (werkzeug 3's pbkdf2 is 1,000,000 iterations), so they are kept
in .run/legacy-hashes.json, keyed by row, version, method and password. Generated users share
one precomputed werkzeug 3.1.9 scrypt hash (password FILLER_PASSWORD): the benchmark and the
interrupt test measure the import, not hashing.
"""

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
CACHE = ROOT / ".run" / "legacy-hashes.json"

# The site's werkzeug over the years, and each one's default (what the site wrote):
#   0.11.15  pbkdf2:sha1:1000      (8-character salt)
#   0.16.1  pbkdf2:sha256:150000
#   2.0.3   pbkdf2:sha256:260000  (16-character salt)
#   2.3.8   pbkdf2:sha256:600000
#   3.1.9   scrypt:32768:8:1      (and pbkdf2:sha256:1000000 when asked for "pbkdf2")
VERSIONS = ["0.11.15", "0.16.1", "2.0.3", "2.3.8", "3.1.9"]

FILLER_PASSWORD = "filler password 1"

# id, name, mobile as stored, password, (werkzeug version, method or None for its default) or a
# literal hash, create_time. The expected outcome of each row is checked in
# import/tests/import.rs; the comment says what it is for.
ROWS = [
    (1, "张三", "13800000001", "legacy pass one", ("0.11.15", None), "2015-03-01 09:30:00"),
    (2, "user2", "13800000002", "legacy pass two", ("0.16.1", None), "2019-11-11 11:11:11"),
    (3, None, "13800000003", "密码 three 3", ("2.0.3", None), "2021-05-20 20:05:21"),  # no name
    (4, "user4", "13800000004", "legacy pass four", ("2.3.8", None), "2023-08-01 00:00:00"),
    (5, "user5", "13800000005", "legacy pass five", ("3.1.9", None), "2024-06-18 23:59:59"),
    # as typed: one +86, spaces
    (6, "user6", "+86 138 0000 0006", "legacy pass six", ("3.1.9", "pbkdf2"), "2025-01-02 03:04:05"),
    # surrounding spaces
    (7, "user7", " 13800000007 ", "legacy pass seven", ("2.3.8", None), "2025-02-03 04:05:06"),
    # what the seed's unanchored re.match let in
    (9, "user9", "138000000099999", "legacy pass nine", ("3.1.9", None), "2018-01-01 00:00:00"),
    (10, "user10", "13800000010abc", "legacy pass ten", ("3.1.9", None), "2018-01-01 00:00:00"),
    (11, "user11", "", "legacy pass eleven", ("3.1.9", None), "2018-01-01 00:00:00"),
    (12, "user12", None, "legacy pass twelve", ("3.1.9", None), "2018-01-01 00:00:00"),
    # no usable hash
    (13, "user13", "13800000013", None, None, "2018-01-01 00:00:00"),
    (14, "user14", "13800000014", "", "", "2018-01-01 00:00:00"),
    # a format werkzeug 3 cannot check any more (salted sha1 HMAC, werkzeug < 2.3)
    (20, "user20", "13800000020", "legacy pass twenty", ("0.11.15", "sha1"), "2016-01-01 00:00:00"),
    # one number three ways: a conflict, none imported
    (15, "user15", "13800000015", "legacy pass fifteen", ("3.1.9", None), "2017-01-01 00:00:00"),
    (16, "user16", "+86 138 0000 0015", "legacy pass sixteen", ("3.1.9", None), "2017-01-02 00:00:00"),
    (17, "user17", "138-0000-0015", "legacy pass seventeen", ("2.0.3", None), "2017-01-03 00:00:00"),
    # one number twice, one row without a password: still a conflict, neither imported
    (22, "user22", "13800000022", "legacy pass twenty-two", ("3.1.9", None), "2017-02-01 00:00:00"),
    (23, "user23", "138 0000 0022", "", "", "2017-02-02 00:00:00"),
    # registered through the function before the import (the test puts it first)
    (18, "user18", "13800000018", "legacy pass eighteen", ("3.1.9", None), "2019-01-01 00:00:00"),
    # no create_time: imported with the run's start as created_at
    (19, "user19", "13800000019", "legacy pass nineteen", ("2.3.8", None), None),
]


def hash_key(row_id, version, method, password):
    return f"{row_id}|{version}|{method}|{password}"


def werkzeug_hashes(version, requests):
    """[(method or None, password)] -> [hash], by werkzeug==version's generate_password_hash."""
    python = VENV / f"werkzeug-{version}" / "bin" / "python"
    if not python.exists():
        sys.exit(f"{python} is missing: scripts/test installs it (ensure_werkzeug {version})")
    code = (
        "import json, sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from werkzeug.security import generate_password_hash as g\n"
        "out = [g(p) if m is None else g(p, method=m) for m, p in json.load(sys.stdin)]\n"
        "json.dump(out, sys.stdout)\n"
    )
    done = subprocess.run(
        [str(python), "-c", code], input=json.dumps(requests), capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def load_cache():
    try:
        return json.loads(CACHE.read_text())
    except (OSError, ValueError):
        return {}


def save_cache(cache):
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=CACHE.parent, prefix=".legacy-hashes.")
    with os.fdopen(fd, "w") as f:
        json.dump(cache, f, indent=0, sort_keys=True)
    os.replace(tmp, CACHE)  # atomic: tests running at once never read half a file


def fixture_rows():
    """The fixture's rows as dicts, every hash computed (or taken from the cache)."""
    cache = load_cache()
    changed = False
    missing = {}
    for row_id, _, _, password, how, _ in ROWS:
        if isinstance(how, tuple):
            key = hash_key(row_id, how[0], how[1], password)
            if key not in cache:
                missing.setdefault(how[0], []).append((key, how[1], password))
    for version, wanted in missing.items():
        hashes = werkzeug_hashes(version, [(m, p) for _, m, p in wanted])
        cache.update({key: h for (key, _, _), h in zip(wanted, hashes)})
        changed = True
    filler_key = hash_key(0, "3.1.9", None, FILLER_PASSWORD)
    if filler_key not in cache:
        cache[filler_key] = werkzeug_hashes("3.1.9", [(None, FILLER_PASSWORD)])[0]
        changed = True
    if changed:
        save_cache(cache)
    rows = []
    for row_id, name, mobile, password, how, created in ROWS:
        if isinstance(how, tuple):
            password_hash, werkzeug = cache[hash_key(row_id, how[0], how[1], password)], how[0]
        else:
            password_hash, werkzeug = how, None
        rows.append(
            dict(id=row_id, name=name, mobile=mobile, password=password,
                 password_hash=password_hash, werkzeug=werkzeug, create_time=created)
        )
    return rows, cache[filler_key]


def filler_rows(count, start, password_hash):
    """Generated valid users: ids from `start`, mobiles 15xxxxxxxxx (the fixture uses 138)."""
    return [
        dict(id=start + i, name=f"filler{start + i}", mobile=f"15{start + i:09d}",
             password=FILLER_PASSWORD, password_hash=password_hash, werkzeug="3.1.9",
             create_time="2020-02-02 02:02:02")
        for i in range(count)
    ]


COLUMNS = ["id", "name", "password_hash", "mobile", "create_time"]


def table_rows(rows):
    # real_name and id_card are in the site's table and must never be read: they carry values
    # here so a test would notice.
    return [tuple(r[c] for c in COLUMNS) + ("真名", "110101199001011234") for r in rows]


def seed_mysql(url, table, rows):
    import pymysql  # scripts/requirements-import.txt, in .venv

    u = urlparse(url)
    conn = pymysql.connect(
        host=u.hostname, port=u.port or 3306, user=unquote(u.username or "root"),
        password=unquote(u.password or ""), database=u.path.lstrip("/"), charset="utf8mb4",
        autocommit=False,
    )
    with conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE'")
        cur.execute(f"DROP TABLE IF EXISTS `{table}`")
        # ih_user_profile as Flask-SQLAlchemy made it (BaseModel's create_time/update_time), but
        # mobile wider than its String(11) and nullable: the rows below are what a looser past
        # schema and the unanchored regex let in.
        cur.execute(
            f"""CREATE TABLE `{table}` (
                 id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                 name VARCHAR(32) NULL UNIQUE,
                 password_hash VARCHAR(255) NULL,
                 mobile VARCHAR(32) NULL UNIQUE,
                 create_time DATETIME NULL,
                 update_time DATETIME NULL,
                 real_name VARCHAR(32) NULL,
                 id_card VARCHAR(20) NULL
               ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
        )
        sql = (
            f"INSERT INTO `{table}` (id, name, password_hash, mobile, create_time, real_name, id_card)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        )
        data = table_rows(rows)
        for i in range(0, len(data), 5000):
            cur.executemany(sql, data[i : i + 5000])
        conn.commit()


def seed_sqlite(path, table, rows):
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        # As SQLAlchemy creates it on SQLite: DATETIME columns hold 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        conn.execute(
            f"""CREATE TABLE "{table}" (
                 id INTEGER NOT NULL PRIMARY KEY,
                 name VARCHAR(32) UNIQUE,
                 password_hash VARCHAR(255),
                 mobile VARCHAR(32) UNIQUE,
                 create_time DATETIME,
                 update_time DATETIME,
                 real_name VARCHAR(32),
                 id_card VARCHAR(20)
               )"""
        )
        conn.executemany(
            f'INSERT INTO "{table}" (id, name, password_hash, mobile, create_time, real_name, id_card)'
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            table_rows(rows),
        )
    conn.close()


def seed_jsonl(path, rows):
    # As `json.dumps(row, default=str)` of each row would export it: create_time as
    # 'YYYY-MM-DD HH:MM:SS', NULL as null.
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({c: r[c] for c in COLUMNS}, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mysql", metavar="URL")
    ap.add_argument("--sqlite", metavar="PATH")
    ap.add_argument("--jsonl", metavar="PATH")
    ap.add_argument("--table", default="ih_user_profile")
    ap.add_argument("--filler", type=int, default=0, metavar="N")
    ap.add_argument("--filler-start", type=int, default=1000, metavar="ID")
    ap.add_argument("--no-fixture", action="store_true")
    ap.add_argument("--hashes-only", action="store_true")
    args = ap.parse_args()

    fixture, filler_hash = fixture_rows()
    if args.hashes_only:
        return
    rows = ([] if args.no_fixture else fixture) + filler_rows(args.filler, args.filler_start, filler_hash)
    if args.mysql:
        seed_mysql(args.mysql, args.table, rows)
    if args.sqlite:
        seed_sqlite(args.sqlite, args.table, rows)
    if args.jsonl:
        seed_jsonl(args.jsonl, rows)
    filler = dict(start=args.filler_start, count=args.filler, password=FILLER_PASSWORD,
                  password_hash=filler_hash)
    json.dump(dict(rows=[] if args.no_fixture else fixture, filler=filler), sys.stdout,
              ensure_ascii=False)


if __name__ == "__main__":
    main()
