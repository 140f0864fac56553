#!/usr/bin/env python3
"""Browser check of the operator dashboards (headless Chromium through Playwright for Python).

  python3 Tests/browser/dashboard_check.py node --url http://127.0.0.1:PORT --token TOKEN \\
      --tenants acme,globex --purge-tenant acme --purge-key /some/path --expect-nodes node-a,node-b \\
      --screenshots DIR
  python3 Tests/browser/dashboard_check.py origin --url https://127.0.0.1:PORT --token TOKEN \\
      [--ca CAFILE] --expect-nodes node-a,node-b [--expect-publish] --screenshots DIR

Node mode opens GET /_edge/dashboard, origin mode GET /v1/dashboard. It first signs in with a wrong
token (the login form must come back with the server's `detail`), then with TOKEN, and checks: the
token never appears in a URL, a request or the console; every data request carries
`Authorization: Bearer TOKEN`; sessionStorage holds the token and localStorage does not; the page
fills in (node: a row per tenant with a numeric req/s, both charts of each tenant with >= 2 points;
origin: a row per expected node, a publish when --expect-publish); no hostile string from the data
became markup (no dialog, no <img>/<script>/<iframe> in the dashboard); no script error; no section
failed to render; the stale banner is hidden. Node mode then purges a key through the form and waits
for every expected node's acknowledgement. Finally it saves full-page screenshots at 1280x900 and
390x844 (MODE-1280.png, MODE-390.png) and checks the page does not scroll sideways at 390 px.

The node charts need traffic for each tenant during the check (at least three polls, ~6 s): a poll
interval without requests has no latency to draw.

Prints "OK: ..." lines and exits 0, or one line "FAIL: reason" and exits 1.
"""
import argparse
import os
import ssl
import sys
import urllib.error
import urllib.request

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:
    print("FAIL: Playwright for Python is not installed (python3 -m pip install playwright)")
    sys.exit(1)

CHROMIUM = "/usr/bin/chromium"
PAGES = {"node": "/_edge/dashboard", "origin": "/v1/dashboard"}
BAD_TOKEN = "dashboard-check-wrong-token"


class Fail(Exception):
    pass


def csv(value):
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["node", "origin"])
    ap.add_argument("--url", required=True, help="base URL of the listener, e.g. http://127.0.0.1:9090")
    ap.add_argument("--token", required=True)
    ap.add_argument("--tenants", default="", help="node: tenants that must have a row and charts")
    ap.add_argument("--purge-tenant", help="node: tenant to purge through the form")
    ap.add_argument("--purge-key", help="node: key to purge (kind 'key')")
    ap.add_argument("--expect-nodes", default="", help="nodes that must show (node: acknowledge the purge)")
    ap.add_argument("--expect-publish", action="store_true", help="origin: the publish list must not be empty")
    ap.add_argument("--ca", help="origin over HTTPS: CA file the server certificate must verify against")
    ap.add_argument("--screenshots", required=True, help="directory for the screenshots")
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the data (default 15)")
    ap.add_argument("--headed", action="store_true", help="show the browser (debugging)")
    args = ap.parse_args()
    args.url = args.url.rstrip("/")
    if args.mode == "node" and bool(args.purge_tenant) != bool(args.purge_key):
        ap.error("--purge-tenant and --purge-key go together")
    return args


def verify_tls(url, ca):
    """The browser context below ignores certificate errors, so the chain is verified here, with the CA."""
    context = ssl.create_default_context(cafile=ca)
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as resp:
            resp.read()
    except urllib.error.HTTPError:
        pass  # an HTTP status is fine here: TLS was verified; the page itself is checked in the browser
    except (ssl.SSLError, urllib.error.URLError, OSError) as e:
        raise Fail("TLS verification of %s against %s failed: %s" % (url, ca, getattr(e, "reason", e)))


# JS run in the page (strings from the page are compared in JS, never put into selectors).
NODE_STATUS_JS = """(tenants) => {
  const rows = [...document.querySelectorAll('#tenant-table tbody tr[data-tenant]')];
  const canvases = [...document.querySelectorAll('#charts [data-chart]')];
  return tenants.map((t) => {
    const row = rows.find((r) => r.getAttribute('data-tenant') === t);
    const rpsCell = row ? row.querySelector('td[data-col="rps"]') : null;
    const points = (kind) => {
      const c = canvases.find((x) => x.getAttribute('data-tenant') === t && x.getAttribute('data-chart') === kind);
      return c ? Number(c.getAttribute('data-points') || 0) : -1;
    };
    return { tenant: t, row: !!row, rps: rpsCell ? rpsCell.getAttribute('data-value') : null,
             rpsText: rpsCell ? rpsCell.textContent : null, rate: points('rate'), latency: points('latency') };
  });
}"""

