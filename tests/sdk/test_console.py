"""The console in real headless Chromium (Debian's package, driven by Playwright) against a real
gateway with requests behind it, on SQLite and PostgreSQL: sign-in with the admin token, every
view checked against what the admin API answers, a request's detail, keyboard navigation, no
request leaving the gateway's origin, and axe-core's accessibility check in both themes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browser import TIMEOUT_MS, LoginApp, chromium, serving_login_app, sign_in_through
from harness import ADMIN_TOKEN, http
from playwright.sync_api import expect


def admin_get(gateway, path: str) -> dict:
    status, _, body = http("GET", f"{gateway.admin_url}{path}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status == 200, body
    return json.loads(body)


def logged(gateway, count: int) -> list[dict]:
    """The request log's newest rows once `count` are written (the ledger writes in batches)."""
    deadline = time.monotonic() + 15
    while True:
        rows = admin_get(gateway, "/admin/v1/requests?limit=50")["data"]
        if len(rows) >= count:
            return rows
        assert time.monotonic() < deadline, f"{len(rows)} of {count} rows logged"
        time.sleep(0.2)


@pytest.fixture
def browser():
    with chromium() as browser:
        yield browser


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_the_console_shows_what_the_admin_api_answers(start_gateway, browser):
    gateway = start_gateway(args=["--trace-url-template", "https://traces.example.com/trace/{trace_id}"])
    client = gateway.openai()
    for text in ("first", "second"):
        client.chat.completions.create(model="demo-echo", messages=[{"role": "user", "content": text}])
    traced = "4bf92f3577b34da6a3ce929d0e0e4736"
    client.chat.completions.create(
        model="demo-echo",
        messages=[{"role": "user", "content": "third"}],
        extra_headers={"traceparent": f"00-{traced}-00f067aa0ba902b7-01"},
    )
    with pytest.raises(Exception):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    rows = logged(gateway, 4)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    origin = urlparse(gateway.admin_url)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    # Nobody signed in: the sign-in form, then the admin token.
    page.goto(f"{gateway.admin_url}/console")
    page.get_by_label("or the admin token").fill(ADMIN_TOKEN)
    page.keyboard.press("Enter")

    # The dashboard's figures are those of /admin/v1/stats over the same range.
    requests_tile = page.locator("[data-tile=requests]")
    requests_tile.wait_for()
    stats = admin_get(gateway, "/admin/v1/stats")
    total = stats["series"][0]["total"]
    assert requests_tile.inner_text() == f"{total['requests']:,}"
    assert page.locator("[data-tile=spend]").inner_text() == f"${total['cost_usd']}"
    assert page.locator("[data-tile=errors]").inner_text().startswith(f"{total['errors']:,} (")
    assert page.locator("figure.chart canvas").count() >= 2, "the charts are drawn"
    busiest = page.get_by_role("table", name="Busiest tenants")
    assert "demo" in busiest.inner_text()
    assert "ada" not in page.get_by_role("table", name="Busiest personas").inner_text(), "no persona was asked"
    # Ranked by spend or by errors instead, as the API ranks them.
    page.get_by_label("top by").select_option("errors")
    failing = admin_get(gateway, "/admin/v1/stats?group_by=model&rank_by=errors&limit=5")["series"]
    expect(page.get_by_role("table", name="Most failing models").locator("tbody tr").first).to_contain_text(failing[0]["key"] or "(none)")
    page.get_by_label("top by").select_option("cost")
    expect(page.get_by_role("table", name="Costliest tenants")).to_contain_text("demo")

    # Traces, by keyboard: the request log's rows as the API lists them, newest first.
    page.get_by_role("link", name="Traces").focus()
    page.keyboard.press("Enter")
    table = page.get_by_role("table", name="Requests, newest first")
    table.wait_for()
    shown = table.locator("tbody tr")
    assert shown.count() == len(rows)
    for i, row in enumerate(rows):
        cells = shown.nth(i).locator("td").all_inner_texts()
        assert cells[1:5] == [row["tenant"], row["api_key"], row["model"], str(row["status"])], (cells, row)
    # A filter narrows them as the API does.
    page.get_by_label("status").fill("404")
    page.get_by_role("button", name="Filter").click()
    # (The page's policy forbids evaluating strings, so waits go through locators.)
    expect(page.locator("tbody tr")).to_have_count(1)
    assert page.locator("tbody tr td").nth(4).inner_text() == "404"

    page.get_by_label("status").fill("")
    page.get_by_label("error contains").fill("NOT_FOUND")
    page.get_by_role("button", name="Filter").click()
    matching = admin_get(gateway, "/admin/v1/requests?error=not_found")["data"]
    assert matching, rows
    expect(page.locator("tbody tr")).to_have_count(len(matching))
    # A time range before any request: none.
    page.get_by_label("error contains").fill("")
    page.get_by_label("to (UTC)").fill("2020-01-01T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("table", name="No requests match")).to_be_visible()

    # One request's detail: its attempts and tokens, and its trace in the tracing UI.
    page.get_by_label("to (UTC)").fill("")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(len(rows))
    newest_served = next(row for row in rows if row["status"] == 200)
    page.locator(f"button[data-id='{newest_served['id']}']").click()
    detail = page.locator("#request-detail")
    detail.get_by_role("heading", name=f"Request {newest_served['id']}").wait_for()
    attempts = detail.get_by_role("table", name="Attempts, in order").inner_text()
    assert newest_served["attempts"][0]["backend"] in attempts
    assert f"{newest_served['output_tokens']:,}" in detail.inner_text()
    assert newest_served["trace_id"] == traced, newest_served
    expect(detail.get_by_role("link", name=traced)).to_have_attribute(
        "href", f"https://traces.example.com/trace/{traced}"
    )

    # Every request the page made went to the gateway itself.
    assert requested, "the page made requests"
    foreign = [url for url in requested if urlparse(url).netloc != origin.netloc]
    assert not foreign, foreign
    page.close()


def test_a_wrong_token_is_refused_and_the_files_forbid_other_origins(start_gateway, browser):
    gateway = start_gateway()
    status, headers, _ = http("GET", f"{gateway.admin_url}/console/")
    assert status == 200
    policy = headers.get("content-security-policy", "")
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy, policy
    assert http("GET", f"{gateway.admin_url}/console/nope.js")[0] == 404
    # The console is on the admin listener only.
    assert http("GET", f"{gateway.url}/console/")[0] == 404

    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{gateway.admin_url}/console/")
    page.get_by_text("missing API key").wait_for()
    page.get_by_label("or the admin token").fill("not-the-admin-token")
    page.keyboard.press("Enter")
    # The form again, with the API's reason.
    page.get_by_text("invalid API key").wait_for()
    assert page.get_by_role("heading", name="Sign in").is_visible()
    assert page.locator("[data-tile=requests]").count() == 0
    page.close()


ROOT = Path(__file__).resolve().parents[2]
# axe-core, pinned in console/package-lock.json; scripts/test.sh runs scripts/console.sh, which installs it.
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
VIEWS = {
    "dashboard": ("#/", "Dashboard"),
    "gateway": ("#/gateway", "Gateway"),
    "traces": ("#/requests", "Traces"),
    "costs": ("#/costs", "Costs"),
    "tenants": ("#/tenants", "Tenants"),
    "settings": ("#/settings", "Settings"),
}


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_view_shows_the_admin_api_and_passes_axe(start_gateway, browser, scheme):
    """Each view against the API it reads; axe-core finds nothing serious in either theme.
    SWITCHBOARD_CONSOLE_SCREENSHOTS=DIR keeps a screenshot of each (docs/console.md's)."""
    assert AXE.exists(), f"{AXE} missing: scripts/console.sh check installs it"
    gateway = start_gateway()
    client = gateway.openai()
    for text in ("one", "two"):
        client.chat.completions.create(model="demo-echo", messages=[{"role": "user", "content": text}])
    logged(gateway, 2)
    shots = os.environ.get("SWITCHBOARD_CONSOLE_SCREENSHOTS")

    # The page's own policy forbids injected scripts; axe is injected, so this context bypasses it.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{gateway.admin_url}/console/")
    page.get_by_label("or the admin token").fill(ADMIN_TOKEN)
    page.keyboard.press("Enter")
    page.locator("[data-tile=requests]").wait_for()

    routes = admin_get(gateway, "/admin/v1/routes")["data"]
    tenants = admin_get(gateway, "/admin/v1/tenants")["data"]
    for name, (path, title) in VIEWS.items():
        page.goto(f"{gateway.admin_url}/console/{path}")
        page.get_by_role("heading", name=title, exact=True).wait_for()
        if name == "dashboard":
            budgets = admin_get(gateway, "/admin/v1/budgets")["data"]
            table = page.get_by_role("table", name="Spend against budgets, nearest their limits")
            expect(table.locator("tbody tr")).to_have_count(min(5, len(budgets)))
            expect(table).to_contain_text(f"${budgets[0]['spent_usd']} of ${budgets[0]['limit_usd']}")
        elif name == "gateway":
            for route in routes:
                article = page.locator(f"article[data-route='{route['name']}']")
                for backend in route["backends"]:
                    expect(article.get_by_role("table", name=f"Backends of {route['name']}")).to_contain_text(backend["name"])
            personas = admin_get(gateway, "/admin/v1/personas")["data"]
            assert personas, "the samples have a persona"
            table = page.get_by_role("table", name="Personas")
            expect(table.locator("tbody tr")).to_have_count(len(personas))
            for persona in personas:
                row = table.locator("tbody tr", has_text=persona["name"])
                expect(row).to_contain_text(f"{persona['tenant']}{persona['model']}")
                expect(row.locator("td").nth(4)).to_have_text(f"{persona['memory_count']:,}")
        elif name == "costs":
            since = int(time.time() * 1000) - 30 * 86_400_000
            by_tenant = admin_get(gateway, f"/admin/v1/stats?bucket=day&group_by=tenant&since_ms={since}")["series"]
            table = page.get_by_role("table", name="Spend by tenant")
            for series in by_tenant:
                expect(table).to_contain_text(f"${series['total']['cost_usd']}")
            # Every budget with its spend this period, and the burn-down of the one nearest its limit.
            budgets = admin_get(gateway, "/admin/v1/budgets")["data"]
            assert budgets, "the samples have a budget"
            table = page.get_by_role("table", name="Budgets this period")
            expect(table.locator("tbody tr")).to_have_count(len(budgets))
            for budget in budgets:
                expect(table).to_contain_text(f"${budget['spent_usd']} of ${budget['limit_usd']}")
            expect(page.locator("figure.chart figcaption", has_text="Burn-down of")).to_be_visible()
            expect(page.locator("figure.chart", has_text="Burn-down of").locator("canvas")).to_have_count(1)
        elif name == "tenants":
            table = page.get_by_role("table", name="Tenants")
            expect(table.locator("tbody tr")).to_have_count(len(tenants))
            first = tenants[0]
            expect(table).to_contain_text(f"${first['usage_this_month']['cost_usd']}")
            # The search narrows the list as the API's `prefix` does.
            page.get_by_role("searchbox", name="Tenants starting with").fill("no-such-prefix")
            page.get_by_role("button", name="Find").click()
            expect(table.locator("tbody tr")).to_have_count(0)
            page.get_by_role("searchbox", name="Tenants starting with").fill(first["name"][:2])
            page.get_by_role("button", name="Find").click()
            expect(table.locator("tbody tr")).to_have_count(
                sum(1 for t in tenants if t["name"].startswith(first["name"][:2]))
            )
            page.locator(f"button[data-tenant='{first['name']}']").click()
            detail = admin_get(gateway, f"/admin/v1/tenants/{first['name']}")
            budgets = page.get_by_role("table", name="Budgets")
            for budget in detail["budgets"]:
                expect(budgets).to_contain_text(f"of ${budget['limit_usd']}")
        elif name == "settings":
            expect(page.locator("[data-field=signed-in]")).to_have_text("the admin token")
            config = admin_get(gateway, "/admin/v1/config")
            expect(page.locator("[data-field=gateway-version]")).to_have_text(config["gateway"]["version"])
            flags = page.get_by_role("table", name="The gateway's flags")
            expect(flags.locator("tbody tr")).to_have_count(len(config["gateway"]["flags"]))
            expect(flags).to_contain_text(f"--config-dir{config['gateway']['flags']['config-dir']}")
            expect(flags).to_contain_text("--admin-token(set, not shown)")
            expect(flags).not_to_contain_text(ADMIN_TOKEN)
        elif name == "traces":
            expect(page.get_by_role("table", name="Requests, newest first").locator("tbody tr")).to_have_count(2)
        found = serious_violations(page)
        assert not found, f"{name} ({scheme}): {found}"
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / f"{name}-{scheme}.png"), full_page=False)

    # The theme chosen in Settings wins over the system's.
    other = "dark" if scheme == "light" else "light"
    page.get_by_label("Theme").select_option(other)
    assert page.evaluate("document.documentElement.dataset.theme") == other
    page.reload()
    page.get_by_role("heading", name="Settings").wait_for()
    assert page.evaluate("document.documentElement.dataset.theme") == other, "kept across a reload"
    context.close()


