"""The console's Rules and Audiences pages and a contact's rule progress, through HTTP as a browser
sends them: rules made, paused, resumed and deleted with form tokens, bad input shown beside its
fields, an audience's filters, count, page and CSV, and what a read-only token sees."""

import csv
import io
import re
from uuid import UUID, uuid4

import httpx
import pytest

from footfall.accounts import service as accounts
from footfall.shops import service as shops
from footfall.shops.schemas import ShopCreate
from tests.console.test_pages import browser, csrf, read_only_token, sign_in  # noqa: F401 (browser: a fixture)

NEW_PAGES = ["/rules", "/audiences", "/audiences?visit_count[gte]=1&sort=-visit_count"]


async def api_rule(client, tenant, **fields) -> dict:
    response = await client.post("/visit-rules", headers=tenant.headers, json={"name": "a rule", **fields})
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def visit(client, tenant, contact_uuid: str | None = None, **fields) -> dict:
    response = await client.post("/visits", headers=tenant.headers, json={
        "contact_uuid": contact_uuid or tenant.contact_uuid, "shop_uuid": tenant.shop_uuid, **fields})
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def new_contact(client, tenant, email: str | None = None) -> str:
    response = await client.post("/contacts", headers=tenant.headers,
                                 json={"email": email or f"{uuid4().hex}@audience.sea"})
    assert response.status_code == 201, response.text
    return response.json()["data"]["uuid"]


async def new_shop(app, tenant, name: str) -> str:
    """A shop made as the operator's `footfall shops create` makes one (the API has no such route)."""
    async with app.state.database.transaction(write=True) as tx:
        account = await accounts.get_account(tx, UUID(tenant.account_uuid))
        return str((await shops.create(tx, account, ShopCreate(name=name))).uuid)


