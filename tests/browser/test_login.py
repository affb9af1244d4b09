"""Logging in on a page of the iHome login page's shape (site/login.html), and another site trying
to, in a real browser against the function's POST /api/v1.0/sessions (see conftest.py).

Each test uses fresh mobiles and reads its own truth: the exchange the front passed on, the
failure counts the function keeps in Redis for that mobile (login_fail:ms:<mobile>:127.0.0.1 and
login_fail:m:<mobile>: cargo lambda watch gives every event sourceIp 127.0.0.1, so that is the
browser's address as the function sees it), the stored item, and every cookie the browser holds.

The page has a success callback only, as iHome's login page has. With STATUS_CODES=ihome (the
default) every refusal is HTTP 200 and the page shows errmsg under the password field. With
STATUS_CODES=http the same page stays silent on every refusal: a wrong password (401) or too many
attempts (429) leaves the form as it was, no message shown, the page not moved (jQuery calls no
success callback on a 4xx), while a login (200) still lands on /. As for the register page, choose
http only with a front end that has an error callback."""
import json
import pathlib

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import JWT_SECRET, random_mobile, verify_jwt
from test_front_end import PASSWORD, fill_and_submit, session_cookie

SESSIONS = "/api/v1.0/sessions"
WRONG = "correct horse batterz"
BAD_CREDENTIALS = {"errno": "4004", "errmsg": "用户名或密码错误", "code": "bad_credentials"}
TOO_MANY = {"errno": "4201", "errmsg": "错误次数过多，请稍后重试", "code": "too_many_attempts"}
LOGGED_IN = {"errno": "0", "errmsg": "登录成功", "code": "logged_in"}


def seed(stores, front, mobile):
    """Registers `mobile` (with PASSWORD) through the front's function, as a server would, with
    no browser involved; returns the stored user_id."""
    stores.set_code(mobile, "246802")
    body = json.dumps({"mobile": mobile, "sms_code": "246802", "password": PASSWORD,
                       "password2": PASSWORD}).encode()
    _, _, answer = front.function.post(body, {"content-type": "application/json"})
    assert json.loads(answer)["code"] == "registered", answer
    return stores.item(mobile)["user_id"]


def session_cookies(driver):
    """Every __Host-session cookie the browser holds, for any site."""
    cookies = driver.execute_cdp_cmd("Storage.getCookies", {})["cookies"]
    return [c for c in cookies if c["name"] == "__Host-session"]


def log_in_on_page(driver, front, mobile, password):
    """Types into the login page and submits; returns the exchange it caused, once the page's
    jQuery has dealt with the answer."""
    before = len(front.exchanges_for(mobile, SESSIONS))
    for field, value in (("mobile", mobile), ("password", password)):
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    # Focusing a field hides the last message, as on iHome's page: what shows next is new.
    assert not driver.find_element(By.ID, "password-err").is_displayed()
    driver.find_element(By.ID, "login").click()
    wait = WebDriverWait(driver, 30)
    exchange = wait.until(lambda _: (found := front.exchanges_for(mobile, SESSIONS))[before:]
                          and found[-1])
    wait.until(lambda d: "/login.html" not in d.current_url
               or d.execute_script("return jQuery.active === 0"))
    return exchange


def shown(driver):
    """The message under the password field, or None while the box is hidden."""
    box = driver.find_element(By.ID, "password-err")
    return box.find_element(By.TAG_NAME, "span").text if box.is_displayed() else None


def assert_no_alert(driver):
    try:
        raise AssertionError(f"an alert appeared: {driver.switch_to.alert.text}")
    except NoAlertPresentException:
        pass