ROLES = """
platformAdmins: {users: [ada@example.com]}
viewers: {users: [sam@example.com]}
tenantAdmins:
  demo: {groups: [demo-leads]}
"""


@pytest.fixture
def login_app(tmp_path: Path) -> Iterator[LoginApp]:
    with serving_login_app(tmp_path) as app:
        yield app


def test_people_sign_in_through_the_identity_provider_and_see_what_their_role_allows(
    start_gateway, browser, login_app: LoginApp, tmp_path: Path
):
    hydra = login_app.hydra
    client = hydra.web_client()
    roles = tmp_path / "roles.yaml"
    roles.write_text(ROLES)
    gateway = start_gateway(
        args=["--oidc-issuer", hydra.issuer, "--oidc-client-id", client.client_id, "--roles-file", str(roles)],
        env={"SWITCHBOARD_OIDC_CLIENT_SECRET": client.secret},
    )
    hydra.redirect_to(client, f"{gateway.admin_url}/auth/callback")
    gateway.openai().chat.completions.create(model="demo-echo", messages=[{"role": "user", "content": "hi"}])
    logged(gateway, 1)

    # A tenant admin: their tenant's dashboard, traces and tenant; not the gateway's routes.
    bob = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    bob.set_default_timeout(TIMEOUT_MS)
    sign_in_through(bob, login_app, gateway.admin_url, "bob", ["demo-leads"])
    bob.get_by_role("heading", name="Dashboard of demo").wait_for()
    demo = admin_get(gateway, "/admin/v1/stats?tenant=demo")["series"][0]["total"]
    expect(bob.locator("[data-tile=requests]")).to_have_text(f"{demo['requests']:,}")
    bob.goto(f"{gateway.admin_url}/console/#/gateway")
    expect(bob.get_by_text("needs the platform admin or viewer role")).to_be_visible()
    bob.goto(f"{gateway.admin_url}/console/#/tenants")
    expect(bob.get_by_role("table", name="Tenants").locator("tbody tr")).to_have_count(1)
    assert bob.get_by_role("form", name="New tenant").count() == 0, "only admins create tenants"
    bob.locator("button[data-tenant='demo']").click()
    expect(bob.locator("[data-field=read-only]")).to_contain_text("not by the console")
    # Who has access to demo, from the roles file, as the API lists it.
    members = admin_get(gateway, "/admin/v1/tenants/demo/members")
    assert {(m["access"], m["kind"], m["name"]) for m in members["members"]} >= {
        ("change", "Group", "demo-leads"), ("change", "User", "ada@example.com"), ("read", "User", "sam@example.com")
    }, members
    table = bob.get_by_role("table", name="Members of demo (from the roles file)")
    expect(table.locator("tbody tr")).to_have_count(len(members["members"]))
    expect(table).to_contain_text("tenantAdmins.demo")
    bob.goto(f"{gateway.admin_url}/console/#/requests")
    expect(bob.locator("#filter-tenant")).to_have_value("demo")
    expect(bob.get_by_role("table", name="Requests, newest first").locator("tbody tr")).to_have_count(1)

    # A platform admin: every tenant, and the routes.
    ada = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    ada.set_default_timeout(TIMEOUT_MS)
    sign_in_through(ada, login_app, gateway.admin_url, "ada", [])
    ada.get_by_role("heading", name="Dashboard", exact=True).wait_for()
    ada.goto(f"{gateway.admin_url}/console/#/gateway")
    expect(ada.locator("article[data-route='demo-echo']")).to_be_visible()

    # A viewer reads everything and changes nothing: no form, and the API refuses.
    sam = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sam.set_default_timeout(TIMEOUT_MS)
    sign_in_through(sam, login_app, gateway.admin_url, "sam", [])
    sam.goto(f"{gateway.admin_url}/console/#/tenants")
    expect(sam.get_by_role("table", name="Tenants")).to_be_visible()
    assert sam.get_by_role("form", name="New tenant").count() == 0
    refused = sam.request.post(f"{gateway.admin_url}/admin/v1/tenants", data={"name": "by-sam"})
    assert refused.status == 403, refused.text()

    # Signing out ends the session: the sign-in form again.
    ada.get_by_role("button", name="Sign out").click()
    ada.get_by_role("link", name="Sign in with your identity provider").wait_for()


