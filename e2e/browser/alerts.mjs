// Drives the dashboard's alerts pages in Debian's chromium (headless, through playwright-core)
// against a running product with a mail catcher behind its SMTP settings: creates an email rule
// through the form, edits it, tests it (once accepted, once refused by the SMTP server), reads
// the messages back from the mail catcher's JSON API, filters the history, and deletes the rule.
// What the pages show is checked against the REST API itself.
//
// Started by e2e/tests/it/browser.rs, which brings the product up and passes, in the environment:
//   BASE_URL              the API (and dashboard) origin
//   DASHBOARD_USERNAME    a user allowed to manage alert rules
//   DASHBOARD_PASSWORD    its password
//   MAILCATCHER_URL       the mail catcher's HTTP origin (its /api/messages and /api/faults)
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
const user = { username: env('DASHBOARD_USERNAME'), password: env('DASHBOARD_PASSWORD') };
const mailcatcher = env('MAILCATCHER_URL');
const shots = env('SCREENSHOT_DIR');
mkdirSync(shots, { recursive: true });

const step = (text) => console.log(`browser: ${text}`);

async function bearer() {
  const response = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(user),
  });
  assert.equal(response.status, 200, 'API login');
  return (await response.json()).access_token;
}
const token = await bearer();
async function api(path) {
  const response = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, `GET ${path}`);
  return response.json();
}