def rule_rows(page: httpx.Response) -> dict[str, dict[str, str]]:
    """The rules table: each row's cells by class, by the rule's uuid."""
    table = re.search(r'id="rules-table">(.*?)</table>', page.text, re.S).group(1)
    rows = {}
    for uuid, row in re.findall(r'<tr data-rule="([0-9a-f-]{36})">(.*?)</tr>', table, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        named = dict(re.findall(r'<td class="(?:num )?rule-([a-z]+)">(.*?)</td>', row, re.S))
        rows[uuid] = {**named, "shop": re.sub(r"<[^>]+>", "", cells[3]), "source": re.sub(r"<[^>]+>", "", cells[4])}
    return rows


def field(page: httpx.Response, name: str) -> str:
    """The label of the form's field `name`: its input and the message beside it."""
    return re.search(rf'<label>[^<]*<(?:input|select) name="{re.escape(name)}".*?</label>', page.text, re.S).group(0)


async def test_signed_out_the_new_pages_lead_to_the_sign_in_page(browser):  # noqa: F811
    for path in NEW_PAGES:
        response = await browser.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    for path in ("/rules", f"/rules/{uuid4()}/status", f"/rules/{uuid4()}/delete"):
        assert (await browser.post(path, data={"csrf": "0" * 64})).status_code == 303


async def test_rules_are_made_listed_paused_resumed_and_deleted(browser, app, client, tenant):  # noqa: F811
    await sign_in(browser, tenant.token)
    page = await browser.get("/rules")
    assert page.status_code == 200 and 'aria-current="page">Rules<' in page.text and "No rules." in page.text
    assert 'href="/audiences"' in page.text
    shop = await new_shop(app, tenant, "Chum Bucket")
    forms = [
        {"name": "Every third", "kind": "milestone", "every": "3"},
        {"name": "Listed", "kind": "milestone", "at": " 10, 5,25 ,", "source": "Kiosk"},
        {"name": "Regulars", "kind": "frequency", "count": "4", "within_days": "30", "shop_uuid": shop},
        {"name": "Gone quiet", "kind": "lapse", "after_days": "60", "min_visits": "2"},
        {"name": "Gone", "kind": "lapse", "after_days": "90"},
    ]
    for form in forms:
        made = await browser.post("/rules", data={"csrf": csrf(page), **form})
        assert made.status_code == 303 and made.headers["location"] == "/rules", made.text

    api = (await client.get("/visit-rules", headers=tenant.headers)).json()["data"]
    by_name = {rule["name"]: rule for rule in api}
    assert by_name["Listed"]["at"] == [5, 10, 25] and by_name["Listed"]["source"] == "Kiosk"
    assert (by_name["Regulars"]["count"], by_name["Regulars"]["within_days"]) == (4, 30)
    assert by_name["Regulars"]["shop_uuid"] == shop and by_name["Gone"]["min_visits"] == 1

    listing = await browser.get("/rules")
    rows = rule_rows(listing)
    assert {(row["name"], row["kind"], row["numbers"], row["shop"], row["source"], row["status"])
            for row in rows.values()} == {
        ("Every third", "milestone", "every 3 visits", "any", "any", "ACTIVE"),
        ("Listed", "milestone", "at visits 5, 10, 25", "any", "Kiosk", "ACTIVE"),
        ("Regulars", "frequency", "4 visits within 30 days", "Chum Bucket", "any", "ACTIVE"),
        ("Gone quiet", "lapse", "no visit for 60 days, after at least 2 visits", "any", "any", "ACTIVE"),
        ("Gone", "lapse", "no visit for 90 days, after at least 1 visit", "any", "any", "ACTIVE"),
    }
    assert {row["events"] for row in rows.values()} == {"0"}

    # Six visits: the every-third rule fires at 3 and 6, the listed one at 5 (its source's visits only).
    for number in range(6):
        await visit(client, tenant, source="Kiosk" if number < 5 else "Web")
    events = {row["name"]: row["events"] for row in rule_rows(await browser.get("/rules")).values()}
    assert events == {"Every third": "2", "Listed": "1", "Regulars": "0", "Gone quiet": "0", "Gone": "0"}

    every = by_name["Every third"]["uuid"]
    paused = await browser.post(f"/rules/{every}/status", data={"csrf": csrf(listing), "status": "INACTIVE"})
    assert paused.status_code == 303 and paused.headers["location"] == "/rules"
    listing = await browser.get("/rules")
    assert rule_rows(listing)[every]["status"] == "INACTIVE"
    assert re.search(rf'action="/rules/{every}/status".*?name="status" value="ACTIVE"><button[^>]*>Resume<',
                     listing.text, re.S)
    assert (await client.get(f"/visit-rules/{every}", headers=tenant.headers)).json()["data"]["status"] == "INACTIVE"
    await visit(client, tenant)  # the 9th visit would fire it; paused, it fires nothing
    await visit(client, tenant)
    await visit(client, tenant)
    assert rule_rows(await browser.get("/rules"))[every]["events"] == "2"
    resumed = await browser.post(f"/rules/{every}/status", data={"csrf": csrf(listing), "status": "ACTIVE"})
    assert resumed.status_code == 303 and rule_rows(await browser.get("/rules"))[every]["status"] == "ACTIVE"

    deleted = await browser.post(f"/rules/{every}/delete", data={"csrf": csrf(listing)})
    assert deleted.status_code == 303 and every not in rule_rows(await browser.get("/rules"))
    assert (await client.get(f"/visit-rules/{every}", headers=tenant.headers)).status_code == 404
    again = await browser.post(f"/rules/{every}/delete", data={"csrf": csrf(listing)})
    assert again.status_code == 404 and "Visit rule not found." in again.text
    assert (await browser.post("/rules/not-a-uuid/delete", data={"csrf": csrf(listing)})).status_code == 404


async def test_another_accounts_rule_cannot_be_touched(browser, client, tenant, other_tenant):  # noqa: F811
    theirs = await api_rule(client, other_tenant, kind="milestone", every=2)
    await sign_in(browser, tenant.token)
    page = await browser.get("/rules")
    assert theirs["uuid"] not in page.text
    for action, form in (("status", {"status": "INACTIVE"}), ("delete", {})):
        refused = await browser.post(f"/rules/{theirs['uuid']}/{action}", data={"csrf": csrf(page), **form})
        assert refused.status_code == 404 and "Visit rule not found." in refused.text
    assert (await client.get(f"/visit-rules/{theirs['uuid']}", headers=other_tenant.headers)).json()["data"][
        "status"] == "ACTIVE"


@pytest.mark.parametrize(("form", "messages"), [
    ({"name": "", "kind": "milestone", "every": "3"}, {"name": "Required."}),
    ({"name": "Both", "kind": "milestone", "every": "3", "at": "5"}, {"every": "Give exactly one of every and at."}),
    ({"name": "Neither", "kind": "milestone"}, {"every": "Give exactly one of every and at."}),
    ({"name": "Bad count", "kind": "milestone", "at": "5, five, 0"},
     {"at": "Must be a whole number. Must be at least 1."}),
    ({"name": "Zero", "kind": "milestone", "every": "0"}, {"every": "Must be at least 1."}),
    ({"name": "Short", "kind": "frequency", "count": "3"}, {"within_days": "Required for a frequency rule."}),
    ({"name": "Mixed", "kind": "lapse", "after_days": "30", "every": "2"},
     {"every": "Not used by a lapse rule; leave it out."}),
    ({"name": "Odd", "kind": "weekly", "every": "2"}, {"kind": "Must be one of"}),
    ({"name": "Nowhere", "kind": "milestone", "every": "2", "shop_uuid": "6e8ec5a8-0eb7-4e5f-ad20-c0d271d97d92"},
     {"shop_uuid": "Shop not found."}),
    ({"name": "Garbled", "kind": "milestone", "every": "2", "shop_uuid": "nope"}, {"shop_uuid": "Must be a UUID"}),
])
async def test_bad_input_shows_the_form_again_with_each_message_beside_its_field(
    browser, client, tenant, form, messages  # noqa: F811
):
    await sign_in(browser, tenant.token)
    page = await browser.get("/rules")
    shown = await browser.post("/rules", data={"csrf": csrf(page), **form})
    assert shown.status_code == 200 and 'id="new-rule"' in shown.text and 'id="rule-errors"' in shown.text
    for name, message in messages.items():
        label = field(shown, name)
        assert 'aria-invalid="true"' in label and message in label, (name, label)
    assert shown.text.count('aria-invalid="true"') == len(messages)
    for name, value in form.items():  # the form keeps what was typed
        if name in ("name", "every", "at", "count", "after_days", "source") and value:
            assert f'value="{value}"' in field(shown, name)
    assert 'id="rules-table"' in shown.text and "No rules." in shown.text
    assert (await client.get("/visit-rules", headers=tenant.headers)).json()["meta"]["total"] == 0


async def test_forged_and_read_only_rule_forms_are_refused(browser, app, client, tenant):  # noqa: F811
    made = await api_rule(client, tenant, kind="milestone", every=2)
    form = {"name": "Evil", "kind": "milestone", "every": "1"}
    await sign_in(browser, tenant.token)
    page = await browser.get("/rules")
    assert (await browser.post("/rules", data=form)).status_code == 403
    assert (await browser.post("/rules", data={**form, "csrf": "0" * 64})).status_code == 403
    other_site = await browser.post(f"/rules/{made['uuid']}/delete", data={"csrf": csrf(page)},
                                    headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403 and "did not come from this console" in other_site.text

    await sign_in(browser, await read_only_token(app, tenant))
    for path in NEW_PAGES + [f"/contacts/{tenant.contact_uuid}"]:
        shown = await browser.get(path)
        assert shown.status_code == 200 and 'id="read-only"' in shown.text, path
        assert 'class="write' not in shown.text and 'id="new-rule"' not in shown.text
    viewer_page = await browser.get("/rules")
    assert made["uuid"] in viewer_page.text and 'id="rules-table"' in viewer_page.text
    for path, data in (("/rules", form), (f"/rules/{made['uuid']}/status", {"status": "INACTIVE"}),
                       (f"/rules/{made['uuid']}/delete", {})):
        refused = await browser.post(path, data={"csrf": csrf(viewer_page), **data})
        assert refused.status_code == 403 and "read-only" in refused.text
    listed = (await client.get("/visit-rules", headers=tenant.headers)).json()["data"]
    assert [(rule["name"], rule["status"]) for rule in listed] == [("a rule", "ACTIVE")]


async def test_pages_carry_no_inline_script_and_nothing_from_elsewhere(browser, client, tenant):  # noqa: F811
    await api_rule(client, tenant, kind="lapse", after_days=30)
    await visit(client, tenant)
    await sign_in(browser, tenant.token)
    for path in NEW_PAGES + [f"/contacts/{tenant.contact_uuid}"]:
        page = await browser.get(path)
        assert page.status_code == 200, (path, page.text)
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "<script>" not in page.text and " on" + "click=" not in page.text and "style=" not in page.text
        assert re.findall(r'(?:src|href)="(https?:)?//', page.text) == []


# Audiences

def audience(page: httpx.Response) -> tuple[int, list[tuple[str, str]]]:
    """The audience's total and its page's rows: (email, visits)."""
    total = int(re.search(r'id="audience-total">([\d,]+)<', page.text).group(1).replace(",", ""))
    table = re.search(r'id="audience-table">(.*?)</table>', page.text, re.S).group(1)
    rows = re.findall(r'<a href="/contacts/[0-9a-f-]{36}">([^<]*)</a></td>\s*<td class="num">(\d+)</td>', table)
    return total, rows


async def test_an_audience_is_filtered_counted_paged_and_exported(browser, app, client, tenant):  # noqa: F811
    kiosk = await new_shop(app, tenant, "Kiosk shop")
    regular, once, never = [await new_contact(client, tenant, f"{name}-{uuid4().hex[:8]}@audience.sea")
                            for name in ("regular", "once", "never")]
    for day in range(1, 5):
        await visit(client, tenant, regular, starts_at=f"2024-05-0{day}T10:00:00Z")
    await visit(client, tenant, regular, shop_uuid=kiosk, starts_at="2024-06-01T10:00:00Z")
    await visit(client, tenant, once, shop_uuid=kiosk, starts_at="2024-03-01T10:00:00Z")
    emails = {uuid: (await client.get(f"/contacts/{uuid}", headers=tenant.headers)).json()["data"]["email"]
              for uuid in (regular, once, never)}
    await sign_in(browser, tenant.token)

    everyone = await browser.get("/audiences")
    assert everyone.status_code == 200 and 'aria-current="page">Audiences<' in everyone.text
    assert audience(everyone)[0] == 4 and "no filter given" in everyone.text  # the tenant's own contact too

    many = await browser.get("/audiences", params={"visit_count[gte]": "2", "sort": "-visit_count"})
    assert audience(many) == (1, [(emails[regular], "5")])
    assert 'value="2"' in field(many, "visit_count[gte]")
    none = await browser.get("/audiences", params={"visit_count[lte]": "0"})
    assert sorted(audience(none)[1]) == sorted([(emails[never], "0"), (tenant.contact_email, "0")])
    lapsed = await browser.get("/audiences", params={"last_visit_at[lt]": "2024-05-15", "first_visit_at[gte]": "",
                                                     "sort": "last_visit_at"})
    assert audience(lapsed) == (1, [(emails[once], "1")])
    at_kiosk = await browser.get("/audiences", params={"shop_uuid": kiosk, "visit_count[gte]": "1",
                                                       "sort": "first_visit_at"})
    assert audience(at_kiosk) == (2, [(emails[once], "1"), (emails[regular], "1")])  # the shop's visits only
    assert "Visits at the shop" in at_kiosk.text and re.search(rf'<option value="{kiosk}" selected>', at_kiosk.text)
    early = await browser.get("/audiences", params={"first_visit_at[lt]": "2024-05-01T12:00:00Z",
                                                    "last_visit_at[gte]": "2024-05-02"})
    assert audience(early) == (1, [(emails[regular], "5")])

    # The CSV link: the export of the same filters (the sort is the list's alone).
    link = re.search(r'id="audience-csv" href="([^"]+)"', at_kiosk.text).group(1).replace("&amp;", "&")
    assert link.startswith("/audiences/export?") and "format=csv" in link and "sort=" not in link
    exported = await browser.get(link)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert 'filename="contacts.csv"' in exported.headers["content-disposition"]
    records = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["email"], r["visit_count"]) for r in records] == [(emails[regular], "1"), (emails[once], "1")]
    assert list(records[0]) == ["uuid", "email", "visit_count", "first_visit_at", "last_visit_at"]
    api = await client.get("/contacts/export", headers=tenant.headers,
                           params={"shop_uuid": kiosk, "visit_count[gte]": "1", "format": "csv"})
    assert api.text == exported.text
    ndjson = re.search(r'id="audience-ndjson" href="([^"]+)"', many.text).group(1).replace("&amp;", "&")
    lines = (await browser.get(ndjson)).text.splitlines()
    assert len(lines) == 1 and emails[regular] in lines[0]