NODE_READY_JS = """(tenants) => (%s)(tenants).every((s) =>
  s.row && s.rps !== null && s.rps !== '' && Number.isFinite(Number(s.rps)) && s.rate >= 2 && s.latency >= 2)""" % NODE_STATUS_JS

ORIGIN_STATUS_JS = """(nodes) => {
  const rows = [...document.querySelectorAll('#regions table[data-region] tbody tr[data-node]')];
  return { found: nodes.filter((n) => rows.some((r) => r.getAttribute('data-node') === n)),
           regions: [...document.querySelectorAll('#regions table[data-region]')].map((t) => t.getAttribute('data-region')),
           publishes: document.querySelectorAll('#publish-list li[data-version]').length };
}"""

PURGE_STATUS_JS = """(nodes) => {
  const items = [...document.querySelectorAll('#purge-result li[data-node]')];
  const err = document.getElementById('purge-error');
  return { acked: items.map((li) => ({ node: li.getAttribute('data-node'), text: li.textContent })),
           error: err ? err.textContent : null,
           status: (document.getElementById('purge-result') || {}).textContent || '' };
}"""


def page_state(page):
    """What a failure message needs: stale banner, login error, render errors."""
    return page.evaluate("""() => {
      const vis = (id) => { const e = document.getElementById(id); return e && !e.hidden ? e.textContent.trim() : null; };
      return { stale: vis('stale-banner'), login: vis('login-error'), dashboard: vis('dashboard') !== null,
               renderErrors: [...document.querySelectorAll('[data-render-error]')].map((e) => e.textContent) };
    }""")


def describe(state):
    parts = []
    if not state["dashboard"]:
        parts.append("the dashboard is not shown")
    if state["login"]:
        parts.append("login error: %s" % state["login"])
    if state["stale"]:
        parts.append("banner: %s" % state["stale"])
    if state["renderErrors"]:
        parts.append("render errors: %s" % "; ".join(state["renderErrors"]))
    return ", ".join(parts)


def login(page, token, expect_success, timeout=10.0):
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    if expect_success:
        # The first good answer fills in "updated"; a refused token sends the page back to the login form.
        try:
            page.wait_for_function("""() => { const e = document.getElementById('login-error');
                return (e && !e.hidden) || document.getElementById('last-updated').textContent.trim() !== '–'; }""",
                                   timeout=timeout * 1000)
        except PlaywrightTimeout:
            raise Fail("no data within %gs of signing in (%s)" % (timeout, describe(page_state(page))))
        state = page_state(page)
        if state["login"] or not state["dashboard"]:
            raise Fail("the token was refused: %s" % (state["login"] or "the dashboard is not shown"))
        return None
    # A wrong token: the first poll gets 401/403 and the form comes back with the server's detail.
    try:
        page.wait_for_function("""() => { const e = document.getElementById('login-error');
            return e && !e.hidden && e.textContent.trim() !== '' && !document.getElementById('login-form').closest('[hidden]'); }""",
                               timeout=8000)
    except PlaywrightTimeout:
        raise Fail("a wrong token did not bring back the login form with an error (%s)" % describe(page_state(page)))
    return page.text_content("#login-error").strip()


def check_node(page, args):
    tenants = csv(args.tenants)
    if not tenants:
        raise Fail("node mode needs --tenants")
    try:
        page.wait_for_function(NODE_READY_JS, arg=tenants, timeout=args.timeout * 1000, polling=250)
    except PlaywrightTimeout:
        status = page.evaluate(NODE_STATUS_JS, tenants)
        missing = ["%s(row=%s rps=%r chart points rate=%d latency=%d)" % (s["tenant"], s["row"], s["rps"], s["rate"],
                                                                         s["latency"]) for s in status]
        raise Fail("after %gs the tenant table/charts are not filled: %s %s" % (
            args.timeout, "; ".join(missing), describe(page_state(page))))
    for s in page.evaluate(NODE_STATUS_JS, tenants):
        print("OK: tenant row %s: req/s %s (%s), chart points rate=%d latency=%d" % (
            s["tenant"], s["rps"], s["rpsText"], s["rate"], s["latency"]))
    rows_js = "() => [...document.querySelectorAll('#node-table tr[data-node]')].map((r) => r.getAttribute('data-node'))"
    expected = csv(args.expect_nodes)
    try:
        page.wait_for_function("(nodes) => { const rows = (%s)(); return nodes.every((n) => rows.includes(n)); }" % rows_js,
                               arg=expected, timeout=args.timeout * 1000, polling=250)
    except PlaywrightTimeout:
        rows = page.evaluate(rows_js)
        raise Fail("nodes %s have no row in #node-table (rows: %s)" % (
            ", ".join(n for n in expected if n not in rows), ", ".join(rows) or "none"))
    print("OK: node table rows: %s" % ", ".join(page.evaluate(rows_js)))
    events = page.evaluate("() => document.querySelectorAll('#event-timeline li[data-kind]').length")
    print("OK: security events listed: %d" % events)


