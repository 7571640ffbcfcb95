// Opens a protected page in headless Chromium, signs in on the login page it is sent to,
// and reports what the browser saw at each step as one JSON line on stdout.
//
//   node login-roundtrip.mjs <protected-url> <username> <password>
//
// CHROMIUM overrides the browser (default /usr/bin/chromium, Debian's package).
import { chromium } from 'playwright-core';

const [url, username, password] = process.argv.slice(2);
if (!url || !username || !password) {
  console.error('usage: node login-roundtrip.mjs <protected-url> <username> <password>');
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
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
