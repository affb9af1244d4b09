"""The iHome front end as it is, and another site, in a real browser (see conftest.py)."""
import json

from selenium.common.exceptions import NoAlertPresentException, UnexpectedAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import random_mobile, verify_jwt

PASSWORD = "correct horse battery"


def fill_and_submit(driver, mobile, code):
    for field, value in (("mobile", mobile), ("phonecode", code), ("password", PASSWORD),
                         ("password2", PASSWORD)):
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.ID, "register").click()


def session_cookie(driver):
    found = [c for c in driver.get_cookies() if c["name"] == "__Host-session"]
    assert len(found) == 1, driver.get_cookies()
    cookie = found[0]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["path"] == "/"
    return cookie


def assert_registered(stores, driver, mobile):
    """The browser holds the session cookie, its token names the stored user, the code is spent."""
    claims = verify_jwt(session_cookie(driver)["value"])
    item = stores.item(mobile)
    assert item is not None, "the user is stored"
    assert claims["sub"] == item["user_id"] and claims["mobile"] == mobile
    assert stores.code(mobile) is None, "the code is spent"


def wait_for_ajax(driver, front, mobile, code):
    """Waits until the front passed on the request carrying `code` and the page's jQuery has no
    request in flight; returns that exchange. An open alert shows as UnexpectedAlertPresent."""
    wait = WebDriverWait(driver, 30)
    exchange = wait.until(lambda _: (e := front.exchange_for(mobile))
                          and json.loads(e["body"])["sms_code"] == code and e)
    wait.until(lambda d: d.execute_script("return window.jQuery && jQuery.active === 0"))
    return exchange


def test_ihome_mode_the_register_page_alerts_a_wrong_code_and_lands_on_index(
        stores, fronts, browser):
    front = fronts["ihome"]
    mobile = random_mobile()
    stores.set_code(mobile, "111111")
    browser.get(f"{front.origin}/register.html")

    fill_and_submit(browser, mobile, "222222")
    alert = WebDriverWait(browser, 30).until(EC.alert_is_present())
    assert alert.text == "短信验证码错误"
    alert.accept()
    exchange = front.exchange_for(mobile)
    assert exchange["status"] == 200 and exchange["answer"]["code"] == "sms_code_mismatch"
    assert stores.code(mobile) == ("111111", 1, False), "the code kept, one wrong try counted"
    assert stores.item(mobile) is None

    fill_and_submit(browser, mobile, "111111")
    WebDriverWait(browser, 30).until(EC.url_to_be(f"{front.origin}/index.html"))
    exchange = front.exchange_for(mobile)
    assert exchange["status"] == 200 and exchange["answer"]["errno"] == "0"
    # What the browser sent: its own origin, same-origin, the page's JSON.
    assert exchange["headers"]["origin"] == front.origin
    assert exchange["headers"]["sec-fetch-site"] == "same-origin"
    assert exchange["headers"]["content-type"].startswith("application/json")
    assert_registered(stores, browser, mobile)


def test_http_mode_the_same_page_stays_silent_on_a_refusal_and_lands_on_success(
        stores, fronts, browser):
    front = fronts["http"]
    mobile = random_mobile()
    stores.set_code(mobile, "333333")
    browser.get(f"{front.origin}/register.html")

    fill_and_submit(browser, mobile, "444444")
    try:
        exchange = wait_for_ajax(browser, front, mobile, "444444")
    except UnexpectedAlertPresentException as e:
        raise AssertionError(f"an alert appeared: {e.alert_text}")
    assert exchange["status"] == 400 and exchange["answer"]["code"] == "sms_code_mismatch"
    try:
        text = browser.switch_to.alert.text
        raise AssertionError(f"an alert appeared: {text}")
    except NoAlertPresentException:
        pass  # jQuery calls no success callback on a 400, and the page has no error callback.
    assert browser.current_url == f"{front.origin}/register.html", "the page did not move"
    assert stores.code(mobile) == ("333333", 1, False)

    fill_and_submit(browser, mobile, "333333")
    WebDriverWait(browser, 30).until(EC.url_to_be(f"{front.origin}/index.html"))
    assert front.exchange_for(mobile)["status"] == 201
    assert_registered(stores, browser, mobile)


