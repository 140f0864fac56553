#!/usr/bin/env python3
"""Robustness of the two dashboard pages against bad answers, run against the mock server only.

  python3 Tests/browser/mock_server.py --port 8099 --token dev-token &
  python3 Tests/browser/dashboard_robustness.py --url http://127.0.0.1:8099 --token dev-token

Answers are rewritten with Playwright routes: empty, null, wrongly typed, huge and hostile fields,
__proto__ keys, a JSON array, non-JSON, 500 (stale banner, last data kept), 403 (back to the login
form with the detail), purge refusals, a purge answer without an id, read-only and tenant-scoped
tokens; then reload (the session is kept) and logout (sessionStorage emptied). After every step the
page must have thrown nothing, shown no render error and injected no markup.
Prints "OK: ..." lines, or "FAIL: reason" and exits 1.
"""
import argparse
import json
import sys

from playwright.sync_api import sync_playwright

HUGE = 1e308
HOSTILE = "<img src=x onerror=alert(9)>"
BAD_NODE_ANSWERS = {
    "empty object": {},
    "all null": {"time": None, "node": None, "token": None, "tenants": None, "nodes": None, "events": None},
    "wrong types": {"time": "abc", "node": [1], "token": "x", "tenants": [1, 2], "nodes": {"a": 1}, "events": "x"},
    "broken entries": {
        "token": {"scopes": ["purge"], "tenants": [None, 5, "*"]},
        "tenants": {"acme": None, "b": 5, "c": {"requests": [], "bytes": "x", "latency": {"bounds_s": "x", "cumulative": None}},
                    "__proto__": {"requests": {"hit": 5}}, "constructor": {}, HOSTILE: {"entries_by_key_version": {HOSTILE: 1}}},
        "nodes": [None, 5, {"id": None, "tiers": 5, "key_versions": [1]}, {"id": HOSTILE, "key_versions": {HOSTILE: [HOSTILE]}}],
        "events": [None, 5, {"kind": {"a": 1}, "count": "many"}, {"kind": HOSTILE, "first": HUGE, "last": -HUGE}]},
    "huge numbers 1": {"time": 1.0, "node": {"id": "n", "uptime_s": HUGE, "config_version": HUGE},
                       "tenants": {"acme": {"requests": {"hit": HUGE, "miss": HUGE, "l2_hit": HUGE},
                                            "bytes": {"memory": HUGE, "memory_quota": 1, "redis": HUGE}, "evictions": HUGE,
                                            "latency": {"bounds_s": [1, 2], "cumulative": [HUGE, HUGE, HUGE]}, "key_version": HUGE}},
                       "nodes": [{"id": "n", "seen_s_ago": HUGE, "cursor": HUGE, "lag_s": HUGE, "config_version": -HUGE}],
                       "events": [{"kind": "k", "count": HUGE, "last": 1e20}]},
    "huge numbers 2": {"time": 2.0, "tenants": {"acme": {"requests": {"hit": -HUGE, "miss": HUGE},
                                                         "latency": {"bounds_s": [1, 2], "cumulative": [1, 0, HUGE]}}}},
}
BAD_ORIGIN_ANSWERS = {
    "empty object": {},
    "all null": {"origin": None, "regions": None, "publishes": None, "erasures": None},
    "wrong types": {"origin": "x", "regions": {"a": 1}, "publishes": "x", "erasures": 5},
    "broken entries": {"origin": {"head_seq": HUGE, "config_version": "7"},
                       "regions": [None, 5, {"name": None, "nodes": [None, {"id": HOSTILE, "last_poll_s_ago": -1}]},
                                   {"name": "__proto__", "nodes": {"x": 1}}],
                       "publishes": [None, {"version": HUGE, "nodes": {HOSTILE: HOSTILE, "__proto__": "applied"}}],
                       "erasures": [None, {"tenant": HOSTILE, "nodes": {"a": "x", "b": HUGE}}]},
}


