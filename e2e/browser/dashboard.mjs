// Drives the dashboard in Debian's chromium (headless, through playwright-core) against a
// running product, and checks what the pages show against the REST API itself.
//
// Started by e2e/tests/it/browser.rs, which brings the product up and passes, in the environment:
//   BASE_URL              the API (and dashboard) origin, e.g. http://127.0.0.1:41234
//   DASHBOARD_USERNAME    an admin
//   DASHBOARD_PASSWORD    its password
//   READER_USERNAME       a user without the admin role
//   READER_PASSWORD       its password
//   EXPECTED_EXPIRED      how many expired items the simulated tenant holds (cloudsim's truth)
//   SCREENSHOT_DIR        where to write the screenshots
//   CHROMIUM              the browser (default /usr/bin/chromium)
// Exits non-zero, with the failed check on standard error, when anything is off.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('BASE_URL');
const admin = { username: env('DASHBOARD_USERNAME'), password: env('DASHBOARD_PASSWORD') };
const reader = { username: env('READER_USERNAME'), password: env('READER_PASSWORD') };
const expectedExpired = Number(env('EXPECTED_EXPIRED'));
const shots = env('SCREENSHOT_DIR');
mkdirSync(shots, { recursive: true });

const step = (text) => console.log(`browser: ${text}`);