def purge(page, args):
    expected = csv(args.expect_nodes)
    if not page.is_visible("#purge-form"):
        raise Fail("the purge form is not shown (does the token have the 'purge' scope?)")
    options = page.eval_on_selector("#purge-tenant", "(s) => [...s.options].map((o) => o.value)")
    if args.purge_tenant not in options:
        raise Fail("tenant %s is not offered by the purge form (offered: %s)" % (args.purge_tenant, ", ".join(options)))
    page.select_option("#purge-tenant", value=args.purge_tenant)
    page.select_option("#purge-kind", value="key")
    page.fill("#purge-value", args.purge_key)
    page.click("#purge-form button[type=submit]")
    try:
        page.wait_for_function("""(nodes) => {
            const items = [...document.querySelectorAll('#purge-result li[data-node]')].map((li) => li.getAttribute('data-node'));
            return document.getElementById('purge-error') || (items.length > 0 && nodes.every((n) => items.includes(n)));
        }""", arg=expected, timeout=20000, polling=200)
    except PlaywrightTimeout:
        pass
    result = page.evaluate(PURGE_STATUS_JS, expected)
    if result["error"]:
        raise Fail("the purge failed: %s" % result["error"].strip())
    acked = {a["node"]: a["text"] for a in result["acked"]}
    missing = [n for n in expected if n not in acked]
    if not acked or missing:
        raise Fail("purge of %s %s: no acknowledgement from %s (result: %s)" % (
            args.purge_tenant, args.purge_key, ", ".join(missing) or "any node", result["status"].strip()))
    print("OK: purge of %s key %s acknowledged by: %s" % (
        args.purge_tenant, args.purge_key, "; ".join(acked[n] for n in sorted(acked))))


def check_origin(page, args):
    expected = csv(args.expect_nodes)
    try:
        page.wait_for_function("""(a) => { const s = (%s)(a.nodes);
            return s.found.length === a.nodes.length && s.regions.length > 0 && (!a.publish || s.publishes > 0); }""" % ORIGIN_STATUS_JS,
                               arg={"nodes": expected, "publish": args.expect_publish},
                               timeout=args.timeout * 1000, polling=250)
    except PlaywrightTimeout:
        s = page.evaluate(ORIGIN_STATUS_JS, expected)
        raise Fail("after %gs: nodes shown %s of %s, regions %s, publishes %d %s" % (
            args.timeout, s["found"], expected, s["regions"], s["publishes"], describe(page_state(page))))
    s = page.evaluate(ORIGIN_STATUS_JS, expected)
    print("OK: regions: %s; expected nodes shown: %s" % (", ".join(s["regions"]), ", ".join(s["found"]) or "(none asked)"))
    rows = page.evaluate("""() => [...document.querySelectorAll('#regions tr[data-node]')].map((r) =>
        r.getAttribute('data-node') + ' cursor=' + (r.querySelector('[data-col="cursor"]') || {}).textContent +
        ' push=' + ((r.querySelector('[data-col="push"]') || {}).textContent || ''))""")
    print("OK: node rows: %s" % "; ".join(rows))
    print("OK: publishes listed: %d, erasures listed: %d" % (
        s["publishes"], page.evaluate("() => document.querySelectorAll('#erasure-list li[data-tenant]').length")))


def check_common(page, args, seen):
    state = page_state(page)
    if state["stale"]:
        raise Fail("the stale banner is shown: %s" % state["stale"])
    if state["renderErrors"]:
        raise Fail("a section failed to render: %s" % "; ".join(state["renderErrors"]))
    storage = page.evaluate("""() => ({
        session: Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)),
        local: Object.keys(localStorage).map((k) => localStorage.getItem(k)), cookie: document.cookie })""")
    if args.token not in storage["session"]:
        raise Fail("sessionStorage does not hold the token")
    if any(args.token in (v or "") for v in storage["local"]) or args.token in storage["cookie"]:
        raise Fail("the token is in localStorage or a cookie")
    print("OK: token in sessionStorage only (localStorage has %d item(s), none with the token)" % len(storage["local"]))
    injected = page.evaluate("() => document.querySelectorAll('#dashboard img, #dashboard script, #dashboard iframe, #dashboard object').length")
    if injected or seen["dialogs"]:
        raise Fail("data became markup: %d injected element(s), dialogs %s" % (injected, seen["dialogs"]))
    if seen["auth_ok"] == 0:
        raise Fail("no data request carried the bearer token")
    print("OK: %d data request(s) with the bearer header; no markup injected from the data" % seen["auth_ok"])