class Fail(Exception):
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    args = ap.parse_args()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"], headless=True)
            try:
                node_checks(browser, args)
                origin_checks(browser, args)
            finally:
                browser.close()
    except Fail as e:
        print("FAIL: %s" % e)
        sys.exit(1)


def open_page(browser, args, path):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
    page.goto(args.url.rstrip("/") + path)
    page.fill("#token", args.token)
    page.click("#login-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('last-updated').textContent !== '–'", timeout=10000)
    return context, page, errors


def healthy(page, errors, what):
    if errors:
        raise Fail("%s: %s" % (what, errors[0]))
    bad = page.evaluate("""() => ({
        render: [...document.querySelectorAll('[data-render-error]')].map((e) => e.textContent),
        injected: document.querySelectorAll('#dashboard img, #dashboard script, #dashboard svg, #dashboard iframe').length,
        wide: document.documentElement.scrollWidth })""")
    if bad["render"] or bad["injected"] or bad["wide"] > 391:
        raise Fail("%s: %s" % (what, bad))


def serve_answers(page, path, answers):
    """Answers the data path with each body in turn for one poll, then lets real answers through."""
    queue = list(answers)

    def handler(route):
        if queue:
            body = queue.pop(0)
            route.fulfill(status=200, content_type="application/json", body=body if isinstance(body, str) else json.dumps(body))
        else:
            route.continue_()
    page.route("**" + path, handler)
    return queue


def answer(status, body, content_type="application/json"):
    """A route handler answering `status` and `body` (one parameter: Playwright then passes the route only)."""
    return lambda route: route.fulfill(status=status, content_type=content_type, body=body)


def wait_polls(page, n=1):
    page.wait_for_timeout(2100 * n + 300)


