"""What an operator does in the Prefect UI (3.8, the default Vue UI), as Selenium steps.

Learned from the UI's DOM: the runs list has a "Search by flow run name" box and links
`a.flow-run-bread-crumbs__flow-run-link` named after the run; a suspended run's page has a
"Resume" button that opens a modal with a form generated from the RunInput's JSON schema: one
`.schema-form-property` per field, labelled with the field's title, a native <select> for an enum,
a <textarea> for a string, and for an optional field a "str | None" button group (None chosen).
"""

from __future__ import annotations

from typing import Any

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

WAIT = 90.0  # seconds: two shared cores, a cold SPA and a server under load


def _visible(driver: WebDriver, css: str) -> WebElement | bool:
    try:
        return next((e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), False)
    except StaleElementReferenceException:
        return False


def _literal(text: str) -> str:
    """An XPath string literal for any text (names may hold quotes)."""
    if "'" not in text:
        return f"'{text}'"
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"


def open_run_from_list(driver: WebDriver, base_url: str, run_name: str, search: str) -> None:
    """From the runs list, search for the run by (part of) its name and open it."""
    wait = WebDriverWait(driver, WAIT)
    driver.get(f"{base_url}/runs")
    box = wait.until(lambda d: _visible(d, "input[placeholder='Search by flow run name']"))
    assert isinstance(box, WebElement)
    box.send_keys(search)
    link = wait.until(ec.element_to_be_clickable((
        By.XPATH, "//a[contains(@class, 'flow-run-bread-crumbs__flow-run-link')]"
                  f"[normalize-space() = {_literal(run_name)}]")))
    link.click()
    wait.until(ec.title_contains(run_name))


def run_state_badge(driver: WebDriver) -> str:
    """The state shown in the run page's header (e.g. "Suspended")."""
    badge = WebDriverWait(driver, WAIT).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".flow-run-header .state-badge, .state-badge")))
    return str(badge.text.strip())


def open_resume_form(driver: WebDriver) -> WebElement:
    wait = WebDriverWait(driver, WAIT)
    wait.until(ec.element_to_be_clickable((By.XPATH, "//button[normalize-space() = 'Resume']"))).click()
    modal = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".p-modal")))
    wait.until(lambda _: modal.find_elements(By.CSS_SELECTOR, ".schema-form-property"))
    return modal


def form_text(modal: WebElement) -> str:
    return str(modal.text)


def _property(modal: WebElement, label: str) -> WebElement:
    xpath = (".//div[contains(concat(' ', normalize-space(@class), ' '), ' schema-form-property ')]"
             "[.//span[contains(@class, 'schema-form-property__label')]"
             f"[normalize-space() = {_literal(label)} or starts-with(normalize-space(), {_literal(label + ' (')})]]")
    return WebDriverWait(modal, WAIT).until(lambda m: m.find_element(By.XPATH, xpath))


def fill_field(modal: WebElement, label: str, value: str) -> None:
    """Fill one field of the generated form: choose the enum value, or type the text (switching an
    optional field from None to a string first)."""
    prop = _property(modal, label)
    selects = prop.find_elements(By.CSS_SELECTOR, "select:not(.p-native-select__control--placeholder)")
    if selects:
        Select(selects[0]).select_by_value(value)
        return
    as_string = prop.find_elements(By.XPATH, ".//button[normalize-space() = 'str']")
    if as_string and as_string[0].get_attribute("aria-selected") != "true":
        as_string[0].click()
        # The property re-renders as a text field: find it afresh.

    def text_box(_: object) -> WebElement | bool:
        try:
            return next(iter(_property(modal, label).find_elements(By.CSS_SELECTOR, "textarea, input[type='text']")),
                        False)
        except StaleElementReferenceException:
            return False

    box = WebDriverWait(modal, WAIT).until(text_box)
    assert isinstance(box, WebElement)
    box.clear()
    box.send_keys(value)


def fill_and_submit(driver: WebDriver, modal: WebElement, schema: dict[str, Any], values: dict[str, str]) -> None:
    """Fill the fields named in ``values`` (by their JSON-schema title, as the UI shows them) and
    submit; fails with the form's own messages if the UI refuses it."""
    props = schema.get("properties", {})
    for name, value in values.items():
        fill_field(modal, str(props.get(name, {}).get("title") or name), value)
    modal.find_element(By.XPATH, ".//button[normalize-space() = 'Submit']").click()
    try:
        WebDriverWait(driver, WAIT).until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".p-modal")))
    except TimeoutException as exc:
        raise AssertionError(f"the resume form was not accepted: {modal.text}") from exc
