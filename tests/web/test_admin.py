"""Accounts without the CLI, in a real browser: an admin creates a user who then signs in,
an invite link opened in a fresh browser makes an account (once), a person changes their
own password, and the admin page is refused to others."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.gateway.conftest import Cluster, running_cluster
from tests.support_web import artifact, signed_in


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