def node_checks(browser, args):
    context, page, errors = open_page(browser, args, "/_edge/dashboard")
    wait_polls(page)
    healthy(page, errors, "node first answers")
    for name, body in BAD_NODE_ANSWERS.items():
        queue = serve_answers(page, "/_edge/dashboard/data", [body])
        while queue:
            page.wait_for_timeout(200)
        page.wait_for_timeout(300)
        healthy(page, errors, "node answer '%s'" % name)
        page.unroute("**/_edge/dashboard/data")
        print("OK: node page survives answer: %s" % name)
    wait_polls(page, 2)
    rows = page.evaluate("() => document.querySelectorAll('#tenant-table tr[data-tenant]').length")
    if rows < 2:
        raise Fail("node page did not recover after the bad answers (%d rows)" % rows)
    print("OK: node page recovered: %d tenant rows" % rows)

    # Answers that are not a JSON object, or 500: stale banner, last data kept.
    for name, status, body in [("JSON array", 200, "[]"), ("not JSON", 200, "<html>"), ("500", 500, '{"error":"x","detail":"boom"}')]:
        page.route("**/_edge/dashboard/data", answer(status, body))
        page.wait_for_function("() => !document.getElementById('stale-banner').hidden", timeout=5000)
        banner = page.text_content("#stale-banner")
        kept = page.evaluate("() => document.querySelectorAll('#tenant-table tr[data-tenant]').length")
        if "Stale since" not in banner or kept < 2:
            raise Fail("%s: banner %r, rows kept %d" % (name, banner, kept))
        healthy(page, errors, name)
        page.unroute("**/_edge/dashboard/data")
        page.wait_for_function("() => document.getElementById('stale-banner').hidden", timeout=5000)
        print("OK: %s: banner %r, %d rows kept, banner gone after recovery" % (name, banner.strip(), kept))

    # Purge refusals and an answer without an id.
    for name, status, body, expect in [
            ("unknown tenant", 404, '{"error":"unknown_tenant","detail":"no tenant \'acme\' on this node"}', "no tenant"),
            ("forbidden", 403, '{"error":"forbidden","detail":"token is not allowed for this call\'s tenant"}', "not allowed"),
            ("no id", 200, '{"purged": 7}', "acknowledgements cannot be followed")]:
        page.route("**/_edge/purge", answer(status, body))
        page.select_option("#purge-tenant", value="acme")
        page.fill("#purge-value", HOSTILE)
        page.click("#purge-form button[type=submit]")
        page.wait_for_function("(t) => document.getElementById('purge-result').textContent.includes(t)", arg=expect, timeout=5000)
        if page.is_hidden("#dashboard"):
            raise Fail("purge %s sent the page to the login form" % name)
        healthy(page, errors, "purge " + name)
        page.unroute("**/_edge/purge")
        print("OK: purge %s shown: %s" % (name, page.text_content("#purge-result").strip()[:100]))

    # Token scopes: read-only hides the form; a tenant-scoped token offers only its tenants.
    def rewrite(token):
        def handler(route):
            data = route.fetch().json()
            data["token"] = token
            route.fulfill(status=200, content_type="application/json", body=json.dumps(data))
        return handler
    for scopes, tenants, expect in [(["read"], ["*"], None), (["read", "purge"], ["globex", "nope"], ["globex"])]:
        page.route("**/_edge/dashboard/data", rewrite({"scopes": scopes, "tenants": tenants}))
        wait_polls(page)
        offered = page.eval_on_selector("#purge-tenant", "(s) => [...s.options].map((o) => o.value)")
        visible = page.is_visible("#purge-form")
        if (expect is None and visible) or (expect is not None and (not visible or offered != expect)):
            raise Fail("token %s/%s: form visible %s, offered %s" % (scopes, tenants, visible, offered))
        page.unroute("**/_edge/dashboard/data")
        print("OK: token scopes %s tenants %s: purge form %s %s" % (scopes, tenants, "shown" if visible else "hidden", offered if visible else ""))

    # Reload keeps the session; 403 returns to the login form with the detail; logout empties the storage.
    page.reload()
    page.wait_for_function("() => document.getElementById('last-updated').textContent !== '–'", timeout=10000)
    print("OK: reload keeps the session (no login form)")
    page.route("**/_edge/dashboard/data", answer(403, '{"error":"forbidden","detail":"token lacks the \'read\' scope"}'))
    page.wait_for_selector("#login-form", state="visible", timeout=5000)
    detail = page.text_content("#login-error")
    stored = page.evaluate("() => sessionStorage.length")
    if "lacks the 'read' scope" not in detail or stored:
        raise Fail("403: login error %r, sessionStorage items %d" % (detail, stored))
    print("OK: 403 returns to the login form with: %s (sessionStorage emptied)" % detail)
    page.unroute("**/_edge/dashboard/data")
    page.fill("#token", args.token)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#dashboard", state="visible")
    page.click("#logout")
    page.wait_for_selector("#login-form", state="visible")
    if page.evaluate("() => sessionStorage.length + localStorage.length"):
        raise Fail("logout left something in the storage")
    healthy(page, errors, "logout")
    print("OK: logout empties sessionStorage and shows the login form")
    context.close()


def origin_checks(browser, args):
    context, page, errors = open_page(browser, args, "/v1/dashboard")
    healthy(page, errors, "origin first answer")
    for name, body in BAD_ORIGIN_ANSWERS.items():
        queue = serve_answers(page, "/v1/dashboard/data", [body])
        while queue:
            page.wait_for_timeout(200)
        page.wait_for_timeout(300)
        healthy(page, errors, "origin answer '%s'" % name)
        page.unroute("**/v1/dashboard/data")
        print("OK: origin page survives answer: %s" % name)
    page.route("**/v1/dashboard/data", answer(502, "bad gateway", "text/plain"))
    page.wait_for_function("() => !document.getElementById('stale-banner').hidden", timeout=5000)
    print("OK: origin stale banner: %s" % page.text_content("#stale-banner").strip())
    page.unroute("**/v1/dashboard/data")
    page.route("**/v1/dashboard/data", answer(401, '{"error":"unauthorized","detail":"a valid bearer token is required"}'))
    page.wait_for_selector("#login-form", state="visible", timeout=5000)
    print("OK: origin 401 returns to the login form with: %s" % page.text_content("#login-error"))
    healthy(page, errors, "origin 401")
    context.close()


if __name__ == "__main__":
    main()
