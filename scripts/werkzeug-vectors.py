"""Writes tests/data/werkzeug-vectors.json: password hashes made by werkzeug itself, several
versions of it, for src/werkzeug.rs's tests (tests/werkzeug.rs). Nothing in the file comes from
our own implementation: each version is installed from PyPI into .venv/werkzeug-<version>
(gitignored), and that version's generate_password_hash makes the hash and its
check_password_hash answers for the right password, a wrong one and, where it differs, the NFKC
form of the password (werkzeug never normalised, so that form must fail).

Per version: its default method (found by running it: the file records what the hash says) over
two passwords, explicit `pbkdf2:sha1` and `pbkdf2:sha512` (iterations: that version's default),
`scrypt` where the version has it (2.3 on), and a few forms we must refuse (`sha1` salted hmac,
`md5`, `plain`) from the versions that still made them. Passwords rotate through PASSWORDS so
each kind (ASCII, Chinese, full-width, space-padded, 200 characters, emoji, a combining accent)
meets several versions while the file stays at a few dozen vectors.

Run: python3 scripts/werkzeug-vectors.py [--versions 0.11.15,3.1.9]  (Python 3.11; PyPI)
"""
import argparse
import json
import pathlib
import platform
import subprocess
import sys
import unicodedata

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "werkzeug-vectors.json"

# Each version's default, as its source says (the script checks it by running the version):
#   0.11.15  pbkdf2:sha1:1000       (0.9-0.11)
#   0.14.1   pbkdf2:sha256:50000    (0.12-0.14)
#   0.16.1   pbkdf2:sha256:150000   (0.15-1.0)
#   1.0.1    pbkdf2:sha256:150000
#   2.0.3    pbkdf2:sha256:260000   (2.0-2.2)
#   2.2.3    pbkdf2:sha256:260000
#   2.3.8    pbkdf2:sha256:600000   (2.3; scrypt added)
#   3.0.6    scrypt:32768:8:1       (3.0: scrypt is the default; plain/salted-hmac removed)
#   3.1.9    scrypt:32768:8:1       (3.1: pbkdf2's default iterations 1,000,000)
VERSIONS = ["0.11.15", "0.14.1", "0.16.1", "1.0.1", "2.0.3", "2.2.3", "2.3.8", "3.0.6", "3.1.9"]

# (password, a wrong password that is close to it). The wrong one for the padded password is the
# password trimmed: the old site never trimmed either.
PASSWORDS = [
    ("correct horse battery staple", "correct horse battery stapl"),
    ("密码很安全2024", "密码很安全2025"),
    ("ａｂｃ１２３ｘｙｚ", "ａｂｃ１２３ｘｙ"),
    ("  padded password  ", "padded password"),
    (("The quick brown fox jumps over the lazy dog. " * 5)[:200],
     ("The quick brown fox jumps over the lazy dog. " * 5)[:199]),
    ("🏠🔑 home key 🗝️", "🏠🔑 home key"),
    ("cafe\u0301 au lait", "caf\u00e9 au lait"),
]

# Runs inside each version's venv: reads the jobs as JSON on stdin, answers JSON on stdout.
WORKER = r"""
import collections, collections.abc, json, sys, warnings
warnings.simplefilter("ignore")
# werkzeug 0.12-0.14 import ABCs from `collections` (gone in Python 3.10) in modules its package
# imports at start; give them back so the package imports. security.py itself is untouched.
for name in ("Container", "Iterable", "MutableSet", "Mapping", "MutableMapping", "Sequence"):
    setattr(collections, name, getattr(collections.abc, name))
import werkzeug
from werkzeug.security import generate_password_hash, check_password_hash
version = getattr(werkzeug, "__version__", None)
if version is None:
    from importlib.metadata import version as v
    version = v("werkzeug")
out = {"version": version, "vectors": []}
for job in json.load(sys.stdin):
    if job["method"] is None:
        h = generate_password_hash(job["password"])
    else:
        h = generate_password_hash(job["password"], method=job["method"])
    row = dict(job)
    row["hash"] = h
    row["check"] = check_password_hash(h, job["password"])
    row["check_wrong"] = check_password_hash(h, job["wrong"])
    if job.get("nfkc") is not None:
        row["check_nfkc"] = check_password_hash(h, job["nfkc"])
    out["vectors"].append(row)
json.dump(out, sys.stdout)
"""


