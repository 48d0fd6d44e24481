// The overview: the compliance score, the inventory by status, what expires soon (the windows
// are the compliance-policy thresholds that derive the statuses) and the latest scan.

import { get } from '../api.js';
import { h, heading, badge, table, when, days } from '../dom.js';

export const title = 'Overview';

const STATUSES = ['expired', 'critical', 'warning', 'healthy'];
const ASSETS = '/api/assets/discovery/assets';

function setting(list, key, fallback) {
  return list.find((s) => s.key === key)?.value ?? fallback;
}

function card(label, value, { href, testid, note } = {}) {
  const number = h('span', { class: 'card-value', 'data-testid': testid }, value);
  return h(
    'div',
    { class: 'card stat' },
    h('span', { class: 'card-label' }, label),
    href ? h('a', { href }, number) : number,
    note ? h('span', { class: 'muted small' }, note) : null,
  );
}

export async function render() {
  const [score, policy, scans, soon, ...counts] = await Promise.all([
    get('/compliance/score'),
    get('/api/settings/compliance-policy'),
    get('/api/assets/discovery/scans', { limit: 1 }),
    get(ASSETS, { status: 'critical', limit: 10 }),
    ...STATUSES.map((status) => get(ASSETS, { status, limit: 1 })),
  ]);
  const critical = setting(policy, 'criticalExpiryDays', 7);
  const warning = setting(policy, 'warningExpiryDays', 30);
  const total = Object.fromEntries(STATUSES.map((s, i) => [s, counts[i].total]));
  const last = scans.items[0];

  const scoreText = score.score === null ? 'not evaluated' : `${score.score}%`;
  return h(
    'div',
    {},
    heading('Overview'),
    h(
      'section',
      { class: 'cards', 'aria-label': 'Summary' },
      card('Compliance score', scoreText, {
        href: '/ui/compliance',
        testid: 'score',
        note: `${score.passed} passed, ${score.failed} failed`,
      }),
      card(`Expire within ${critical} days`, total.critical, {
        href: '/ui/assets?status=critical',
        testid: 'expiring-critical',
      }),
      card(`Expire within ${warning} days`, total.critical + total.warning, {
        href: '/ui/assets?status=warning',
        testid: 'expiring-warning',
        note: `${total.warning} after the first ${critical} days`,
      }),
    ),
    h(
      'section',
      { 'aria-labelledby': 'by-status' },
      h('h2', { id: 'by-status' }, 'Assets by status'),
      h(
        'ul',
        { class: 'cards statuses' },
        STATUSES.map((s) =>
          h(
            'li',
            { class: `card stat status-${s}` },
            h('span', { class: 'card-label' }, s),
            h('a', { href: `/ui/assets?status=${s}` }, h('span', { class: 'card-value', 'data-status-count': s }, total[s])),
          ),
        ),
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'last-scan' },
      h('h2', { id: 'last-scan' }, 'Last scan'),
      last
        ? h(
            'p',
            { 'data-testid': 'last-scan' },
            h('a', { href: `/ui/scans/${last.scanId}` }, `${last.mode} scan`),
            ' ',
            badge(last.status),
            ` — ${last.progress.itemsFound} items in ${last.progress.vaultsDone} of ${last.progress.vaultsTotal} vaults`,
            last.progress.vaultsFailed ? `, ${last.progress.vaultsFailed} failed` : '',
            `, finished ${when(last.finishedAt)}`,
          )
        : h('p', { class: 'muted' }, 'No scan yet. ', h('a', { href: '/ui/scans' }, 'Start one.')),
    ),
    h(
      'section',
      { 'aria-labelledby': 'soonest' },
      h('h2', { id: 'soonest' }, `Expiring in the next ${critical} days`),
      table(
        [
          { label: 'Name', cell: (a) => h('a', { href: `/ui/assets/${a.id}` }, a.name) },
          { label: 'Type', cell: (a) => a.type },
          { label: 'Vault', cell: (a) => a.vaultName },
          { label: 'Expires', cell: (a) => `${when(a.expiresOn)} (${days(a.daysUntilExpiry)})` },
        ],
        soon.items,
        { empty: `Nothing expires in the next ${critical} days.` },
      ),
      soon.total > soon.items.length
        ? h('p', {}, h('a', { href: '/ui/assets?status=critical' }, `All ${soon.total}`))
        : null,
    ),
  );
}
