// Browser sign-in through an OpenID provider, in headless Chromium: opens a protected page,
// signs in on the provider's login form, is back on the page; a second tab shares the
// session; the page is reloaded until the session is refreshed (its access token must
// expire within the deadline); logout ends it at the provider and the page asks for a
// sign-in again, also with the cookies of before the logout put back. Reports
// what the browser saw as one JSON line on stdout (the upstream's view: echo-upstream's
// header table; the protocol of each page load of the site, `h2` or `http/1.1`; the
// Set-Cookie lines of the answer that set the session, their sizes).
//
// An https URL is Envoy's TLS listener with a self-signed certificate (not checked), where
// the filter's cookies are `__Host-` prefixed: names are reported as set, and found here
// with the prefix or without.
//
//   node oidc-roundtrip.mjs <protected-url> <login> [--logout PATH] [--signed-out PATH]
//                           [--no-expiry]
//
// --logout is the filter's logout_path (default /logout), --signed-out the path of the
// post-logout page (default /bye). --no-expiry: the session's access token does not expire
// during the run (a configuration with clock skew), so the refresh and the replay of the
// cookies of before the logout are left out.
//
// CHROMIUM overrides the browser (default /usr/bin/chromium, Debian's package).
import { chromium } from 'playwright-core';

const [url, login, ...options] = process.argv.slice(2);
const option = (name, fallback) => {
  const at = options.indexOf(name);
  return at >= 0 ? options[at + 1] : fallback;
};
const logoutPath = option('--logout', '/logout');
const signedOutPath = option('--signed-out', '/bye');
const expiry = !options.includes('--no-expiry');
if (!url || !login || !logoutPath || !signedOutPath) {
  console.error('usage: node oidc-roundtrip.mjs <protected-url> <login> [--logout PATH] [--signed-out PATH] [--no-expiry]');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ...(url.startsWith('https:') ? ['--ignore-certificate-errors'] : []),
  ],
});

/** The headers echo-upstream shows on its page, as [name, value] pairs. */
async function upstream(page) {
  const rows = await page.locator('table tr').evaluateAll((trs) => trs.map((tr) => {
    const cells = tr.querySelectorAll('td');
    return [cells[0]?.textContent ?? '', cells[1]?.textContent ?? ''];
  }));
  return { user: await page.locator('#user').textContent(), headers: rows };
}

/** A cookie's name without the `__Host-` prefix of a secure origin. */
const bare = (name) => name.replace(/^__Host-/, '');

const cookieView = (cookies) => cookies.map((c) => ({
  name: c.name, path: c.path, httpOnly: c.httpOnly, sameSite: c.sameSite, secure: c.secure,
}));

const report = { protocols: [] };
const DEADLINE_MS = 30000;

/** Polls `check` (every 250 ms) until it holds or the deadline passes. */
async function until(check) {
  const end = Date.now() + DEADLINE_MS;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}
/** Records the protocol the page's current document came over (Navigation Timing). */
async function protocolOf(step, page) {
  const protocol = await page.evaluate(
    () => performance.getEntriesByType('navigation')[0]?.nextHopProtocol ?? null,
  );
  report.protocols.push({ step, url: page.url(), protocol });
}
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  // The answer that sets the session (the callback's): its Set-Cookie lines, as sent.
  const sessionSet = new Promise((resolve) => {
    page.on('response', async (response) => {
      const lines = (await response.headersArray().catch(() => []))
        .filter((h) => h.name.toLowerCase() === 'set-cookie')
        .map((h) => h.value);
      if (lines.some((line) => bare(line).startsWith('tollgate-session='))) {
        resolve({ url: new URL(response.url()).pathname, lines });
      }
    });
    setTimeout(() => resolve({ url: null, lines: [] }), DEADLINE_MS).unref();
  });

  await page.goto(url);
  report.login_url = page.url();
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'any-password');
  await Promise.all([page.waitForURL(url), page.click('button[type=submit]')]);
  report.back_at = page.url();
  report.upstream = await upstream(page);
  await protocolOf('back_at', page);
  const set = await sessionSet;
  report.session_set_at = set.url;
  report.session_set_cookies = set.lines.map((line) => ({
    name: line.split('=', 1)[0],
    bytes: Buffer.byteLength(line),
    name_value_bytes: Buffer.byteLength(line.split(';', 1)[0]),
  }));

  const second = await context.newPage();
  await second.goto(url);
  report.second_tab_url = second.url();
  report.second_tab = await upstream(second);
  await protocolOf('second_tab', second);
  await second.close();

  const cookies = await context.cookies();
  report.cookies = cookieView(cookies.filter((c) => bare(c.name).startsWith('tollgate-')));
  const session = async () => (await context.cookies()).find((c) => bare(c.name) === 'tollgate-session')?.value;
  const first = await session();
  if (expiry) {
    // Four requests at once, again and again, until the session is refreshed: those sent
    // once the access token expired carry the same old cookies, and one refresh at the
    // provider must serve them all (its token requests are counted around the step).
    const stats = async () => {
      const control = new URL('/control/stats', report.login_url);
      return (await (await fetch(control)).json()).token_requests;
    };
    const before = await stats();
    report.parallel_statuses = [];
    report.parallel_refreshed = await until(async () => {
      const statuses = await page.evaluate(async (target) => {
        const loads = [0, 1, 2, 3].map(() => fetch(target, { credentials: 'same-origin' }));
        return (await Promise.all(loads)).map((answer) => answer.status);
      }, url);
      report.parallel_statuses.push(...statuses);
      return (await session()) !== first;
    });
    report.parallel_refreshes = (await stats()) - before;
    report.refreshed = await until(async () => {
      await page.reload();
      return page.url() === url && (await session()) !== first;
    });
    report.after_refresh = await upstream(page);
    await protocolOf('after_refresh', page);
  }
  const before = await context.cookies();

  await page.goto(new URL(logoutPath, url).toString());
  report.logout_url = page.url();
  // The provider asks whether to end its session too.
  const yes = page.locator('button[name=logout][value=yes]');
  if (await yes.count()) {
    await Promise.all([
      page.waitForURL((u) => u.pathname === signedOutPath || u.pathname.startsWith(signedOutPath)),
      yes.click(),
    ]);
  }
  report.after_logout_url = page.url();
  await protocolOf('after_logout', page);
  report.cookies_after_logout = cookieView(await context.cookies());

  await page.goto(url);
  report.revisit_url = page.url();

  if (expiry) await until(async () => {
    await context.clearCookies();
    await context.addCookies(before);
    await page.goto(url);
    report.old_cookies_url = page.url();
    return page.url().includes('/interaction/');
  });
} catch (err) {
  report.error = String(err);
  console.log(JSON.stringify(report));
  await browser.close();
  process.exit(1);
}
console.log(JSON.stringify(report));
await browser.close();
