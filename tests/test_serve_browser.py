"""The page at `/` in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import pytest
import torch
from serve_util import running, toy_hub

from n2n_hub.serve import Limits, ServeSettings, create_app

pytestmark = pytest.mark.slow  # a real server and a browser


@pytest.fixture(scope="module")
def page_server(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("page")
    hub = toy_hub(root / "home", root / "registry.toml")
    app = create_app(hub, ServeSettings(allow_train=True, max_delay_ms=0, limits=Limits(max_n=16)),
                     pairs=["toy-shapes"])
    with running(app) as url:
        yield url


def test_page_submits_a_prompt_shows_the_grid_and_shows_errors(chromium, page_server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(page_server + "/")
            page.wait_for_selector("#pair option:not([disabled])", state="attached")
            assert "toy-shapes" in page.inner_text("#pair")
            page.fill("#texts", "a circle\na square")
            page.fill("#n", "4")
            page.fill("#seed", "3")
            page.click("#go")
            grid = page.wait_for_selector("#grid[src^='data:image/png;base64,']", timeout=20_000)
            size = grid.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            assert size == [4 * 66 + 2, 2 * 66 + 2]  # 4 samples per prompt, one row per prompt
            assert page.inner_text("#facts").count("a circle") == 1
            assert page.is_hidden("#error")
            page.screenshot(path=str(tmp_path / "page.png"))
            page.fill("#n", "100")  # past the server's limit: the error is shown on the page
            page.click("#go")
            page.wait_for_selector("#error:not([hidden])", timeout=20_000)
            assert "limit of 16" in page.inner_text("#error")
            assert page.is_enabled("#go")
            page.goto(page_server + "/docs")  # the OpenAPI page renders without a CDN
            page.wait_for_selector("h2:has-text('POST /v1/translate')", timeout=20_000)
            assert "temperature" in page.inner_text("#api")
        finally:
            browser.close()
    assert (tmp_path / "page.png").stat().st_size > 1000
