"""Sessions that end when they should (issue 19), end to end: headless Chromium on the iHome-shaped
site, the function's new routes behind the same front (front.py sends DELETE /api/v1.0/session,
DELETE /api/v1.0/sessions, PUT /api/v1.0/users/password and POST /api/v1.0/password_resets to
it), the Flask hook reading the same Redis. After each step the stored state is read: Redis
(session_ended:<jti>, session_user:<sub>, the codes and login counts), the DynamoDB item, the SQL
row, Flask's session.

- 退出 in one of two browsers: that token is refused at the site and at the function when its
  copy is replayed by a plain HTTP client; the other browser stays in.
- A password change in one browser logs the other out on its next page.
- A user locked out by 20 wrong passwords resets with a reset SMS code, gets in with the new
  password, the old refused. `cargo lambda watch` gives every event sourceIp 127.0.0.1, so the 20
  (which an attacker would send from four addresses, five each: the per-address limit) are sent
  to a second instance of the function on the same stores whose per-(mobile, address) limit is
  raised (`lenient`); the per-mobile count they build is the one every instance reads.
- A registration code cannot reset a password, nor a reset code register a user.
"""
import contextlib
import http.client
import json
import os
import subprocess
import tempfile
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from conftest import (PASSWORD, REDIS, ROOT, claims_of, free_port, harness, own_row, poll,
                      random_mobile, register, stored_item)
from test_browser import fill, log_out, open_page, session_cookie, text_of, wait

NEW_PASSWORD = "a brand new passphrase"
WRONG = "not the password at all"
TOO_MANY = "too_many_attempts"


@contextlib.contextmanager
def chromium():
    """Another headless Chromium with a profile of its own (tests/browser/conftest.py's options):
    a second device of the same user."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--lang=zh-CN",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def second_browser():
    with chromium() as driver:
        yield driver


class LenientFunction(harness.Function):
    """The function as the front's (its env file: same table, Redis, key, origin), a second
    instance under `cargo lambda watch` whose per-(mobile, address) login limit is 100/600."""

    def __init__(self, base_env, logdir):
        self.port = free_port()
        lines = [line for line in base_env.read_text().splitlines()
                 if not line.startswith("LOGIN_LIMIT_MOBILE_IP=")]
        env_file = logdir / "lenient.env"
        env_file.write_text("\n".join(lines + ["LOGIN_LIMIT_MOBILE_IP=100/600"]) + "\n")
        self.log = open(logdir / "watch-lenient.log", "w")
        self.proc = subprocess.Popen(
            ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(self.port), "--env-file", str(env_file)],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.base = "/lambda-url/ihome-register"
        poll("cargo lambda watch (lenient)", self.ready, 600)


@pytest.fixture(scope="module")
def lenient(front, rundir):
    made = LenientFunction(rundir / "ihome.env", rundir)
    try:
        yield made
    finally:
        made.stop()


def call(front, method, path, body=None, token=None, function=None):
    """A plain HTTP client: (status, Set-Cookie headers, JSON answer). Through the front, or
    straight to `function` (a Function)."""
    headers = {"origin": front.origin}
    if body is not None:
        headers["content-type"] = "application/json"
        body = json.dumps(body)
    if token is not None:
        headers["cookie"] = f"__Host-session={token}"
    if function is None:
        conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=60)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", function.port, timeout=60)
        path = function.base + path
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.headers.get_all("set-cookie") or [], json.loads(resp.read())
    finally:
        conn.close()


def token_of(driver):
    found = session_cookie(driver)
    assert len(found) == 1, found
    return found[0]["value"]


def item(stores, mobile):
    found = stored_item(stores, mobile)
    assert found is not None, "the user's item"
    return found


def version_of(stores, mobile):
    """The durable session version (absent: 0)."""
    return item(stores, mobile).get("session_version", 0)


def log_in(driver, front, mobile, password):
    """iHome's login page, through the function: lands on the home page, logged in."""
    driver.get(f"{front.origin}/login.html")
    fill(driver, {"mobile": mobile, "password": password})
    driver.find_element(By.ID, "login").click()
    wait(driver, lambda d: d.current_url == f"{front.origin}/"
         or d.find_element(By.ID, "errmsg").is_displayed(), 60)
    assert driver.current_url == f"{front.origin}/", text_of(driver, "errmsg")
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert driver.find_element(By.ID, "logged-in").is_displayed()
    return token_of(driver)