async def test_an_audience_pages_fifty_contacts_at_a_time(browser, client, tenant):  # noqa: F811
    for _ in range(52):
        await new_contact(client, tenant)
    await sign_in(browser, tenant.token)
    first = await browser.get("/audiences", params={"visit_count[lte]": "0"})
    total, rows = audience(first)
    assert total == 53 and len(rows) == 50 and "Page 1 of 2" in first.text
    following = re.search(r'href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    assert "visit_count%5Blte%5D=0" in following and "page=2" in following
    second = await browser.get(following)
    assert audience(second)[0] == 53 and len(audience(second)[1]) == 3
    assert not {email for email, _ in rows} & {email for email, _ in audience(second)[1]}


@pytest.mark.parametrize(("query", "name", "message"), [
    ({"visit_count[gte]": "many"}, "visit_count[gte]", "Must be a whole number."),
    ({"visit_count[lte]": "-1"}, "visit_count[lte]", "Must be at least 0."),
    ({"last_visit_at[gte]": "last week"}, "last_visit_at[gte]", ""),
    ({"first_visit_at[lt]": "2024-13-45"}, "first_visit_at[lt]", ""),
    ({"shop_uuid": "kiosk"}, "shop_uuid", "Must be a UUID"),
])
async def test_bad_filters_show_the_form_again_with_the_message_beside_the_field(
    browser, client, tenant, query, name, message  # noqa: F811
):
    await sign_in(browser, tenant.token)
    page = await browser.get("/audiences", params={**query, "visit_count[gte]": query.get("visit_count[gte]", "1")})
    assert page.status_code == 200 and 'id="audience-filters"' in page.text and 'id="audience-total"' not in page.text
    label = field(page, name)
    assert 'role="alert"' in label and message in label
    if name != "shop_uuid":
        assert 'aria-invalid="true"' in label and f'value="{query[name]}"' in label
    assert "No contacts." in page.text
    exported = await browser.get("/audiences/export", params={**query, "format": "csv"})
    assert exported.status_code == 422 and f"<code>{name}</code>" in exported.text
    assert (await browser.get("/audiences/export", params={"format": "xml"})).status_code == 422


async def test_an_unknown_shop_matches_no_contact(browser, client, tenant):  # noqa: F811
    await visit(client, tenant)
    await sign_in(browser, tenant.token)
    page = await browser.get("/audiences", params={"shop_uuid": str(uuid4())})
    assert page.status_code == 200 and audience(page) == (0, [])


# A contact's progress

def progress(page: httpx.Response) -> dict[str, dict[str, str]]:
    """The contact page's rule progress: each row's cells by class, by the rule's name."""
    table = re.search(r'id="rule-progress">(.*?)</table>', page.text, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr data-rule=[^>]*>(.*?)</tr>", table, re.S):
        named = dict(re.findall(r'<td class="(?:num )?(rule-name|progress-[a-z]+)">(.*?)</td>', row, re.S))
        rows[re.sub(r"\s*<span.*", "", named.pop("rule-name"))] = named
    return rows


async def test_a_contacts_page_shows_its_progress_on_every_rule(browser, client, tenant):  # noqa: F811
    await sign_in(browser, tenant.token)
    empty = await browser.get(f"/contacts/{tenant.contact_uuid}")
    assert "The account has no rules." in empty.text
    await api_rule(client, tenant, name="Every three", kind="milestone", every=3)
    await api_rule(client, tenant, name="Two and four", kind="milestone", at=[2, 4])
    await api_rule(client, tenant, name="Done", kind="milestone", at=[2])
    await api_rule(client, tenant, name="Twice a week", kind="frequency", count=2, within_days=7)
    await api_rule(client, tenant, name="Web only", kind="milestone", every=2, source="Web")
    paused = await api_rule(client, tenant, name="Away", kind="lapse", after_days=30)
    await client.put(f"/visit-rules/{paused['uuid']}", headers=tenant.headers, json={"status": "INACTIVE"})
    for _ in range(3):
        await visit(client, tenant, source="Kiosk")

    page = await browser.get(f"/contacts/{tenant.contact_uuid}")
    rows = progress(page)
    assert {name: (row["progress-count"], row["progress-reached"], row["progress-next"])
            for name, row in rows.items()} == {
        "Every three": ("3", "3", "6 (3 to go)"),
        "Two and four": ("3", "2", "4 (1 to go)"),
        "Done": ("3", "2", ""),
        "Twice a week": ("3", "1", ""),
        "Web only": ("0", "", "2 (2 to go)"),
        "Away": ("3", "", ""),
    }
    assert rows["Away"]["progress-standing"] == "not lapsed" and rows["Twice a week"]["progress-standing"] == "fired 1×"
    assert re.search(r'Away <span class="badge">paused</span>', page.text)
    api = (await client.get(f"/contacts/{tenant.contact_uuid}/visit-rules", headers=tenant.headers)).json()["data"]
    assert {p["rule"]["name"]: (str(p["count"]), p["next_at"]) for p in api}["Every three"] == ("3", 6)
    other = await new_contact(client, tenant)
    fresh = progress(await browser.get(f"/contacts/{other}"))
    assert fresh["Every three"]["progress-count"] == "0" and fresh["Every three"]["progress-next"] == "3 (3 to go)"
    missing = await browser.get(f"/contacts/{uuid4()}")
    assert missing.status_code == 404 and "Contact not found." in missing.text