def test_ihome_mode_a_user_registered_on_the_register_page_logs_in_on_the_login_page(
        stores, fronts, browser):
    front = fronts["ihome"]
    mobile = random_mobile()
    stores.set_code(mobile, "135790")
    browser.get(f"{front.origin}/register.html")
    fill_and_submit(browser, mobile, "135790")
    WebDriverWait(browser, 30).until(EC.url_to_be(f"{front.origin}/index.html"))
    user_id = stores.item(mobile)["user_id"]
    registration = verify_jwt(session_cookie(browser)["value"])
    assert registration["sub"] == user_id

    browser.delete_all_cookies()
    assert session_cookies(browser) == [], "logged out: the cookie is gone"

    browser.get(f"{front.origin}/login.html")
    exchange = log_in_on_page(browser, front, mobile, PASSWORD)
    WebDriverWait(browser, 30).until(EC.url_to_be(f"{front.origin}/"))
    assert browser.find_element(By.ID, "home").text == "爱家"
    assert exchange["status"] == 200 and exchange["answer"] == LOGGED_IN
    # What the browser sent: the page's JSON, from its own origin.
    assert json.loads(exchange["body"]) == {"mobile": mobile, "password": PASSWORD}
    sent = exchange["headers"]
    assert sent["origin"] == front.origin and sent["sec-fetch-site"] == "same-origin"
    assert sent["content-type"].startswith("application/json")

    cookie = session_cookie(browser)  # HttpOnly, Secure, Path=/
    assert [c["value"] for c in session_cookies(browser)] == [cookie["value"]]
    assert "__Host-session" not in browser.execute_script("return document.cookie")
    claims = verify_jwt(cookie["value"])  # HS256 over the functions' JWT_SECRET
    assert (claims["sub"], claims["mobile"]) == (user_id, mobile), "the stored user"
    assert claims["jti"] != registration["jti"], "a new session, not the registration's"
    # Counted when admitted, then given back: no failure stays.
    ms, _, m = stores.login_counts(mobile)
    assert (ms, m) == (None, 0)


def test_ihome_mode_a_wrong_password_or_unknown_mobile_shows_one_message_and_the_page_stays(
        stores, fronts, browser):
    front = fronts["ihome"]
    mobile, stranger = random_mobile(), random_mobile()
    seed(stores, front, mobile)
    page = f"{front.origin}/login.html"
    browser.get(page)

    for who, password in ((mobile, WRONG), (stranger, PASSWORD)):
        exchange = log_in_on_page(browser, front, who, password)
        assert exchange["status"] == 200 and exchange["answer"] == BAD_CREDENTIALS
        assert shown(browser) == "用户名或密码错误"
        assert browser.current_url == page, "the page stays"
        assert_no_alert(browser)
        # One failure, counted against 127.0.0.1 (the address cargo lambda watch gives).
        ms, s, m = stores.login_counts(who)
        assert (ms, m) == (1, 1) and s >= 1, (ms, s, m)
        assert 590 <= stores.login_ttl(who) <= 600
    assert session_cookies(browser) == []
    assert stores.item(stranger) is None


def test_ihome_mode_after_five_failures_even_the_right_password_shows_too_many_attempts(
        stores, fronts, browser):
    front = fronts["ihome"]
    mobile = random_mobile()
    seed(stores, front, mobile)
    page = f"{front.origin}/login.html"
    browser.get(page)

    for n in range(1, 6):
        exchange = log_in_on_page(browser, front, mobile, WRONG)
        assert exchange["answer"] == BAD_CREDENTIALS, n
        assert shown(browser) == "用户名或密码错误", n
        assert stores.login_counts(mobile)[::2] == (n, n)

    exchange = log_in_on_page(browser, front, mobile, PASSWORD)
    assert exchange["status"] == 200 and exchange["answer"] == TOO_MANY
    assert 590 <= int(exchange["answer_headers"]["retry-after"]) <= 600
    assert shown(browser) == "错误次数过多，请稍后重试"
    assert browser.current_url == page
    assert_no_alert(browser)
    assert session_cookies(browser) == []
    assert stores.login_counts(mobile)[::2] == (5, 5), "a refused attempt is not counted"