def register_with_fetch(driver, front, mobile, code):
    driver.get(f"{front.origin}/fetch.html")
    form = {"mobile": mobile, "sms_code": code, "password": PASSWORD, "password2": PASSWORD}
    driver.execute_script("register(arguments[0])", form)
    text = WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, "result").text)
    return json.loads(text)


def test_the_allowed_origin_registers_with_fetch_and_the_browser_keeps_the_cookie(
        stores, fronts, browser):
    for mode, status in (("ihome", 200), ("http", 201)):
        front = fronts[mode]
        mobile = random_mobile()
        stores.set_code(mobile, "555555")
        got = register_with_fetch(browser, front, mobile, "555555")
        assert got == {"status": status,
                       "body": {"errno": "0", "errmsg": "注册成功", "code": "registered"}}
        assert front.exchange_for(mobile)["headers"]["origin"] == front.origin
        assert_registered(stores, browser, mobile)
        browser.delete_all_cookies()


def cross_site_attempt(stores, front, attacker, browser, page, mobile, code):
    """Opens `page` on the other site, aimed at the front's API with a valid code for `mobile`;
    returns the exchange the front saw."""
    form = json.dumps({"mobile": mobile, "sms_code": code, "password": PASSWORD,
                       "password2": PASSWORD})
    html = (attacker.pages_src[page]
            .replace("TARGET", f"{front.origin}/api/v1.0/users")
            .replace("FIELD", form[:-1] + ', "x": "')
            .replace("BODY", form))
    attacker.pages[f"/{page}"] = ("text/html; charset=utf-8", html.encode())
    browser.get(f"{attacker.origin}/{page}")
    return WebDriverWait(browser, 30).until(lambda _: front.exchange_for(mobile))


def assert_untouched(stores, mobile, code):
    assert stores.code(mobile) == (code, 0, False), "the code keeps no trace of the request"
    assert stores.pttl(mobile) > 0
    assert stores.item(mobile) is None, "nothing written"


def test_another_site_cannot_sign_a_visitor_up_with_a_form_or_fetch(
        stores, fronts, attacker, browser):
    import pathlib
    here = pathlib.Path(__file__).resolve().parent / "attacker"
    attacker.pages_src = {p: (here / p).read_text() for p in ("csrf.html", "fetch.html")}
    for mode in ("ihome", "http"):
        front = fronts[mode]
        for page in ("csrf.html", "fetch.html"):
            mobile = random_mobile()
            stores.set_code(mobile, "777777")
            exchange = cross_site_attempt(stores, front, attacker, browser, page, mobile,
                                          "777777")
            # What the browser really sent: a simple request, no preflight, from another site,
            # whose body is a registration that would have worked.
            sent = exchange["headers"]
            assert sent["sec-fetch-site"] == "cross-site", sent
            assert sent["origin"] == attacker.origin, sent
            assert sent["content-type"].startswith("text/plain"), sent
            body = json.loads(exchange["body"])
            assert (body["mobile"], body["sms_code"]) == (mobile, "777777")
            assert exchange["status"] == 403, (mode, page, exchange)
            assert exchange["answer"] == {"errno": "4201", "errmsg": "非法请求",
                                          "code": "forbidden_origin"}
            assert_untouched(stores, mobile, "777777")
            assert not [c for c in browser.get_cookies() if c["name"] == "__Host-session"]

            # The same code from the site itself registers: the attack carried a valid code.
            got = register_with_fetch(browser, front, mobile, "777777")
            assert got["body"]["code"] == "registered", got
            assert_registered(stores, browser, mobile)
            browser.delete_all_cookies()
