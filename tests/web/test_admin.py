"""Accounts without the CLI, in a real browser: an admin creates a user who then signs in,
an invite link opened in a fresh browser makes an account (once), a person changes their
own password, and the admin page is refused to others; names and comments with markup show
as text; a password change cuts off what a stolen session has open."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.gateway.conftest import Cluster, running_cluster
from tests.support import notebook_with_code
from tests.support_web import artifact, open_notebook, signed_in


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A server without workers: nothing here runs code."""
    with running_cluster(tmp_path_factory.mktemp("admin")) as cluster:
        yield cluster


async def fresh(browser: Browser, site: Cluster) -> BrowserContext:
    """A browser with no cookie: someone who has never signed in."""
    return await browser.new_context(base_url=site.server.url)


async def sign_in(page: Page, username: str, password: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_admin_creates_a_user_who_then_signs_in(site: Cluster, browser: Browser) -> None:
    admin = await signed_in(browser, site, "root")
    page = await admin.new_page()
    await page.goto("/")
    await page.get_by_test_id("admin-link").click()
    await page.wait_for_url("**/admin")
    await page.get_by_label("new username").fill("nina")
    await page.get_by_label("new user password").fill("nina-pw-1")
    await page.get_by_role("button", name="Create user").click()
    await expect(page.locator("tr[data-user=nina]")).to_contain_text("active")
    await page.screenshot(path=artifact("admin-page.png"))
    newcomer = await fresh(browser, site)
    their = await newcomer.new_page()
    await sign_in(their, "nina", "nina-pw-1")
    await their.wait_for_url(f"{site.server.url}/")
    await expect(their.locator(".bar .who")).to_have_text("nina")
    await expect(their.get_by_test_id("admin-link")).to_have_count(0)
    # Reset from the admin page: nina's session ends, the new password works.
    page.once("dialog", lambda dialog: dialog.accept("nina-pw-2"))
    await page.locator("tr[data-user=nina]").get_by_role("button", name="Reset password").click()
    await expect(page.get_by_test_id("shown-once")).to_contain_text(
        "1 browser session of nina signed out"
    )
    await their.reload()
    await their.wait_for_url("**/login?next=*")
    await sign_in(their, "nina", "nina-pw-2")
    await expect(their.locator(".bar .who")).to_have_text("nina")
    await newcomer.close()
    await admin.close()


async def test_the_admin_page_is_refused_to_others(site: Cluster, browser: Browser) -> None:
    context = await signed_in(browser, site, "ann")
    page = await context.new_page()
    response = await page.goto("/admin")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("alert")).to_have_text("This page is for admins.")
    await page.goto("/")
    await expect(page.get_by_test_id("account-link")).to_be_visible()
    await expect(page.get_by_test_id("admin-link")).to_have_count(0)
    await context.close()


async def test_an_invite_link_in_a_fresh_browser_makes_an_account(
    site: Cluster, browser: Browser
) -> None:
    notebook = site.admin_api.create("Team notes")
    admin = await signed_in(browser, site, "root")
    page = await admin.new_page()
    await page.goto("/admin")
    await page.get_by_label("invite label").fill("for oscar")
    await page.get_by_label("invite notebook").select_option(label="Team notes")
    await page.get_by_label("invite role").select_option("commenter")
    await page.get_by_role("button", name="Create invite link").click()
    link = await page.get_by_test_id("secret").input_value()
    assert link.startswith(f"{site.server.url}/invite/tdi_")
    await expect(page.get_by_test_id("invites")).to_contain_text("for oscar")

    stranger = await fresh(browser, site)
    their = await stranger.new_page()
    await their.goto(link)
    await expect(their.get_by_text("You are invited to “Team notes” as commenter.")).to_be_visible()
    await their.get_by_label("Choose a username").fill("oscar")
    await their.get_by_label("Choose a password").fill("oscar-pw")
    await their.get_by_role("button", name="Create account").click()
    await their.wait_for_url(f"**/n/{notebook}")
    await expect(their.get_by_test_id("status")).to_have_attribute("data-state", "connected")
    await expect(their.locator(".bar .role")).to_contain_text("commenter")
    await stranger.close()

    # The link worked once: a second fresh browser is told so.
    late = await fresh(browser, site)
    second = await late.new_page()
    await second.goto(link)
    await expect(second.get_by_role("alert")).to_have_text(
        "this invite link was already used; ask for a new one"
    )
    await late.close()
    await page.reload()
    await expect(page.get_by_test_id("invites")).to_contain_text("used by oscar")
    await admin.close()