def screenshots(page, args):
    os.makedirs(args.screenshots, exist_ok=True)
    wide = os.path.join(args.screenshots, "%s-1280.png" % args.mode)
    page.screenshot(path=wide, full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(2500)  # a resize redraw and one more poll at the new width
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > 391:
        wider = page.evaluate("""() => [...document.querySelectorAll('body *')].filter((e) =>
            e.getBoundingClientRect().right > 391 && !e.closest('.table-wrap')).slice(0, 3).map((e) =>
            e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + String(e.className).split(' ')[0] : ''))""")
        raise Fail("at 390 px the page scrolls sideways: scrollWidth %d (wide: %s)" % (width, ", ".join(wider)))
    if args.mode == "node":
        narrow = page.evaluate("""() => [...document.querySelectorAll('#charts canvas')].map((c) =>
            [c.getBoundingClientRect().width, Number(c.getAttribute('data-points'))])""")
        if any(w > 390 or w < 100 for w, _ in narrow):
            raise Fail("charts did not resize to the narrow viewport: widths %s" % [w for w, _ in narrow])
    small = os.path.join(args.screenshots, "%s-390.png" % args.mode)
    page.screenshot(path=small, full_page=True)
    print("OK: screenshots %s (%d bytes), %s (%d bytes); scrollWidth at 390 px: %d" % (
        wide, os.path.getsize(wide), small, os.path.getsize(small), width))


def run(args):
    page_url = args.url + PAGES[args.mode]
    https = args.url.startswith("https:")
    if https and args.ca:
        verify_tls(page_url, args.ca)
        print("OK: TLS certificate of %s verifies against %s" % (args.url, args.ca))
    seen = {"dialogs": [], "errors": [], "console": [], "leaks": [], "auth_ok": 0, "auth_bad": 0}

    def on_request(req):
        if args.token in req.url:
            seen["leaks"].append(req.url)
        if req.url.endswith("/dashboard/data"):
            auth = req.headers.get("authorization", "")
            if auth == "Bearer " + args.token:
                seen["auth_ok"] += 1
            elif auth != "Bearer " + BAD_TOKEN:
                seen["auth_bad"] += 1

    def on_dialog(dialog):
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=not args.headed)
        try:
            # Certificate errors are ignored only in this context and only for an HTTPS origin: its CA is
            # made by the test run and Chromium has no per-context trust store. With --ca the chain was
            # verified above with that CA (verify_tls), so the browser talks to the same verified server.
            context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=https)
            page = context.new_page()
            page.on("request", on_request)
            page.on("dialog", on_dialog)
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("console", lambda m: seen["console"].append(m.text))
            resp = page.goto(page_url, wait_until="load", timeout=15000)
            if resp is None or resp.status != 200:
                raise Fail("GET %s answered %s" % (page_url, resp.status if resp else "nothing"))
            page.wait_for_selector("#login-form", state="visible", timeout=5000)
            detail = login(page, BAD_TOKEN, expect_success=False)
            print("OK: a wrong token returns to the login form with: %s" % detail)
            login(page, args.token, expect_success=True, timeout=args.timeout)
            if args.token in page.url:
                raise Fail("the token is in the page URL")
            if args.mode == "node":
                check_node(page, args)
            else:
                check_origin(page, args)
            check_common(page, args, seen)
            if args.mode == "node" and args.purge_tenant:
                purge(page, args)
            screenshots(page, args)
            if args.token in page.url or seen["leaks"]:
                raise Fail("the token appeared in a URL: %s" % (seen["leaks"][:1] or page.url))
            if seen["auth_bad"]:
                raise Fail("%d data request(s) without the right Authorization header" % seen["auth_bad"])
            if any(args.token in m for m in seen["console"]):
                raise Fail("the token was written to the console")
            if seen["errors"]:
                raise Fail("script error in the page: %s" % seen["errors"][0])
            print("OK: %s dashboard at %s checked (console messages: %d, none with the token)" % (
                args.mode, page_url, len(seen["console"])))
        finally:
            browser.close()


def main():
    args = parse_args()
    try:
        run(args)
    except Fail as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    except PlaywrightTimeout as e:
        print("FAIL: timed out: %s" % str(e).splitlines()[0])
        sys.exit(1)
    except PlaywrightError as e:
        print("FAIL: browser error: %s" % str(e).splitlines()[0])
        sys.exit(1)


if __name__ == "__main__":
    main()
