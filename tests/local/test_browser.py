"""The approval page in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by
Selenium opens the callback link, approves or declines, sees the result, and opens a used link.

Nothing is downloaded at run time: the browser and its driver are the system's, named by path. Without them the
module is skipped with one reason line in the summary (``-ra``): "browser tests did not run: ...". ``.ci/run``
installs them, so CI always runs these tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import StackProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = [name for name, path in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER)) if not os.access(path, os.X_OK)]
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the test set pins selenium
    MISSING.append("selenium (proving-ground/requirements-test.txt)")
if MISSING:
    pytest.skip(f"browser tests did not run: {', '.join(MISSING)} not installed "
                "(apt-get install chromium chromium-driver; .ci/run does)", allow_module_level=True)

# Debian's chromium on a CI host: no sandbox (root), no GPU, nothing fetched in the background.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")
SCRIPT = "<script>document.title='pwned'</script>"
PAGE_WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never fetches a driver or a browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def waiting_link(stack: StackProcess, tenant: str, body: dict[str, Any]) -> tuple[str, str]:
    workflow_id = stack.start_workflow(tenant, body)
    return workflow_id, stack.wait_for_status(tenant, workflow_id, "WAITING_FOR_CALLBACK")["callbackUrl"]


def heading(driver: Any) -> str:
    return str(WebDriverWait(driver, PAGE_WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located((By.TAG_NAME, "h1"))).text)


def submit(driver: Any, button: Any) -> None:
    """Click a form's button and wait until the answer page replaced the form's page."""
    button.click()
    WebDriverWait(driver, PAGE_WAIT_SECONDS).until(expected_conditions.staleness_of(button))


def csp_violations(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_open_the_link_approve_and_see_the_result(stack: StackProcess, browser: Any) -> None:
    workflow_id, url = waiting_link(stack, "tenant-a", {"amount": 120, "currency": "EUR", "description": SCRIPT})
    browser.get(url)
    assert heading(browser) == "Acme Payments asks for your decision"
    assert SCRIPT in browser.find_element(By.TAG_NAME, "dl").text, "the description shows as text"
    assert browser.title == "Decision requested by Acme Payments", "the script in the description never ran"
    approve = browser.find_element(By.CSS_SELECTOR, "button[value=approve]")
    assert approve.value_of_css_property("background-color") == "rgba(29, 107, 53, 1)", "the hashed stylesheet applies"
    assert csp_violations(browser) == []
    browser.find_element(By.ID, "comment").send_keys("fine by me\nthanks")
    submit(browser, approve)
    assert heading(browser) == "Your approval is recorded"
    done = stack.wait_for_status("tenant-a", workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"decision": "approved", "answeredVia": "page", "comment": "fine by me\nthanks"}


def test_decline(stack: StackProcess, browser: Any) -> None:
    workflow_id, url = waiting_link(stack, "tenant-b", {"amount": 12, "currency": "GBP", "description": "gift card"})
    browser.get(url)
    assert heading(browser) == "Globex Retail asks for your decision" and "12 GBP" in browser.page_source
    submit(browser, browser.find_element(By.CSS_SELECTOR, "button[value=decline]"))
    assert heading(browser) == "Your decline is recorded"
    done = stack.wait_for_status("tenant-b", workflow_id, "COMPLETED")
    assert done["result"]["confirmation"] == {"decision": "declined", "answeredVia": "page"}


def test_a_used_link_says_so_and_a_second_decision_is_not_taken(stack: StackProcess, browser: Any) -> None:
    workflow_id, url = waiting_link(stack, "tenant-a", {"amount": 5, "currency": "USD"})
    browser.get(url)
    heading(browser)
    submit(browser, browser.find_element(By.CSS_SELECTOR, "button[value=approve]"))
    assert heading(browser) == "Your approval is recorded"
    browser.back()  # the page from before, as a person might: its form posts again
    browser.refresh()
    assert heading(browser) == "This request was already answered"
    assert browser.find_elements(By.TAG_NAME, "form") == []
    stack.wait_for_status("tenant-a", workflow_id, "COMPLETED")
    assert stack.status("tenant-a", workflow_id).json()["result"]["confirmation"]["decision"] == "approved"


def test_an_unknown_link_is_a_page_not_json(stack: StackProcess, browser: Any) -> None:
    browser.get(f"{stack.api_url}/callbacks/{'A' * 43}")
    assert heading(browser) == "This link is not valid"
    assert "{" not in browser.find_element(By.TAG_NAME, "body").text

