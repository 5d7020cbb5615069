"""The demo page in a real browser: pick a person, see reasons, post and watch the list
change, share a product with an @-mention, shop as a group, filters, phone screens, errors,
and user text shown as text only."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ConsoleWatch, PageOptions, Server, save_docs_screenshot

pytestmark = pytest.mark.browser

UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('button, input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && el.getClientRects().length)
    .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim()))
    .map((el) => el.outerHTML)"""
"""Visible form controls without an accessible name (no label, aria-label or text)."""
WEIGHT_LOSS_POST = "Need to lose weight before summer, any tips? #减肥#"


def open_person(page: Page, user_id: int) -> None:
    """Open the page on a person and wait for their recommendations."""
    page.goto(f"/#user={user_id}")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    expect(page.locator("#recs-list .card:not(.card-skeleton)").first).to_be_visible()


def test_choose_a_person_and_see_cards_with_reasons(page: Page, server: Server) -> None:
    page.goto("/")
    people = page.locator("#people-list .person")
    expect(people.first).to_be_visible()
    page.fill("#search-input", "wildclub")
    page.press("#search-input", "Enter")

    expect(page.locator("#profile-handle")).to_have_text("@wildclub")
    expect(page.locator("#following-list .person").first).to_be_visible()
    expect(page.locator("#posts-list .post").first).to_be_visible()
    cards = page.locator("#recs-list .card:not(.card-skeleton)")
    expect(cards.first).to_be_visible()
    assert cards.count() == 10
    for i in range(cards.count()):
        card = cards.nth(i)
        expect(card.locator(".card-title")).not_to_be_empty()
        expect(card.locator(".price")).to_have_text(re.compile(r"^¥\d+\.\d\d$"))
        assert card.locator(".reason").count() >= 1
    social = page.locator(".reason-social .reason-text", has_text="people you follow bought this")
    expect(social.first).to_contain_text("@")
    expect(page.locator(".reason-kol", has_text="KOL @").first).to_be_visible()
    expect(page).to_have_title("@wildclub — socialcart")
    assert page.evaluate(UNLABELLED_CONTROLS) == []


def test_loading_state_while_recommendations_load(page: Page) -> None:
    held = []
    page.route("**/v1/users/*/recommendations*", lambda route: held.append(route))
    page.goto("/#user=8")
    expect(page.locator("#recs-status")).to_have_text("Loading recommendations…")
    expect(page.locator("#recs-list")).to_have_attribute("aria-busy", "true")
    expect(page.locator("#recs-list .card-skeleton").first).to_be_visible()
    for route in held:
        route.continue_()
    page.unroute("**/v1/users/*/recommendations*")
    expect(page.locator("#recs-list .card:not(.card-skeleton)").first).to_be_visible()
    expect(page.locator("#recs-list")).to_have_attribute("aria-busy", "false")


def test_post_about_losing_weight_brings_weight_loss_products(page: Page, server: Server) -> None:
    open_person(page, 5)
    before = page.locator("#recs-list .card").evaluate_all("cs => cs.map(c => c.dataset.productId)")

    page.fill("#compose-text", WEIGHT_LOSS_POST)
    page.click("#compose-submit")

    expect(page.locator("#recs-status")).to_contain_text("Your post changed the list")
    matched = page.locator("#recs-list .card", has=page.locator(".reason-post"))
    expect(matched.first).to_be_visible()
    expect(matched.first.locator(".reason-post")).to_contain_text("Matches your post")
    expect(matched.first.locator(".category")).to_contain_text("Weight loss")
    new = page.locator("#recs-list .card-new")
    expect(new.first).to_be_visible()
    assert new.first.get_attribute("data-product-id") not in before
    # The post is stored and shown among the person's posts.
    expect(page.locator("#posts-list .post-live").first).to_contain_text("lose weight")
    save_docs_screenshot(page)


