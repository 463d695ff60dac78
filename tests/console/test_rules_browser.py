"""The Rules and Audiences pages in a real browser (Debian's chromium, driven by Playwright) against
`footfall serve` on fresh demo data, set up as test_browser.py sets it up: the demo's rules and their
events, a rule made (the form showing only its kind's numbers, a mistake shown beside its field),
paused, resumed and deleted; an audience against the API's count and its CSV downloaded; a lapsed
regular's progress on its page; and nothing loaded from elsewhere, no script error."""

import csv
import io
import re

import httpx

from footfall.app import API_PREFIX
from tests.console.test_browser import browser, served, sign_in, watched_page  # noqa: F401 (fixtures)


def api(base_url: str, token: str, path: str, **params) -> dict:
    response = httpx.get(f"{base_url}{API_PREFIX}{path}", headers={"Authorization": f"Bearer {token}"},
                         params=params)
    assert response.status_code == 200, response.text
    return response.json()


def rule_row(page, name: str):
    return page.locator("#rules-table tbody tr", has=page.locator(".rule-name", has_text=name))


def test_an_operator_keeps_rules_and_finds_an_audience(served, browser):  # noqa: F811
    base_url, token, _ = served
    page = watched_page(browser, base_url)
    page.on("dialog", lambda dialog: dialog.accept())  # the delete button's confirmation
    sign_in(page, base_url, token)

    # The demo's two rules, with the events the API's rules made in the last 30 days.
    page.click("header nav >> text=Rules")
    page.wait_for_selector("#rules-table")
    coffee = rule_row(page, "Every 10th visit: a free coffee")
    assert coffee.locator(".rule-numbers").inner_text() == "every 10 visits"
    assert coffee.locator(".rule-status").inner_text() == "ACTIVE"
    away = rule_row(page, "Win back a regular")
    assert away.locator(".rule-numbers").inner_text() == "no visit for 21 days, after at least 10 visits"
    assert int(away.locator(".rule-events").inner_text()) >= 1  # the demo's lapsed regular

    # The form shows the chosen kind's numbers only.
    form = page.locator("#new-rule")
    assert form.locator("fieldset[data-kind=milestone]").is_visible()
    assert not form.locator("fieldset[data-kind=frequency]").is_visible()
    page.select_option("#rule-kind", "frequency")
    assert form.locator("fieldset[data-kind=frequency]").is_visible()
    assert not form.locator("fieldset[data-kind=milestone]").is_visible()

    # A mistake: the form again, what was typed kept, the message beside the field.
    page.fill("#new-rule input[name=name]", "Three in a week")
    page.fill("#new-rule input[name=count]", "3")
    page.click("#new-rule button[type=submit]")
    page.wait_for_selector("#within_days-error")
    assert page.inner_text("#within_days-error") == "Required for a frequency rule."
    assert page.input_value("#new-rule input[name=name]") == "Three in a week"
    assert page.input_value("#rule-kind") == "frequency"  # and its numbers still shown
    assert page.locator("#new-rule fieldset[data-kind=frequency]").is_visible()
    page.fill("#new-rule input[name=within_days]", "7")
    page.click("#new-rule button[type=submit]")
    page.wait_for_url(f"{base_url}/rules")
    made = rule_row(page, "Three in a week")
    assert made.locator(".rule-numbers").inner_text() == "3 visits within 7 days"
    assert made.locator(".rule-events").inner_text() == "0"
    listed = {rule["name"]: rule for rule in api(base_url, token, "/visit-rules")["data"]}
    assert (listed["Three in a week"]["count"], listed["Three in a week"]["within_days"]) == (3, 7)

    # Paused, resumed, deleted (after the confirmation).
    made.locator("button", has_text="Pause").click()
    page.wait_for_load_state()
    assert rule_row(page, "Three in a week").locator(".rule-status").inner_text() == "INACTIVE"
    rule_row(page, "Three in a week").locator("button", has_text="Resume").click()
    page.wait_for_load_state()
    assert rule_row(page, "Three in a week").locator(".rule-status").inner_text() == "ACTIVE"
    rule_row(page, "Three in a week").locator("button", has_text="Delete").click()
    page.wait_for_load_state()
    assert rule_row(page, "Three in a week").count() == 0
    assert "Three in a week" not in {rule["name"] for rule in api(base_url, token, "/visit-rules")["data"]}

    # An audience: the regulars not seen since a week ago, counted as GET /contacts counts them.
    page.click("header nav >> text=Audiences")
    page.fill("input[name='visit_count[gte]']", "10")
    page.select_option("select[name=sort]", "-visit_count")
    page.click("#audience-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/audiences\?.*visit_count%5Bgte%5D=10.*"))
    expected = api(base_url, token, "/contacts", **{"visit_count[gte]": "10", "limit": "100"})
    assert int(page.inner_text("#audience-total").replace(",", "")) == expected["meta"]["total"] > 0
    emails = page.locator("#audience-table tbody tr td:nth-child(1) a").all_inner_texts()
    counts = [int(n) for n in page.locator("#audience-table tbody tr td:nth-child(2)").all_inner_texts()]
    assert counts == sorted(counts, reverse=True) and min(counts) >= 10
    assert sorted(emails) == sorted(contact["email"] for contact in expected["data"])

    with page.expect_download() as downloading:
        page.click("#audience-csv")
    exported = list(csv.DictReader(io.StringIO(open(downloading.value.path()).read())))
    assert downloading.value.suggested_filename == "contacts.csv"
    assert sorted(row["email"] for row in exported) == sorted(emails)

    # A bad bound: the message beside the field, the figures gone until it reads.
    page.fill("input[name='last_visit_at[lt]']", "last week")
    page.click("#audience-filters button[type=submit]")
    page.wait_for_selector("#last_visit_at-lt-error")
    assert page.locator("input[name='last_visit_at[lt]']").get_attribute("aria-invalid") == "true"
    assert page.locator("#audience-total").count() == 0

    # The lapsed regular's page: its progress on each rule.
    page.goto(f"{base_url}/audiences?visit_count%5Bgte%5D=10")
    page.click("#audience-table >> text=larry@bikinibottom.sea")
    page.wait_for_selector("#rule-progress")
    visits = int(page.inner_text("#contact-visit-count"))
    lapse = page.locator("#rule-progress tbody tr", has=page.locator(".rule-name", has_text="Win back a regular"))
    assert lapse.locator(".progress-standing").inner_text().startswith("lapsed")
    assert int(lapse.locator(".progress-count").inner_text()) == visits
    milestone = page.locator("#rule-progress tbody tr", has=page.locator(".rule-name", has_text="free coffee"))
    assert milestone.locator(".progress-next").inner_text() == f"{(visits // 10 + 1) * 10} ({10 - visits % 10} to go)"

    assert [url for url in page.requests if not url.startswith((base_url, "data:"))] == []
    assert not page.blocked
    assert not [m for m in page.messages if m.startswith("error")], page.messages


def test_a_read_only_token_sees_rules_and_audiences_without_a_write_button(served, browser):  # noqa: F811
    base_url, _, viewer = served
    page = watched_page(browser, base_url)
    sign_in(page, base_url, viewer)
    for path in ("/rules", "/audiences", "/audiences?visit_count%5Blte%5D=1"):
        page.goto(f"{base_url}{path}")
        assert page.is_visible("#read-only")
        assert page.locator("button.write").count() == 0 and page.locator("#new-rule").count() == 0
    page.goto(f"{base_url}/rules")
    assert page.locator("#rules-table tbody tr").count() == 2
    assert not [m for m in page.messages if m.startswith("error")], page.messages
