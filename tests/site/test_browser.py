"""A new user, in headless Chromium, on the iHome-shaped site: registers through the function (the
register page posts to the front, which sends it to `cargo lambda watch`), then uses the Flask
pages as themselves: their own mobile on the profile page, a rename that survives a reload, the
real-name form stored on their own row, a house published under their own id, and a logout that
logs them out. After each step the SQL rows are read, not only the page."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import (LANDLORD, PASSWORD, REGISTERED, own_row, random_mobile, secrets_of,
                      stored_item)
from ihome_site import seed


def wait(driver, condition, seconds=30):
    return WebDriverWait(driver, seconds).until(condition)


def open_page(driver, front, name):
    """Opens a page and waits until its first API answer has been shown (data-ready)."""
    driver.get(f"{front.origin}/{name}")
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))


def text_of(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def fill(driver, values):
    for element_id, value in values.items():
        box = driver.find_element(By.ID, element_id)
        box.clear()
        box.send_keys(value)


def publish(driver, front, fields):
    """Fills newhouse.html (open already) with `fields`, publishes, and waits for myhouse.html to
    have shown the list."""
    fill(driver, fields)
    driver.find_element(By.ID, "publish").click()
    wait(driver, EC.url_to_be(f"{front.origin}/myhouse.html"))
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))


def log_out(driver, front):
    """The site's logout on my.html: the function's cookie is gone, the home page says so, and
    my.html then sends to the login page (4101)."""
    open_page(driver, front, "my.html")
    driver.find_element(By.ID, "logout").click()
    wait(driver, EC.url_to_be(f"{front.origin}/index.html"))
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert driver.find_element(By.ID, "logged-out").is_displayed()
    assert session_cookie(driver) == []
    driver.get(f"{front.origin}/my.html")
    wait(driver, EC.url_to_be(f"{front.origin}/login.html"))


def session_cookie(driver):
    return [c for c in driver.get_cookies() if c["name"] == "__Host-session"]


def assert_nobody_elses(driver):
    page = driver.page_source
    for user in seed.USERS:
        for secret in secrets_of(user):
            assert secret not in page, f"{secret!r} of another user on {driver.current_url}"


def test_a_new_user_registers_through_the_function_and_uses_the_site_as_themselves(
        front, stores, database, browser):
    mobile = random_mobile()
    stores.set_code(mobile, "135790")

    # Register: the page is Flask's, the POST goes to the function, same origin.
    browser.get(f"{front.origin}/register.html")
    fill(browser, {"mobile": mobile, "phonecode": "135790", "password": PASSWORD,
                   "password2": PASSWORD})
    browser.find_element(By.ID, "register").click()
    wait(browser, EC.url_to_be(f"{front.origin}/index.html"))
    REGISTERED.append(mobile)
    sent = [e for e in front.exchanges if e["path"] == "/api/v1.0/users"][-1]
    assert sent["status"] == 200 and sent["headers"]["sec-fetch-site"] == "same-origin"
    cookie = session_cookie(browser)
    assert len(cookie) == 1 and cookie[0]["httpOnly"] and cookie[0]["secure"]
    assert stored_item(stores, mobile)["mobile"] == mobile

    # The home page knows them: the hook created their row on this first request.
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert text_of(browser, "user-name") == mobile
    me = own_row(database, mobile)
    assert me["name"] == mobile and me["id"] not in database.seeded.values()

    # Profile: their own mobile, never user #1's.
    open_page(browser, front, "my.html")
    assert (text_of(browser, "user-mobile"), text_of(browser, "user-name")) == (mobile, mobile)
    assert_nobody_elses(browser)

    # Rename; a name taken by another user is refused with iHome's message.
    open_page(browser, front, "profile.html")
    fill(browser, {"new-name": LANDLORD["name"]})
    browser.find_element(By.ID, "save-name").click()
    wait(browser, EC.visibility_of_element_located((By.ID, "errmsg")))
    assert text_of(browser, "errmsg") == "用户名已存在"
    new_name = "租客" + mobile[-4:]
    fill(browser, {"new-name": new_name})
    browser.find_element(By.ID, "save-name").click()
    wait(browser, EC.visibility_of_element_located((By.ID, "saved")))
    assert own_row(database, mobile)["name"] == new_name
    browser.refresh()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert text_of(browser, "user-name") == new_name
    open_page(browser, front, "index.html")
    assert text_of(browser, "user-name") == new_name

    # Real-name check: stored on their row; user #1's untouched.
    landlord = own_row(database, LANDLORD["mobile"])
    open_page(browser, front, "auth.html")
    assert browser.find_element(By.ID, "real-name").get_attribute("value") == ""
    fill(browser, {"real-name": "李四", "id-card": "440301199501012345"})
    browser.find_element(By.ID, "save-auth").click()
    wait(browser, EC.visibility_of_element_located((By.ID, "saved")))
    me = own_row(database, mobile)
    assert (me["real_name"], me["id_card"]) == ("李四", "440301199501012345")
    assert own_row(database, LANDLORD["mobile"]) == landlord
    open_page(browser, front, "auth.html")
    real_name = browser.find_element(By.ID, "real-name")
    assert real_name.get_attribute("value") == "李四" and not real_name.is_enabled()

    # Publish a house: owned by their own id.
    open_page(browser, front, "myhouse.html")
    assert browser.find_elements(By.CSS_SELECTOR, "li.house") == []
    browser.find_element(By.ID, "new-house").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    title = "浏览器发布的房源" + mobile[-4:]
    publish(browser, front, {
        "house-title": title, "house-price": "288", "house-address": "海淀区中关村",
        "house-room-count": "2", "house-acreage": "70", "house-unit": "两室一厅",
        "house-capacity": "3", "house-beds": "双人床一张", "house-deposit": "500",
        "house-min-days": "1", "house-max-days": "30"})
    listed = browser.find_elements(By.CSS_SELECTOR, "li.house")
    assert [h.text for h in listed] == [title]
    houses = database.rows("SELECT * FROM ih_house_info WHERE title = :t", t=title)
    assert len(houses) == 1 and houses[0]["user_id"] == me["id"]
    assert houses[0]["price"] == 28800 and houses[0]["id"] == int(listed[0].get_attribute(
        "data-house-id"))
    assert_nobody_elses(browser)

    # Log out: the function's cookie is gone, and the site says so.
    log_out(browser, front)

    assert len(database.users(mobile)) == 1, "one row for this user, all along"