def flask_session(driver, make_app):
    """Flask's session as the browser holds it (signed with the site's SECRET_KEY)."""
    app = make_app()
    value = [c["value"] for c in driver.get_cookies() if c["name"] == "session"]
    if not value:
        return {}
    return dict(app.session_interface.get_signing_serializer(app).loads(value[0]))


def site_login_state(front, token):
    """What the site's login-state view says to a replayed token: iHome's errno."""
    status, _, answer = call(front, "GET", "/api/v1.0/session", token=token)
    assert status == 200
    return answer["errno"]


def test_logging_out_in_one_browser_ends_that_token_at_the_site_and_at_the_function(
        front, stores, database, browser, second_browser):
    mobile = random_mobile()
    register(front, stores, mobile)
    one = log_in(browser, front, mobile, PASSWORD)
    other = log_in(second_browser, front, mobile, PASSWORD)
    one_claims, other_claims = claims_of(one), claims_of(other)
    assert one_claims["sub"] == other_claims["sub"] and one_claims["jti"] != other_claims["jti"]
    row = own_row(database, mobile)

    log_out(browser, front)  # 退出 on my.html: DELETE /api/v1.0/session, to the function
    sent = [e for e in front.exchanges if e["method"] == "DELETE"][-1]
    assert (sent["path"], sent["code"]) == ("/api/v1.0/session", "logged_out")
    # Stored: that jti ended until the token's own expiry (+60 s), the other untouched, the
    # user's version unchanged (a single-device logout ends one token).
    key = f"session_ended:{one_claims['jti']}"
    assert REDIS.get(key) == "1"
    left_ms, now_ms = REDIS.pttl(key), time.time() * 1000
    assert abs(now_ms + left_ms - (one_claims["exp"] + 60) * 1000) <= 2000, left_ms
    assert REDIS.exists(f"session_ended:{other_claims['jti']}") == 0
    assert REDIS.get(f"session_user:{one_claims['sub']}") == str(one_claims["sv"])

    # The old cookie, replayed by a plain client: not logged in at the site, nor the function.
    assert site_login_state(front, one) == "4101"
    assert call(front, "GET", "/api/v1.0/user", token=one)[2]["errno"] == "4101"
    status, cookies, answer = call(front, "DELETE", "/api/v1.0/session", token=one)
    assert (status, answer["errno"], answer["code"]) == (200, "4101", "not_logged_in"), answer
    status, cookies, answer = call(front, "PUT", "/api/v1.0/users/password", token=one,
                                   body={"password": PASSWORD, "new_password": NEW_PASSWORD,
                                         "new_password2": NEW_PASSWORD})
    assert answer["code"] == "not_logged_in", answer
    assert not [c for c in cookies if c.startswith("__Host-session=") and
                not c.startswith("__Host-session=;")], "no fresh session for an ended one"

    # The other browser is still in, as itself.
    open_page(second_browser, front, "my.html")
    assert text_of(second_browser, "user-mobile") == mobile
    assert site_login_state(front, other) == "0"
    assert own_row(database, mobile) == row
    assert version_of(stores, mobile) == one_claims["sv"]


