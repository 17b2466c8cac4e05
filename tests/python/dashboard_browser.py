"""Drives memd's dashboard in Debian's headless Chromium with Playwright (issue 29).

    python dashboard_browser.py BASE_URL TOKEN SCREENSHOT EXPECTED_NAME...

Prints one JSON object: what the page did (refused without a session, the rows shown
after signing in, console errors, whether an injected inline script ran). The Rust test
(tests/e2e/dashboard.rs) asserts on it; this script asserts nothing itself.
"""

import json
import sys

from playwright.sync_api import sync_playwright

base, token, screenshot, *names = sys.argv[1:]
result = {"console_errors": [], "csp_violations": []}

with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        headless=True,
        args=["--no-sandbox", "--disable-gpu"],
    )
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.on("console", lambda m: m.type == "error" and result["console_errors"].append(m.text))
    page.on("pageerror", lambda e: result["console_errors"].append(str(e)))

    first = page.goto(f"{base}/dashboard")
    result["without_session_status"] = first.status
    result["login_form"] = page.locator("form[action='/dashboard/login']").count() == 1

    # The refusal itself is a 401 the console reports; what counts is the signed-in page.
    result["console_errors_before_signing_in"] = list(result["console_errors"])
    result["console_errors"].clear()
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard")
    for name in names:
        page.locator("#bots tbody tr", has_text=name).first.wait_for(timeout=20000)
    page.locator("#live", has_text="live").wait_for(timeout=20000)
    result["rows"] = page.locator("#bots tbody tr").all_inner_texts()
    result["cookie_visible_to_script"] = "memd_dashboard" in page.evaluate("document.cookie")

    # Errors so far are the page's own; the injection below is expected to be refused.
    result["console_errors_before_injection"] = list(result["console_errors"])
    page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__injected = true';
                   document.body.appendChild(s); }"""
    )
    result["injected_script_ran"] = page.evaluate("window.__injected === true")
    page.screenshot(path=screenshot, full_page=True)
    browser.close()

print(json.dumps(result))
