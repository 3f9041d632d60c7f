#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/browser/search.py: drives a headless Chromium through a wiki's search.

Used by tests/test-browser.c; it is the test's eyes, the C test the judge.
It opens a page of the wiki, types a prefix into the skin's search box
(Vector legacy: #searchInput with mediawiki.searchSuggest's .suggestions
box), waits for the suggestions, saves a screenshot, submits the form,
waits for Special:Search's result list and saves a second screenshot.

It writes a JSON report of what the page showed:

  {"ok": bool, "skin": "...", "suggestions": ["Title", ...],
   "results": [{"title": "...", "searchmatch": ["word", ...]}, ...],
   "results_url": "...", "results_page": "Special:Search",
   "screenshots": ["path", ...],
   "failures": ["what was expected and not seen", ...], "error": null}

and exits 0 when every expectation held, 1 when one did not (the report
says which), 2 when the browser or the page could not be driven at all
(the report's "error" says why; the report is written in every case).

Only Debian's chromium and chromium-driver are used: nothing is
downloaded.  Chromium runs with --no-sandbox (tests run as root in a
container) and its own throwaway profile.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Vector legacy (the test wiki's $wgDefaultSkin "vector") and
# mediawiki.searchSuggest's markup.
SEARCH_INPUT = "#searchInput"
SUGGESTION = ".suggestions .suggestions-results .suggestions-result"
RESULT = "ul.mw-search-results li.mw-search-result"
NO_RESULTS = ".mw-search-nonefound"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="a page of the wiki to start from")
    p.add_argument("--prefix", required=True, help="text typed into the search box")
    p.add_argument("--expect-suggestion", action="append", default=[],
                   metavar="TITLE", help="a title the suggestions must show")
    p.add_argument("--expect-result", action="append", default=[],
                   metavar="TITLE", help="a title the result list must show")
    p.add_argument("--match", metavar="WORD",
                   help="a word some expected result (or any result) must show "
                        "inside span.searchmatch")
    p.add_argument("--out", required=True, help="directory for the screenshots")
    p.add_argument("--name", default="search", help="screenshot file name prefix")
    p.add_argument("--report", required=True, help="where to write the JSON report")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for each step [30]")
    return p.parse_args()


def start_browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--window-size=1280,900",
              "--no-first-run", "--disable-extensions",
              "--user-data-dir=" + profile):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def visible_texts(driver, css):
    out = []
    for e in driver.find_elements(By.CSS_SELECTOR, css):
        try:
            if e.is_displayed():
                t = e.get_attribute("title") or e.text
                out.append(t.strip())
        except WebDriverException:
            pass  # replaced under us while the list was redrawn
    return out


def read_results(driver):
    results = []
    for li in driver.find_elements(By.CSS_SELECTOR, RESULT):
        heads = li.find_elements(By.CSS_SELECTOR, ".mw-search-result-heading a")
        title = heads[0].get_attribute("title") or heads[0].text if heads else ""
        marks = [m.text for m in li.find_elements(By.CSS_SELECTOR, "span.searchmatch")]
        results.append({"title": title.strip(), "searchmatch": marks})
    return results


def run(args, report):
    os.makedirs(args.out, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="freshet-chromium-")
    driver = None
    try:
        driver = start_browser(profile)
        # A page load is not a step: under load it may take longer.
        driver.set_page_load_timeout(max(args.timeout, 120))
        wait = WebDriverWait(driver, args.timeout, poll_frequency=0.1)

        driver.get(args.url)
        body = driver.find_element(By.TAG_NAME, "body").get_attribute("class") or ""
        report["skin"] = " ".join(c for c in body.split() if c.startswith("skin-"))
        box = driver.find_element(By.CSS_SELECTOR, SEARCH_INPUT)
        # The skin loads the suggestion module when the box gets the
        # focus, and keys typed before it is ready are not seen by it.
        box.click()
        wait.until(lambda d: d.execute_script(
            "return window.mw && mw.loader.getState('mediawiki.searchSuggest') === 'ready';"))
        box.send_keys(args.prefix)

        def suggestions_shown(d):
            seen = visible_texts(d, SUGGESTION)
            report["suggestions"] = seen
            return seen and all(t in seen for t in args.expect_suggestion)
        try:
            wait.until(suggestions_shown)
        except TimeoutException:
            for t in args.expect_suggestion:
                if t not in report["suggestions"]:
                    report["failures"].append(
                        "suggestion %r not shown for %r" % (t, args.prefix))
            if not args.expect_suggestion:
                report["failures"].append("no suggestions for %r" % args.prefix)
        shot = os.path.join(args.out, args.name + "-suggestions.png")
        driver.save_screenshot(shot)
        report["screenshots"].append(shot)

        box.send_keys(Keys.ENTER)
        try:
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, RESULT)
                       or d.find_elements(By.CSS_SELECTOR, NO_RESULTS))
        except TimeoutException:
            report["failures"].append("no result list at %s" % driver.current_url)
        report["results_url"] = driver.current_url
        report["results_page"] = driver.execute_script(
            "return window.mw ? mw.config.get('wgPageName') : '';") or ""
        report["results"] = read_results(driver)
        shot = os.path.join(args.out, args.name + "-results.png")
        driver.save_screenshot(shot)
        report["screenshots"].append(shot)
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    titles = [r["title"] for r in report["results"]]
    for t in args.expect_result:
        if t not in titles:
            report["failures"].append("result %r not in the list %r" % (t, titles))
    if args.match:
        scope = [r for r in report["results"]
                 if not args.expect_result or r["title"] in args.expect_result]
        if not any(args.match.lower() in (m.lower() for m in r["searchmatch"])
                   for r in scope):
            report["failures"].append(
                "no span.searchmatch around %r in %s" %
                (args.match, "the expected results" if args.expect_result
                 else "any result"))


def main():
    args = parse_args()
    report = {"ok": False, "skin": "", "suggestions": [], "results": [],
              "results_url": "", "results_page": "", "screenshots": [], "failures": [], "error": None}
    status = 2
    started = time.monotonic()
    try:
        run(args, report)
        report["ok"] = not report["failures"]
        status = 0 if report["ok"] else 1
    except Exception as e:  # noqa: BLE001 - every failure goes into the report
        report["error"] = "%s: %s" % (type(e).__name__, str(e).strip().split("\n")[0])
    report["seconds"] = round(time.monotonic() - started, 2)
    with open(args.report, "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=1)
    for msg in report["failures"] + ([report["error"]] if report["error"] else []):
        print("search.py: " + msg, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