def test_share_a_product_with_an_at_mention(page: Page, server: Server) -> None:
    user_id = 1
    open_person(page, user_id)
    page.locator("#recs-list .card-title").first.click()
    dialog = page.locator("#product-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".description")).not_to_be_empty()
    expect(dialog.locator(".mini-card").first).to_be_visible()
    target = dialog.locator(".share-target").first
    expect(target).to_be_visible()
    target_id = int(target.get_attribute("data-user-id"))
    product_id = int(page.locator("#recs-list .card").first.get_attribute("data-product-id"))

    target.locator("button.mention-btn").click()
    expect(target.locator(".share-status")).to_contain_text("Posted (post ")

    posts = server.get(f"/v1/demo/users/{user_id}/posts?limit=5")["data"]
    stored = [p for p in posts if p["live"] and p["product_id"] == product_id]
    assert stored, posts
    assert [m["user_id"] for m in stored[0]["mentions"]] == [target_id]
    assert stored[0]["text"].startswith("@")


def test_group_panel_finds_products_for_several_people(page: Page) -> None:
    open_person(page, 2)
    page.click("#group-add-current")
    page.fill("#group-add-input", "wildclub")
    page.press("#group-add-input", "Enter")
    expect(page.locator("#group-members .chip")).to_have_count(2)
    page.check("input[name=strategy][value=least_misery]")
    page.click("#group-submit")

    results = page.locator("#group-results .card")
    expect(results.first).to_be_visible()
    expect(page.locator("#group-status")).to_contain_text("for 2 people (least misery)")
    expect(results.first.locator(".reason-group")).to_contain_text("Fits")
    expect(results.first.locator(".member-bars li")).to_have_count(2)


def test_category_and_price_filters(page: Page) -> None:
    open_person(page, 3)
    page.select_option("#filter-category", "Beauty")
    page.fill("#filter-max", "150")
    page.click("#filters button[type=submit]")
    expect(page.locator("#recs-status")).to_contain_text("products, each with the reasons")
    cards = page.locator("#recs-list .card:not(.card-skeleton)")
    expect(cards.first).to_be_visible()
    for text in cards.locator(".category").all_inner_texts():
        assert text.startswith("Beauty"), text
    for text in cards.locator(".price").all_inner_texts():
        assert float(text.lstrip("¥")) <= 150, text


@pytest.fixture
def phone(page_options: PageOptions) -> None:
    page_options.viewport = {"width": 390, "height": 844}
    page_options.mobile = True


@pytest.mark.usefixtures("phone")
def test_phone_viewport(page: Page) -> None:
    open_person(page, 4)
    expect(page.locator("#compose-text")).to_be_visible()
    card = page.locator("#recs-list .card").first
    expect(card.locator(".reason").first).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px wide)"
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    card.locator(".card-title").click()
    expect(page.locator("#product-dialog .share-target").first).to_be_visible()
    dialog_box = page.locator("#product-dialog").bounding_box()
    assert dialog_box["width"] <= 390


HOSTILE = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>"]


def test_user_text_is_shown_as_text_and_never_runs(page: Page) -> None:
    open_person(page, 6)
    for text in HOSTILE:
        page.fill("#compose-text", text)
        page.click("#compose-submit")
        expect(page.locator("#posts-list .post-live .post-text", has_text=text)).to_have_count(1)
    posts = page.locator("#posts-list")
    assert posts.locator("img, script").count() == 0
    expect(posts.locator(".post-text").first).to_have_text(HOSTILE[1])
    # A handle search echoes the query as text too.
    page.fill("#search-input", HOSTILE[0])
    page.press("#search-input", "Enter")
    expect(page.locator("#people-hint")).to_have_text(f"Nobody matches “{HOSTILE[0]}”.")
    assert page.locator("#people-panel img").count() == 0
    page.wait_for_timeout(300)  # an onerror handler would have fired by now


@pytest.fixture
def no_key(page_options: PageOptions) -> None:
    page_options.with_key = False


@pytest.mark.usefixtures("no_key")
def test_writes_without_the_key_show_the_error_then_work_with_it(
    page: Page, server: Server, console: ConsoleWatch
) -> None:
    console.allow(r"status of 401")
    open_person(page, 7)
    expect(page.locator("#banner")).to_contain_text("API key")

    page.fill("#compose-text", "new running shoes for the marathon")
    page.click("#compose-submit")
    alert = page.locator(".toast-error")
    expect(alert).to_contain_text("missing or wrong API key")
    alert.get_by_role("button", name="Enter API key").click()
    page.fill("#key-input", server.api_key)
    page.click("#key-save")
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator("#key-button")).to_have_text("API key ✓")

    page.click("#compose-submit")
    expect(page.locator("#recs-status")).to_contain_text("Your post")
    assert page.evaluate("() => localStorage.getItem('socialcart.apiKey')") == server.api_key


def test_unknown_person_shows_the_service_message(page: Page, console: ConsoleWatch) -> None:
    console.allow(r"status of 404")
    page.goto("/#user=987654")
    expect(page.locator(".toast-error")).to_contain_text("unknown user id: 987654")