def test_a_password_change_in_one_browser_logs_the_other_out_on_its_next_page(
        front, stores, database, browser, second_browser, make_app):
    mobile = random_mobile()
    register(front, stores, mobile)
    before = log_in(browser, front, mobile, PASSWORD)
    other = log_in(second_browser, front, mobile, PASSWORD)
    open_page(second_browser, front, "my.html")
    assert flask_session(second_browser, make_app)["mobile"] == mobile
    hash_before = item(stores, mobile)["password_hash"]
    row = own_row(database, mobile)

    open_page(browser, front, "password.html")
    fill(browser, {"password": WRONG, "new-password": NEW_PASSWORD,
                   "new-password2": NEW_PASSWORD})
    browser.find_element(By.ID, "change-password").click()
    wait(browser, EC.visibility_of_element_located((By.ID, "errmsg")))
    assert text_of(browser, "errmsg") == "用户名或密码错误"  # a wrong current password
    assert item(stores, mobile)["password_hash"] == hash_before
    fill(browser, {"password": PASSWORD, "new-password": NEW_PASSWORD,
                   "new-password2": NEW_PASSWORD})
    browser.find_element(By.ID, "change-password").click()
    wait(browser, lambda d: d.find_element(By.ID, "saved").is_displayed()
         or d.find_element(By.ID, "errmsg").is_displayed(), 60)
    assert browser.find_element(By.ID, "saved").is_displayed(), text_of(browser, "errmsg")

    # Stored: a new hash, the version up by one in DynamoDB and in Redis; this browser holds a
    # fresh token of that version.
    after = token_of(browser)
    sub, old_sv, new_sv = claims_of(before)["sub"], claims_of(before)["sv"], claims_of(after)["sv"]
    assert after != before and claims_of(after)["sub"] == sub
    assert item(stores, mobile)["password_hash"] != hash_before
    assert version_of(stores, mobile) == new_sv == old_sv + 1
    assert REDIS.get(f"session_user:{sub}") == str(new_sv)

    # This browser stays in; the other is out at its next page, its Flask session cleared.
    open_page(browser, front, "my.html")
    assert text_of(browser, "user-mobile") == mobile
    second_browser.get(f"{front.origin}/my.html")
    wait(second_browser, EC.url_to_be(f"{front.origin}/login.html"))
    state = flask_session(second_browser, make_app)
    assert "user_id" not in state and "mobile" not in state, state
    assert site_login_state(front, other) == "4101"
    assert site_login_state(front, before) == "4101", "this browser's previous token too"
    assert own_row(database, mobile) == row

    # The old password is refused, the new one logs in.
    assert call(front, "POST", "/api/v1.0/sessions",
                {"mobile": mobile, "password": PASSWORD})[2]["code"] == "bad_credentials"
    log_in(second_browser, front, mobile, NEW_PASSWORD)
    open_page(second_browser, front, "my.html")
    assert text_of(second_browser, "user-mobile") == mobile