def venv_python(version):
    venv = ROOT / ".venv" / f"werkzeug-{version}"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv.relative_to(ROOT)}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"werkzeug=={version}"], check=True)
    return python


def major_minor(version):
    return tuple(int(x) for x in version.split(".")[:2])


def jobs_for(version, rotation):
    """The hashes to make with this version. `rotation` picks passwords so they vary."""
    def pick(ascii_only=False):
        password, wrong = PASSWORDS[rotation[0] % len(PASSWORDS)]
        rotation[0] += 1
        if ascii_only:
            # check_password_hash of a `plain` hash compares the password itself, and
            # hmac.compare_digest refuses non-ASCII str: werkzeug raises there.
            password, wrong = PASSWORDS[0]
        nfkc = unicodedata.normalize("NFKC", password)
        return {"password": password, "wrong": wrong, "nfkc": nfkc if nfkc != password else None}

    mm = major_minor(version)
    jobs = [{"method": None, "kind": "default", **pick()},
            {"method": None, "kind": "default", **pick()}]
    jobs.append({"method": "pbkdf2:sha1", "kind": "verify", **pick()})
    jobs.append({"method": "pbkdf2:sha512", "kind": "verify", **pick()})
    if mm >= (2, 3):
        jobs.append({"method": "scrypt", "kind": "verify", **pick()})
    if version == "3.1.9":
        # Parameters other than the default, both spelled out by the caller.
        jobs.append({"method": "scrypt:16384:8:2", "kind": "verify", **pick()})
        jobs.append({"method": "pbkdf2:sha256:1000", "kind": "verify", **pick()})
        # Plain `pbkdf2`: sha256 at 3.1's 1,000,000 iterations, the costliest default there is.
        jobs.append({"method": "pbkdf2", "kind": "verify", **pick()})
    # Forms werkzeug once made that the function refuses (bad_credentials + a warning).
    if version == "0.11.15":
        jobs.append({"method": "sha1", "kind": "refuse", **pick(True)})
    if version == "2.0.3":
        jobs.append({"method": "md5", "kind": "refuse", **pick(True)})
        jobs.append({"method": "plain", "kind": "refuse", **pick(True)})
    if version == "2.3.8":
        jobs.append({"method": "sha256", "kind": "refuse", **pick(True)})
    return jobs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", default=",".join(VERSIONS))
    args = parser.parse_args()
    rotation = [0]
    vectors = []
    for version in args.versions.split(","):
        python = venv_python(version)
        jobs = jobs_for(version, rotation)
        done = subprocess.run([str(python), "-c", WORKER], input=json.dumps(jobs),
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"werkzeug {version} failed:\n{done.stderr}")
        result = json.loads(done.stdout)
        assert result["version"] == version, (result["version"], version)
        for row in result["vectors"]:
            method = row["hash"].split("$", 1)[0]
            print(f"werkzeug {version}: {row['method'] or '(default)'} -> {method}",
                  file=sys.stderr)
            if row["kind"] != "refuse":
                assert row["check"] and not row["check_wrong"], row
                assert row.get("check_nfkc") in (None, False), row
            vector = {"werkzeug": version, "kind": row["kind"],
                      "method_asked": row["method"], "method": method,
                      "password": row["password"], "wrong": row["wrong"]}
            if row["nfkc"] is not None:
                vector["nfkc"] = row["nfkc"]
            vector["hash"] = row["hash"]
            vector["werkzeug_check"] = row["check"]
            vector["werkzeug_check_wrong"] = row["check_wrong"]
            if "check_nfkc" in row:
                vector["werkzeug_check_nfkc"] = row["check_nfkc"]
            vectors.append(vector)
    doc = {
        "about": ("Password hashes made by werkzeug itself (generate_password_hash), with its "
                  "own check_password_hash answers, for tests/werkzeug.rs. Made by "
                  "scripts/werkzeug-vectors.py, each version installed from PyPI into its own "
                  "venv; do not edit by hand, run the script again. kind: default = the "
                  "version's default method, verify = an explicit method we verify, refuse = "
                  "a form we refuse (bad_credentials)."),
        "python": platform.python_version(),
        "vectors": vectors,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(vectors)} vectors to {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