// The API as a plain client sees it (its own bearer session), to compare the pages with.
async function bearer(user) {
  const response = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(user),
  });
  assert.equal(response.status, 200, 'API login');
  return (await response.json()).access_token;
}
const token = await bearer(admin);
async function api(path) {
  const response = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, `GET ${path}`);
  return response.json();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root in a container has no user namespaces for the sandbox; the test trusts its own pages.
  args: ['--no-sandbox'],
});
const problems = [];
function watch(page) {
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The 401 of the first "who am I" before logging in is expected; anything else (a CSP or
    // Trusted Types violation, a script error) is a failure.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
}
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}
async function noHorizontalScroll(page, what) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: window.innerWidth,
  }));
  assert.ok(scroll <= width, `${what}: the page is ${scroll}px wide in a ${width}px viewport`);
}
const number = async (locator) => Number((await locator.textContent()).trim());
// A link of the main menu, by its exact name.
const nav = (page, name) => page.locator('#nav').getByRole('link', { name, exact: true });

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  watch(page);

  step('an anonymous visit lands on the login form');
  await page.goto(`${base}/`);
  await page.waitForURL(/\/ui\/login/);
  await shot(page, 'login');

  step('focus starts on the page heading; Tab reaches the form, with a visible focus ring');
  await page.getByRole('heading', { name: 'Log in to CertifyClouds' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => ({
    name: document.activeElement.name,
    outline: getComputedStyle(document.activeElement).outlineStyle,
  }));
  assert.equal(focused.name, 'username');
  assert.notEqual(focused.outline, 'none', 'focus must be visible');
  assert.equal(await page.locator('a.skip').getAttribute('href'), '#main');

  step('a wrong password is refused on the form');
  await page.getByLabel('Username').fill(admin.username);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'wrong' }).waitFor();

  step('logging in through the form');
  await page.getByLabel('Password').fill(admin.password);
  await page.getByLabel('Password').press('Enter');
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'cc_session');
  assert.ok(session, 'the login sets the session cookie');
  assert.equal(session.httpOnly, true, 'the session cookie is HttpOnly');
  assert.equal(session.sameSite, 'Strict');
  assert.equal(
    await page.evaluate(() => document.cookie.includes('cc_session')),
    false,
    'the page script cannot read the session',
  );

  step('starting a scan from the scans page');
  await nav(page, 'Scans').click();
  await page.getByRole('heading', { name: 'Scans', level: 1 }).waitFor();
  await page.getByLabel('Mode').selectOption('full');
  await page.getByRole('button', { name: 'Start scan' }).click();
  await page.waitForURL(/\/ui\/scans\/[0-9a-f-]{36}$/);
  const scanId = page.url().split('/').pop();
  step(`waiting for scan ${scanId} while the page polls its status`);
  const done = page.locator(
    '[data-scan-status]:not([data-scan-status="queued"]):not([data-scan-status="running"])',
  );
  await done.waitFor({ timeout: 120_000 });
  const shownStatus = await done.getAttribute('data-scan-status');
  const status = await api(`/api/assets/discovery/scan/${scanId}/status`);
  assert.equal(shownStatus, status.status);
  assert.equal(status.status, 'completed', JSON.stringify(status));
  assert.equal(status.requestedBy, admin.username, 'the scan was requested by the browser session');
  await page.getByRole('heading', { name: 'Results' }).waitFor();
  const results = await api(`/api/assets/discovery/scan/${scanId}/results`);
  assert.equal(await page.locator('section[aria-labelledby="found"] tbody tr').count(), results.vaults.length);
  await shot(page, 'scan');

  step('the overview shows what the API counts');
  await nav(page, 'Overview').click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  for (const s of ['expired', 'critical', 'warning', 'healthy']) {
    const { total } = await api(`/api/assets/discovery/assets?status=${s}&limit=1`);
    assert.equal(await number(page.locator(`[data-status-count="${s}"]`)), total, `overview ${s}`);
  }
  const lastScan = await page.getByTestId('last-scan').textContent();
  assert.ok(lastScan.includes('completed'), lastScan);
  await shot(page, 'overview');

  step('filtering assets by status=expired');
  await nav(page, 'Assets').click();
  await page.getByRole('heading', { name: 'Assets', level: 1 }).waitFor();
  await page.getByLabel('Status', { exact: true }).selectOption('expired');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/status=expired/);
  await page.getByRole('heading', { name: 'Assets', level: 1 }).waitFor();
  const expired = await api('/api/assets/discovery/assets?status=expired&limit=50');
  assert.ok(expired.total > 0, 'the demo tenant holds expired items');
  assert.equal(expired.total, expectedExpired, 'the API counts what the tenant holds');
  assert.equal(await number(page.getByTestId('asset-total')), expired.total);
  const rows = page.locator('table.data tbody tr');
  assert.equal(await rows.count(), expired.items.length);
  const badges = await page.locator('table.data tbody .badge').allTextContents();
  assert.ok(badges.every((b) => b === 'expired'), `every row is expired: ${badges}`);
  const names = await page.locator('table.data tbody td[data-label="Name"]').allTextContents();
  assert.deepEqual(names, expired.items.map((a) => a.name), 'the same assets, in the same order');
  const range = await page.getByTestId('range').textContent();
  assert.equal(range, `1–${expired.items.length} of ${expired.total}`);
  await shot(page, 'assets-expired');

  step('a certificate detail page shows its certificate fields');
  await page.getByLabel('Status', { exact: true }).selectOption('');
  await page.getByLabel('Type', { exact: true }).selectOption('certificate');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/type=certificate/);
  const certs = await api('/api/assets/discovery/assets?type=certificate&limit=50');
  assert.ok(certs.total > 0, 'the demo tenant holds certificates');
  await page.getByRole('link', { name: certs.items[0].name, exact: true }).first().click();
  await page.getByRole('heading', { name: 'Certificate' }).waitFor();
  const cert = await api(`/api/assets/discovery/assets/${certs.items[0].id}`);
  const fact = (term) => page.locator(`dt:text-is("${term}") + dd`);
  assert.equal(await fact('Thumbprint (SHA-1)').textContent(), cert.thumbprint ?? '—');
  assert.equal(await fact('Subject').textContent(), cert.subject ?? '—');
  assert.equal(await fact('Issuer').textContent(), cert.issuer ?? '—');
  await shot(page, 'asset-certificate');

  step('vaults, compliance, audit and settings pages');
  await nav(page, 'Vaults').click();
  await page.getByRole('heading', { name: 'Vaults', level: 1 }).waitFor();
  const vaults = await api('/api/assets/discovery/vaults?limit=50');
  assert.equal(await page.locator('table.data tbody tr').count(), vaults.items.length);
  await shot(page, 'vaults');

  await nav(page, 'Compliance').click();
  await page.getByRole('heading', { name: 'Compliance', level: 1 }).waitFor();
  const frameworks = await api('/compliance/frameworks');
  const fwRows = page.locator('section[aria-labelledby="fw"] tbody tr');
  assert.equal(await fwRows.count(), frameworks.items.length);
  await shot(page, 'compliance');
  await page.getByRole('link', { name: frameworks.items[0].name }).click();
  await page.getByRole('heading', { name: frameworks.items[0].name, level: 1 }).waitFor();
  assert.ok((await page.locator('.remedy').count()) > 0, 'controls list their remedies');

  await nav(page, 'Audit').click();
  await page.getByRole('heading', { name: 'Audit', level: 1 }).waitFor();
  await page.getByLabel('Event type').fill('discovery.scan.requested');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/event_type=discovery.scan.requested/);
  await page.getByRole('heading', { name: 'Audit', level: 1 }).waitFor();
  const audit = await api('/audit/entries?event_type=discovery.scan.requested');
  assert.equal(await page.locator('table.data tbody tr').count(), audit.items.length);
  assert.ok(audit.items.some((e) => e.target === scanId), 'the browser scan is audited');
  const csv = await page.getByRole('link', { name: 'CSV', exact: true }).getAttribute('href');
  assert.equal(csv, '/audit/export?event_type=discovery.scan.requested&format=csv');
  await shot(page, 'audit');

  await nav(page, 'Settings').click();
  await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
  await page.getByRole('heading', { name: 'Compliance policy' }).waitFor();
  await shot(page, 'settings');

  step('a phone-sized screen: no horizontal scroll, the menu folds behind a button');
  await page.setViewportSize({ width: 375, height: 740 });
  for (const path of ['/ui/', '/ui/assets?status=expired', '/ui/vaults', '/ui/scans', '/ui/compliance', '/ui/audit', '/ui/settings']) {
    await page.goto(base + path);
    await page.locator('main h1').waitFor();
    await page.waitForFunction(() => !document.getElementById('main').hasAttribute('aria-busy'));
    await noHorizontalScroll(page, path);
  }
  await page.goto(`${base}/ui/assets?status=expired`);
  await page.getByRole('heading', { name: 'Assets', level: 1 }).waitFor();
  await shot(page, 'phone-assets');
  const menu = page.getByRole('button', { name: 'Menu' });
  assert.equal(await nav(page, 'Vaults').isVisible(), false);
  await menu.click();
  assert.equal(await menu.getAttribute('aria-expanded'), 'true');
  await nav(page, 'Vaults').click();
  await page.getByRole('heading', { name: 'Vaults', level: 1 }).waitFor();
  await shot(page, 'phone-vaults');
  await page.setViewportSize({ width: 1280, height: 900 });

  step('logging out clears the cookies and revokes the session');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/ui\/login/);
  const after = await context.cookies();
  assert.equal(after.find((c) => c.name === 'cc_session'), undefined, 'session cookie cleared');
  const replay = await fetch(`${base}/auth/me`, { headers: { cookie: `cc_session=${session.value}` } });
  assert.equal(replay.status, 401, 'the old session cookie is revoked');
  await page.goto(`${base}/ui/assets`);
  await page.waitForURL(/\/ui\/login\?next=/);
  await context.close();

  step('a user without the admin role sees no settings');
  const readerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const readerPage = await readerContext.newPage();
  watch(readerPage);
  await readerPage.goto(`${base}/ui/login`);
  await readerPage.getByLabel('Username').fill(reader.username);
  await readerPage.getByLabel('Password').fill(reader.password);
  await readerPage.getByRole('button', { name: 'Log in' }).click();
  await readerPage.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  assert.equal(await nav(readerPage, 'Settings').isVisible(), false);
  await readerPage.goto(`${base}/ui/settings`);
  await readerPage.getByRole('alert').filter({ hasText: 'administrators' }).waitFor();
  await readerContext.close();

  assert.deepEqual(problems, [], 'no script error or policy violation in the pages');
  step('all checks passed');
} finally {
  await browser.close();
}