async function messages() {
  const response = await fetch(`${mailcatcher}/api/messages`);
  assert.equal(response.status, 200, 'mail catcher inbox');
  return (await response.json()).messages;
}
async function fault(body) {
  const response = await fetch(`${mailcatcher}/api/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.ok(response.ok, `mail catcher fault: ${response.status}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root in a container has no user namespaces for the sandbox; the test trusts its own pages.
  args: ['--no-sandbox'],
});
const problems = [];
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}
// The page has settled: no navigation in flight, the heading rendered.
async function settled(page) {
  await page.locator('main h1').waitFor();
  await page.waitForFunction(() => !document.getElementById('main').hasAttribute('aria-busy'));
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The 401 of the first "who am I" before logging in and the 400s the form is made to
    // provoke are expected; anything else (a CSP or Trusted Types violation) is a failure.
    if (m.type() === 'error' && !/status of (400|401)/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
  const dialogs = [];
  page.on('dialog', async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.accept();
  });

  step('logging in through the form');
  await page.goto(`${base}/ui/login`);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();

  step('the alerts page starts without rules');
  await page.locator('#nav').getByRole('link', { name: 'Alerts', exact: true }).click();
  await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
  await settled(page);
  await page.getByText('No alert rule yet.').waitFor();

  step('the form shows what the API refuses, naming the field');
  await page.getByRole('button', { name: 'New rule' }).click();
  const form = page.locator('form.rule-form');
  await form.getByLabel('Name', { exact: true }).fill('Expiring items');
  await form.getByLabel('Alert type').selectOption('secret_expiring');
  await form.getByLabel('Thresholds (days before expiry)').fill('30, 7');
  await form.getByLabel('Delivery method').selectOption('email');
  assert.equal(await form.getByLabel('Webhook URL').isVisible(), false, 'email rules have no URL');
  await form.getByLabel('Recipients').fill('not-an-address');
  await form.getByRole('button', { name: 'Create rule' }).click();
  await form.getByRole('alert').filter({ hasText: 'recipients' }).waitFor();
  assert.equal((await api('/alerts/rules')).total, 0, 'nothing stored after a refusal');

  step('creating an email rule through the form');
  await form.getByLabel('Recipients').fill('oncall@company.example');
  await shot(page, 'alerts-new-rule');
  await form.getByRole('button', { name: 'Create rule' }).click();
  const row = (name) => page.locator('table.data tbody tr').filter({ hasText: name });
  await row('Expiring items').waitFor();
  let rules = await api('/alerts/rules');
  assert.equal(rules.total, 1);
  let rule = rules.items[0];
  assert.equal(rule.name, 'Expiring items');
  assert.deepEqual(rule.thresholds, [30, 7]);
  assert.deepEqual(rule.recipients, ['oncall@company.example']);
  assert.equal(rule.deliveryMethod, 'email');
  assert.equal(rule.deliveryMode, 'immediate');
  assert.equal(await row('Expiring items').locator('td[data-label="Thresholds"]').textContent(), '30, 7 days');

  step('editing it: a unicode name, a third threshold, a second recipient, digest mode');
  const renamed = 'Owners 🔔 – échéances';
  await page.getByRole('button', { name: 'Edit Expiring items' }).click();
  await page.getByRole('heading', { name: 'Edit “Expiring items”' }).waitFor();
  assert.equal(await form.getByLabel('Thresholds (days before expiry)').inputValue(), '30, 7');
  assert.equal(await form.getByLabel('Recipients').inputValue(), 'oncall@company.example');
  await form.getByLabel('Name', { exact: true }).fill(renamed);
  await form.getByLabel('Thresholds (days before expiry)').fill('7, 30, 14');
  await form.getByLabel('Recipients').fill('oncall@company.example\npki@company.example');
  await form.getByLabel('Delivery mode').selectOption('digest');
  await form.getByRole('button', { name: 'Save rule' }).click();
  await row(renamed).waitFor();
  rules = await api('/alerts/rules');
  assert.equal(rules.total, 1, 'edited in place');
  rule = rules.items[0];
  assert.equal(rule.name, renamed);
  assert.deepEqual(rule.thresholds, [30, 14, 7]);
  assert.deepEqual(rule.recipients, ['oncall@company.example', 'pki@company.example']);
  assert.equal(rule.deliveryMode, 'digest');
  assert.equal(await row(renamed).locator('td[data-label="Delivery"]').textContent(), 'email, digest');
  await shot(page, 'alerts-rules');

  step('pressing "Test": the outcome per recipient appears on the page');
  await page.getByRole('button', { name: `Test ${renamed}` }).click();
  const outcome = page.getByRole('status').filter({ hasText: `Test of “${renamed}”` });
  await outcome.waitFor();
  assert.match(await outcome.textContent(), /through email: sent/);
  assert.equal(await outcome.locator('li').count(), 2);
  for (const to of ['oncall@company.example', 'pki@company.example']) {
    assert.ok((await outcome.textContent()).includes(`${to}: sent (SMTP 250)`), await outcome.textContent());
  }
  await shot(page, 'alerts-test-sent');

  step('the test messages arrived in the mail catcher, marked as tests');
  let inbox = await messages();
  assert.equal(inbox.length, 2, JSON.stringify(inbox.map((m) => m.rcptTos)));
  assert.deepEqual(inbox.map((m) => m.rcptTos[0]).sort(), ['oncall@company.example', 'pki@company.example']);
  for (const m of inbox) {
    assert.ok(m.subject.startsWith('[CertifyClouds TEST]'), m.subject);
    assert.ok(m.text.includes(`"${renamed}"`), 'the text names the rule, emoji and all');
    assert.ok(m.html.includes('This is a test message'), 'the HTML part says it is a test');
  }

  step('a refusing SMTP server: the page shows the failure and its reason');
  await fault({ rejectNext: 2, code: 550 });
  await page.getByRole('button', { name: `Test ${renamed}` }).click();
  const failed = page.locator('main .problem[role="status"]');
  await failed.waitFor();
  const failedText = await failed.textContent();
  assert.match(failedText, /through email: failed/);
  assert.match(failedText, /550/);
  assert.equal((await messages()).length, 2, 'nothing more arrived');
  await shot(page, 'alerts-test-failed');

  step('the history lists the four test deliveries, and the status filter narrows them');
  await page.getByRole('link', { name: 'History', exact: true }).click();
  await page.waitForURL(/view=history/);
  await settled(page);
  const all = await api('/alerts/history');
  assert.equal(all.total, 4, JSON.stringify(all));
  const historyRows = page.locator('table.data tbody tr');
  assert.equal(await historyRows.count(), 4);
  const modes = await page.locator('table.data tbody td[data-label="Channel"]').allTextContents();
  assert.ok(modes.every((m) => m === 'email, test'), `${modes}`);
  assert.equal(await page.getByTestId('range').textContent(), '1–4 of 4');

  await page.getByLabel('Status').selectOption('sent');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/status=sent/);
  await settled(page);
  const sent = await api('/alerts/history?status=sent');
  assert.equal(sent.total, 2);
  assert.equal(await historyRows.count(), 2);
  const sentBadges = await page.locator('table.data tbody .badge').allTextContents();
  assert.deepEqual(sentBadges, ['sent', 'sent']);
  const recipients = await page.locator('table.data tbody td[data-label="Recipient"]').allTextContents();
  assert.deepEqual(recipients.sort(), ['oncall@company.example', 'pki@company.example']);
  await shot(page, 'alerts-history-sent');

  await page.getByLabel('Status').selectOption('failed');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/status=failed/);
  await settled(page);
  assert.equal(await historyRows.count(), 2);
  const errors = await page.locator('table.data tbody td[data-label="Error"]').allTextContents();
  assert.ok(errors.every((e) => e.includes('550')), `${errors}`);
  await shot(page, 'alerts-history-failed');

  step('a date range ending before it starts is refused on the page, not with a blank table');
  await page.getByLabel('From', { exact: true }).fill('2030-01-02');
  await page.getByLabel('To', { exact: true }).fill('2030-01-01');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/end_date=2030-01-01/);
  await page.getByRole('alert').filter({ hasText: 'end_date' }).waitFor();
  await page.getByRole('link', { name: 'History', exact: true }).waitFor();
  assert.ok(await page.getByLabel('Status').isVisible(), 'the filters stay to correct the range');

  step('today\'s date range holds every delivery');
  const today = new Date().toISOString().slice(0, 10);
  await page.goto(`${base}/ui/alerts?view=history&start_date=${today}&end_date=${today}`);
  await settled(page);
  assert.equal(await historyRows.count(), 4);

  step('deleting the rule after confirming; its deliveries stay in the history');
  await page.getByRole('link', { name: 'Rules', exact: true }).click();
  await settled(page);
  await page.getByRole('button', { name: `Delete ${renamed}` }).click();
  await page.getByText('No alert rule yet.').waitFor();
  assert.deepEqual(dialogs, [`Delete the rule “${renamed}”?`]);
  assert.equal((await api('/alerts/rules')).total, 0);
  assert.equal((await api('/alerts/history')).total, 4);
  await page.getByRole('link', { name: 'History', exact: true }).click();
  await settled(page);
  assert.equal(await historyRows.count(), 4);
  const ruleNames = await page.locator('table.data tbody td[data-label="Rule"]').allTextContents();
  assert.ok(ruleNames.every((n) => n === renamed), `${ruleNames}`);
  await shot(page, 'alerts-history');

  step('a phone-sized screen: the alerts pages do not scroll sideways');
  await page.setViewportSize({ width: 375, height: 740 });
  for (const path of ['/ui/alerts', '/ui/alerts?view=history']) {
    await page.goto(base + path);
    await settled(page);
    const { scroll, width } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      width: window.innerWidth,
    }));
    assert.ok(scroll <= width, `${path}: the page is ${scroll}px wide in a ${width}px viewport`);
  }
  await shot(page, 'phone-alerts-history');
  await context.close();

  assert.deepEqual(problems, [], 'no script error or policy violation in the pages');
  step('all checks passed');
} finally {
  await browser.close();
}