async def test_a_person_changes_their_own_password(site: Cluster, browser: Browser) -> None:
    made = site.admin_api.client.post(
        "/api/admin/users", json={"username": "pia", "password": "pia-first"}
    )
    assert made.status_code == 201
    here, elsewhere = await fresh(browser, site), await fresh(browser, site)
    page, other = await here.new_page(), await elsewhere.new_page()
    await sign_in(page, "pia", "pia-first")
    await sign_in(other, "pia", "pia-first")
    await expect(other.locator(".bar .who")).to_have_text("pia")
    await page.get_by_test_id("account-link").click()
    await page.get_by_label("current password").fill("wrong guess")
    await page.get_by_label("new password", exact=True).fill("pia-second")
    await page.get_by_label("new password again").fill("pia-second")
    await page.get_by_role("button", name="Change password").click()
    message = page.get_by_test_id("account-message")
    await expect(message).to_have_text("the current password is wrong")
    await page.get_by_label("current password").fill("pia-first")
    await page.get_by_label("new password", exact=True).fill("pia-second")
    await page.get_by_label("new password again").fill("pia-second")
    await page.get_by_role("button", name="Change password").click()
    await expect(message).to_contain_text("Password changed")
    # This browser stays signed in; the other one is signed out.
    await page.goto("/")
    await expect(page.locator(".bar .who")).to_have_text("pia")
    await other.reload()
    await other.wait_for_url("**/login?next=*")
    await sign_in(other, "pia", "pia-second")
    await expect(other.locator(".bar .who")).to_have_text("pia")
    await here.close()
    await elsewhere.close()


HOSTILE = '<img src=x onerror="window.__xss=1">'


async def test_hostile_names_and_comments_show_as_text(site: Cluster, browser: Browser) -> None:
    """A username or a comment with markup is shown as its characters on the admin page,
    the account page and in the comments panel (with its @mention drawn); nothing runs."""
    made = site.admin_api.client.post(
        "/api/admin/users", json={"username": HOSTILE, "password": "hostile-pw"}
    )
    assert made.status_code == 201, made.text
    ann = site.api("ann")
    notebook, ids = notebook_with_code(ann, ["x = 1"], title="Hostile")
    shared = ann.client.put(
        f"/api/notebooks/{notebook}/members/{quote(HOSTILE)}", json={"role": "commenter"}
    )
    assert shared.status_code == 200, shared.text
    hostile = await fresh(browser, site)
    login = {"username": HOSTILE, "password": "hostile-pw"}
    assert (await hostile.request.post("/api/auth/login", data=login)).ok
    posted = await hostile.request.post(
        f"/api/notebooks/{notebook}/threads",
        data={"cell_id": ids[0], "body": f"{HOSTILE} look @ann"},
        headers={"Origin": site.server.url},
    )
    assert posted.status == 201, await posted.text()
    pages = []
    page = await hostile.new_page()
    await page.goto("/account")
    await expect(page.get_by_text(f"Signed in as {HOSTILE}")).to_be_visible()
    pages.append(page)
    admin = await signed_in(browser, site, "root")
    page = await admin.new_page()
    await page.goto("/admin")
    await expect(page.get_by_test_id("users")).to_contain_text(HOSTILE)
    await expect(page.get_by_test_id("account-audit")).to_contain_text(HOSTILE)
    pages.append(page)
    owner = await signed_in(browser, site, "ann")
    page = await owner.new_page()
    await open_notebook(page, notebook)
    await page.get_by_test_id("open-comments").click()
    thread = page.locator("article.thread")
    await expect(thread.locator(".meta strong")).to_have_text(HOSTILE)
    await expect(thread.locator(".mention")).to_have_text("@ann")
    pages.append(page)
    for page in pages:
        assert await page.locator("[onerror]").count() == 0
        assert await page.evaluate("window.__xss") is None
    for context in (hostile, admin, owner):
        await context.close()


async def test_a_password_change_cuts_off_a_stolen_session_s_open_notebook(
    site: Cluster, browser: Browser
) -> None:
    """Someone else holds a copy of rea's session and has her notebook open. rea changes her
    password: that page is disconnected for good (its edits reach no one), while her own
    page reconnects at once."""
    made = site.admin_api.client.post(
        "/api/admin/users", json={"username": "rea", "password": "rea-first"}
    )
    assert made.status_code == 201
    notebook, _ = notebook_with_code(site.admin_api, ["shared = 1"], title="Rea's")
    site.admin_api.share(notebook, "rea", "editor")
    mine, thief = await fresh(browser, site), await fresh(browser, site)
    for context in (mine, thief):
        login = {"username": "rea", "password": "rea-first"}
        assert (await context.request.post("/api/auth/login", data=login)).ok
    here, there = await mine.new_page(), await thief.new_page()
    await open_notebook(here, notebook)
    await open_notebook(there, notebook)
    changed = await mine.request.post(
        "/api/me/password",
        data={"current_password": "rea-first", "new_password": "rea-second"},
        headers={"Origin": site.server.url},
    )
    assert changed.status == 204
    status = there.get_by_test_id("status")
    await expect(status).not_to_have_attribute("data-state", "connected")
    await expect(here.get_by_test_id("status")).to_have_attribute("data-state", "connected")
    await there.locator(".cell .cm-content").first.click()
    await there.keyboard.type("# stolen", delay=10)
    await here.wait_for_timeout(2000)  # time for an edit to arrive, were it sent
    await expect(here.locator(".cell .cm-content").first).not_to_contain_text("stolen")
    await expect(status).not_to_have_attribute("data-state", "connected")
    await mine.close()
    await thief.close()