def test_http_mode_the_login_page_stays_silent_on_a_refusal_and_lands_on_a_login(
        stores, fronts, browser):
    front = fronts["http"]
    mobile = random_mobile()
    user_id = seed(stores, front, mobile)
    page = f"{front.origin}/login.html"
    browser.get(page)

    exchange = log_in_on_page(browser, front, mobile, WRONG)
    assert exchange["status"] == 401 and exchange["answer"] == BAD_CREDENTIALS
    assert shown(browser) is None, "no message: jQuery calls no success callback on a 401"
    assert_no_alert(browser)
    assert browser.current_url == page
    assert stores.login_counts(mobile)[::2] == (1, 1)

    log_in_on_page(browser, front, mobile, PASSWORD)
    WebDriverWait(browser, 30).until(EC.url_to_be(f"{front.origin}/"))
    assert front.exchange_for(mobile, SESSIONS)["status"] == 200
    assert verify_jwt(session_cookie(browser)["value"])["sub"] == user_id
    # The success cleared the (mobile, address) count; the mobile's keeps the failure.
    assert stores.login_counts(mobile)[::2] == (None, 1)


def attack(front, attacker, browser, page, mobile):
    """Opens `page` of the other site, posting the right credentials of `mobile` to the front's
    login route; returns the exchange the front saw."""
    body = json.dumps({"mobile": mobile, "password": PASSWORD})
    html = ((pathlib.Path(__file__).resolve().parent / "attacker" / page).read_text()
            .replace("TARGET", f"{front.origin}{SESSIONS}")
            .replace("FIELD", body[:-1] + ', "x": "')
            .replace("BODY", body))
    attacker.pages[f"/{page}"] = ("text/html; charset=utf-8", html.encode())
    browser.get(f"{attacker.origin}/{page}")
    return WebDriverWait(browser, 30).until(lambda _: front.exchange_for(mobile, SESSIONS))


def test_another_site_cannot_log_a_visitor_in_with_a_form_or_fetch(
        stores, fronts, attacker, browser):
    for mode in ("ihome", "http"):
        front = fronts[mode]
        for page in ("csrf.html", "fetch.html"):
            mobile = random_mobile()
            user_id = seed(stores, front, mobile)
            exchange = attack(front, attacker, browser, page, mobile)
            # What the browser really sent: a simple request (no preflight) from another site,
            # whose body is a login that would have worked.
            sent = exchange["headers"]
            assert sent["sec-fetch-site"] == "cross-site", sent
            assert sent["origin"] == attacker.origin, sent
            assert sent["content-type"].startswith("text/plain"), sent
            body = json.loads(exchange["body"])
            assert (body["mobile"], body["password"]) == (mobile, PASSWORD)
            assert exchange["status"] == 403, (mode, page, exchange)
            assert exchange["answer"] == {"errno": "4201", "errmsg": "非法请求",
                                          "code": "forbidden_origin"}
            assert "set-cookie" not in exchange["answer_headers"]
            assert session_cookies(browser) == []
            # Refused before the throttle: nothing counted for the mobile, not even given back.
            ms, _, m = stores.login_counts(mobile)
            assert (ms, m) == (None, None), (mode, page)

            # The same credentials on the site's own page log in: the attack carried valid ones.
            browser.get(f"{front.origin}/login.html")
            log_in_on_page(browser, front, mobile, PASSWORD)
            WebDriverWait(browser, 30).until(EC.url_to_be(f"{front.origin}/"))
            assert verify_jwt(session_cookie(browser)["value"])["sub"] == user_id
            browser.delete_all_cookies()


def test_the_functions_logged_no_password_mobile_token_or_hash(fronts):
    """Everything both functions logged in this session so far (run last in this file)."""
    for front in fronts.values():
        logs = pathlib.Path(front.function.log.name).read_text()
        assert "logged_in" in logs, "the logins above were logged"
        mobiles = {json.loads(e["body"])["mobile"] for e in front.exchanges}
        for secret in (PASSWORD, WRONG, "eyJ", "$argon2", JWT_SECRET, *mobiles):
            assert secret not in logs, f"{front.mode}: the logs contain {secret!r}"