def test_a_user_locked_out_by_20_wrong_passwords_resets_with_an_sms_code(front, stores, database,
                                                                        browser, lenient):
    mobile = random_mobile()
    register(front, stores, mobile)
    hash_before = item(stores, mobile)["password_hash"]
    sv_before = version_of(stores, mobile)
    for attempt in range(20):
        answer = call(front, "POST", "/api/v1.0/sessions", {"mobile": mobile, "password": WRONG},
                      function=lenient)[2]
        assert answer["code"] == "bad_credentials", (attempt, answer)
    assert stores.login_counts(mobile)[2] == 20, "the per-mobile count"
    # Locked out: the right password is refused, at either instance and in the browser.
    for function in (lenient, None):
        assert call(front, "POST", "/api/v1.0/sessions", {"mobile": mobile, "password": PASSWORD},
                    function=function)[2]["code"] == TOO_MANY
    browser.get(f"{front.origin}/login.html")
    fill(browser, {"mobile": mobile, "password": PASSWORD})
    browser.find_element(By.ID, "login").click()
    wait(browser, EC.visibility_of_element_located((By.ID, "errmsg")))
    assert text_of(browser, "errmsg") == "错误次数过多，请稍后重试"

    # The site's SMS issuer sends a reset code (sms_code_reset_<mobile>, as it writes
    # registration codes); the user resets on reset.html and lands logged in.
    REDIS.set(f"sms_code_reset_{mobile}", "864209", ex=300)
    open_page(browser, front, "reset.html")
    fill(browser, {"mobile": mobile, "phonecode": "864209", "password": NEW_PASSWORD,
                   "password2": NEW_PASSWORD})
    browser.find_element(By.ID, "reset").click()
    wait(browser, EC.url_to_be(f"{front.origin}/index.html"))
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert browser.find_element(By.ID, "logged-in").is_displayed()
    assert text_of(browser, "user-name") == mobile
    sent = [e for e in front.exchanges if e["path"] == "/api/v1.0/password_resets"][-1]
    assert sent["code"] == "password_reset"

    # Stored: the code spent, the login counts of that mobile cleared, a new hash, the version
    # up (every earlier session ended), the browser's token of the new version.
    assert REDIS.get(f"sms_code_reset_{mobile}") is None
    assert stores.login_counts(mobile)[0::2] == (None, None), "this address's and the mobile's"
    assert item(stores, mobile)["password_hash"] != hash_before
    assert version_of(stores, mobile) == sv_before + 1 == claims_of(token_of(browser))["sv"]
    open_page(browser, front, "my.html")
    assert text_of(browser, "user-mobile") == mobile
    assert len(database.users(mobile)) == 1

    # The old password is refused, the new one logs in.
    assert call(front, "POST", "/api/v1.0/sessions",
                {"mobile": mobile, "password": PASSWORD})[2]["code"] == "bad_credentials"
    status, cookies, answer = call(front, "POST", "/api/v1.0/sessions",
                                   {"mobile": mobile, "password": NEW_PASSWORD})
    assert answer["code"] == "logged_in" and any(c.startswith("__Host-session=") for c in cookies)
    with open(lenient.log.name, errors="replace") as watch:
        text = watch.read()
    assert mobile not in text and "eyJ" not in text and "864209" not in text


def test_a_registration_code_cannot_reset_nor_a_reset_code_register(front, stores, database,
                                                                   browser):
    mobile = random_mobile()
    register(front, stores, mobile)
    hash_before = item(stores, mobile)["password_hash"]
    stores.set_code(mobile, "112358")  # a registration code for this number (sms_code_<mobile>)
    open_page(browser, front, "reset.html")
    fill(browser, {"mobile": mobile, "phonecode": "112358", "password": NEW_PASSWORD,
                   "password2": NEW_PASSWORD})
    browser.find_element(By.ID, "reset").click()
    wait(browser, EC.visibility_of_element_located((By.ID, "errmsg")))
    sent = [e for e in front.exchanges if e["path"] == "/api/v1.0/password_resets"][-1]
    assert sent["code"] == "sms_code_expired", sent
    assert session_cookie(browser) == []
    # Nothing spent, nothing changed: the registration code as it was, the old password in.
    assert stores.code(mobile) == ("112358", 0, False)
    assert REDIS.exists(f"sms_code_reset_{mobile}") == 0
    assert item(stores, mobile)["password_hash"] == hash_before
    assert call(front, "POST", "/api/v1.0/sessions",
                {"mobile": mobile, "password": PASSWORD})[2]["code"] == "logged_in"
    REDIS.delete(f"sms_code_{mobile}")

    # The reverse: a reset code for a new number does not register it.
    newcomer = random_mobile()
    REDIS.set(f"sms_code_reset_{newcomer}", "314159", ex=300)
    answer = call(front, "POST", "/api/v1.0/users",
                  {"mobile": newcomer, "sms_code": "314159", "password": PASSWORD,
                   "password2": PASSWORD})[2]
    assert answer["code"] == "sms_code_expired", answer
    assert stored_item(stores, newcomer) is None
    assert REDIS.get(f"sms_code_reset_{newcomer}") == "314159"
    REDIS.delete(f"sms_code_reset_{newcomer}")
    assert database.users(newcomer) == []
