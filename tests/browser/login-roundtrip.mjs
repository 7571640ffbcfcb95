// Opens a protected page in headless Chromium, signs in on the login page it is sent to,
// and reports what the browser saw at each step as one JSON line on stdout.
//
//   node login-roundtrip.mjs <protected-url> <username> <password> [logout]
//
// With `logout`, it then signs out through the page (a form POST to /logout), puts the old
// access-token cookie back, and reports where the protected page sends the browser.
//
// CHROMIUM overrides the browser (default /usr/bin/chromium, Debian's package).
import { chromium } from 'playwright-core';

const [url, username, password] = process.argv.slice(2);
if (!url || !username || !password) {
  console.error('usage: node login-roundtrip.mjs <protected-url> <username> <password> [logout]');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const report = { steps: [] };
try {
  const page = await browser.newPage();
  const started = Date.now();
  const seen = async (step) => report.steps.push({
    ms: Date.now() - started,
    step,
    url: page.url(),
    title: await page.title(),
    // page.$ does not wait for the element: most pages have no error.
    error: await (await page.$('#error'))?.textContent() ?? null,
  });

  await page.goto(url);
  await seen('opened');

  await page.fill('#username', username);
  await page.fill('#password', 'wrong-password');
  await Promise.all([page.waitForNavigation(), page.click('#submit')]);
  await seen('wrong password');

  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation(), page.click('#submit')]);
  await seen('signed in');
  report.user = await page.locator('#user').textContent();
  report.type = await page.locator('#type').textContent();

  await page.reload();
  await seen('reloaded');
  report.user_after_reload = await page.locator('#user').textContent();

  report.cookies = (await page.context().cookies()).map((c) => ({
    name: c.name, path: c.path, httpOnly: c.httpOnly, sameSite: c.sameSite, secure: c.secure,
  }));

  if (process.argv[5] === 'logout') {
    const old = (await page.context().cookies()).find((c) => c.name === 'access_token');
    await Promise.all([
      page.waitForNavigation(),
      page.evaluate(() => {
        const form = document.createElement('form');
        form.method = 'POST';
        form.action = '/logout';
        document.body.appendChild(form);
        form.submit();
      }),
    ]);
    await seen('signed out');
    report.cookies_after_logout = (await page.context().cookies()).map((c) => c.name);
    // The old cookie, kept by someone: once the revocation reaches the filter (a poll), the
    // protected page sends the browser to sign in again.
    await page.context().addCookies([{ ...old }]);
    const deadline = Date.now() + 5000;
    do {
      await page.goto(url);
    } while (!page.url().includes('/login') && Date.now() < deadline
      && await new Promise((r) => setTimeout(r, 200)) === undefined);
    await seen('old cookie');
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
