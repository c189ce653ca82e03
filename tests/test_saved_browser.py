"""The Saved page in Chromium (Debian's), driven as a reader does: ★ Save on a radar's card and
☆ Save on a search result, the header's "Saved" link, mark read, a note, the BibTeX download, the
cite box with its copy button; axe-core finds no serious violation on the page."""

from __future__ import annotations

import pytest

from academichub.ingest.library_import import parse_library
from academichub.store.radars import create_radar, default_user
from browser_support import assert_axe_clean, browser, new_page, screenshot, site  # noqa: F401 - fixtures


@pytest.fixture
def page(browser):  # noqa: F811 - the fixture above
    page = new_page(browser, "desktop", lang="en")
    page.set_default_timeout(30_000)
    yield page
    page.context.close()


def test_save_read_note_and_export_from_the_saved_page(site, page, tmp_path):  # noqa: F811
    with site.hub.writing() as conn:
        create_radar(conn, user_id=default_user(conn), name="spin qubits", interest="spin qubits in silicon quantum dots")
    page.goto(site.url("/?radar=spin+qubits&lang=en"))
    first = page.locator("article.card").first
    radar_title = first.locator("h2.card-title").inner_text()
    first.locator("button.fb-save").click()
    page.wait_for_load_state("networkidle")

    page.goto(site.url("/?q=graph+neural+network&lang=en"))
    result = page.locator("article.card").first
    search_title = result.locator("h2.card-title").inner_text()
    result.locator("form.save-form button").click()
    page.wait_for_url("**noted=saved**")
    assert " ".join(page.locator(f"#{result.get_attribute('id')} button.fb-saved").inner_text().split()) == "★ On reading list"

    result = page.locator("article.card").first
    result.locator("details.cite-box summary").click()
    assert result.locator("details.cite-box pre").first.inner_text().startswith("@")
    assert result.locator("details.cite-box .copy-button").count() == 3  # app.js: one per text

    page.get_by_role("link", name="Saved", exact=True).click()
    page.wait_for_url("**/saved")
    items = page.locator("li.saved-item")
    assert [t.strip() for t in items.locator("h2").all_inner_texts()] == [search_title, radar_title]
    assert "from radar spin qubits" in items.nth(1).inner_text()

    items.nth(1).get_by_role("button", name="Mark read").click()
    page.wait_for_url("**/saved?done=read**")
    assert page.locator("li.saved-item.is-read h2").inner_text().strip() == radar_title
    assert page.get_by_role("link", name="Read (1)", exact=True).count() == 1
    page.get_by_role("link", name="Unread (1)", exact=True).click()
    assert [t.strip() for t in page.locator("li.saved-item h2").all_inner_texts()] == [search_title]

    page.locator("li.saved-item textarea").fill("read §3 first — 先读第三节")
    page.get_by_role("button", name="Save note").click()
    page.wait_for_url("**done=noted**")
    page.reload()
    assert page.locator("li.saved-item textarea").input_value() == "read §3 first — 先读第三节"
    assert_axe_clean(page, "saved")
    screenshot(page, "saved", "desktop")

    page.goto(site.url("/saved"))
    with page.expect_download() as download:
        page.locator(".saved-export a", has_text="BibTeX").first.click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == "saved.bib"
    library = parse_library(path.read_bytes(), path.name)
    assert sorted(p.title for p in library.papers) == sorted([search_title, radar_title])