def test_an_admin_creates_a_tenant_and_a_key_that_works_then_revokes_it(start_gateway, browser):
    """Standalone: the console writes the tenant and its key to the config folder; the key works
    on the chat API at once, and stops when revoked. A tenant from another file is left alone."""
    import openai

    gateway = start_gateway()
    # axe is injected below, past the page's own policy (which forbids injected scripts).
    page = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{gateway.admin_url}/console/#/tenants")
    page.get_by_label("or the admin token").fill(ADMIN_TOKEN)
    page.keyboard.press("Enter")

    page.get_by_role("textbox", name="New tenant").fill("payments")
    page.get_by_label("display name").fill("Payments team")
    page.get_by_role("button", name="Create tenant").click()
    page.get_by_role("heading", name="Tenant payments (Payments team)").wait_for()
    assert (gateway.config_dir / "console-tenant-payments.yaml").exists()

    page.get_by_role("textbox", name="New key named").fill("ci")
    page.get_by_role("button", name="Add key").click()
    key = page.locator("[data-field=new-key]").inner_text()
    assert key.startswith("sk-sb-"), key
    # The console shows the key once it is served: the first call with it works.
    reply = gateway.openai(key=key).chat.completions.create(
        model="demo-echo", messages=[{"role": "user", "content": "from the new key"}]
    )
    assert reply.choices[0].message.content.endswith("from the new key")
    assert admin_get(gateway, "/admin/v1/tenants/payments")["api_keys"] == [{"name": "ci", "rate_limits": {}}]

    # Limits and a default budget, set from the tenant's page: served when shown.
    page.get_by_label("requests per minute").fill("600")
    page.get_by_role("button", name="Set limits").click()
    expect(page.get_by_role("table", name="Rate limits")).to_contain_text("600")
    assert admin_get(gateway, "/admin/v1/tenants/payments")["rate_limits"] == {"requestsPerMinute": 600}
    page.get_by_label("Default budget, USD").fill("25")
    page.get_by_label("per", exact=True).select_option("Weekly")
    page.get_by_role("button", name="Set budget").click()
    expect(page.get_by_role("table", name="Budgets")).to_contain_text("payments/default")
    assert serious_violations(page) == [], "the change forms pass axe too"
    (budget,) = admin_get(gateway, "/admin/v1/tenants/payments")["budgets"]
    assert (budget["limit_usd"], budget["period"], budget["enforcement"]) == ("25", "Weekly", "Hard")
    page.get_by_role("button", name="Remove budget").click()
    expect(page.get_by_text("No budget.")).to_be_visible()
    # A Budget object for the tenant: made from the page, listed by the API, removed again.
    page.get_by_label("New Budget named").fill("payments-weekly")
    page.get_by_label("USD", exact=True).fill("30")
    page.get_by_label("each").select_option("Weekly")
    page.get_by_role("button", name="Create Budget").click()
    expect(page.get_by_role("table", name="Budgets")).to_contain_text("payments-weekly")
    (made,) = admin_get(gateway, "/admin/v1/budgets?tenant=payments")["data"]
    assert (made["name"], made["limit_usd"], made["period"]) == ("payments-weekly", "30", "Weekly"), made
    page.get_by_role("button", name="Remove payments-weekly").click()
    expect(page.get_by_text("No budget.")).to_be_visible()
    assert admin_get(gateway, "/admin/v1/budgets?tenant=payments")["data"] == []

    page.get_by_role("button", name="Revoke ci").click()
    expect(page.locator("[data-revoke]")).to_have_count(0)
    with pytest.raises(openai.AuthenticationError):
        gateway.openai(key=key).chat.completions.create(model="demo-echo", messages=[{"role": "user", "content": "x"}])

    # The samples' tenant is not the console's: no key form, and the API refuses.
    page.locator("button[data-tenant='demo']").click()
    expect(page.locator("[data-field=read-only]")).to_contain_text("not by the console")
    assert page.get_by_role("form", name="New key").count() == 0
