// The inventory: the same filters as `GET /api/assets/discovery/assets` (kept in the page's
// URL, so a filtered view can be shared), pages, and one asset's every metadata field.

import { get } from '../api.js';
import { h, heading, badge, table, when, days, field, select, facts, pager, values } from '../dom.js';

export const title = 'Assets';

const FILTERS = ['type', 'status', 'vault', 'subscription'];

function list(value) {
  if (Array.isArray(value)) return value.length ? value.join(', ') : '—';
  return value ?? '—';
}

async function detail(id) {
  const a = await get(`/api/assets/discovery/assets/${encodeURIComponent(id)}`);
  const sections = [
    h('section', { 'aria-labelledby': 'general' }, h('h2', { id: 'general' }, 'General'), facts([
      ['Type', a.type],
      ['Status', badge(a.status)],
      ['Enabled', a.enabled ? 'yes' : 'no'],
      ['Version', a.version],
      ['Expires', a.expiresOn ? `${when(a.expiresOn)} (${days(a.daysUntilExpiry)})` : 'never'],
      ['Not before', when(a.notBefore)],
      ['Created', when(a.createdOn)],
      ['Updated', when(a.updatedOn)],
      ['Vault', h('a', { href: `/ui/assets?vault=${encodeURIComponent(a.vaultName)}` }, a.vaultName)],
      ['Vault URI', a.vaultUri],
      ['Subscription', a.subscriptionId],
      ['Azure id', a.azureId],
      ['Content type', a.contentType],
      ['Recovery level', a.recoveryLevel],
      ['Tags', Object.entries(a.tags || {}).map(([k, v]) => `${k}=${v}`).join(', ') || '—'],
      ['First seen', when(a.firstSeenAt)],
      ['Last seen', when(a.lastSeenAt)],
      ['Last scan', a.lastScanId ? h('a', { href: `/ui/scans/${a.lastScanId}` }, a.lastScanId) : '—'],
    ])),
  ];
  if (a.type === 'certificate' || a.type === 'key') {
    const pairs = [
      ['Key type', a.keyType],
      ['Key size', a.keySize],
      ['Curve', a.keyCurve],
    ];
    if (a.type === 'certificate') {
      pairs.unshift(
        ['Subject', a.subject],
        ['Issuer', a.issuer],
        ['Subject alternative names', list(a.sans)],
        ['Thumbprint (SHA-1)', a.thumbprint],
        ['Serial number', a.serialNumber],
      );
    }
    const label = a.type === 'certificate' ? 'Certificate' : 'Key';
    sections.push(
      h('section', { 'aria-labelledby': 'crypto' }, h('h2', { id: 'crypto' }, label), facts(pairs)),
    );
  }
  return h(
    'div',
    { 'data-asset-id': a.id },
    h('p', {}, h('a', { href: '/ui/assets' }, '← All assets')),
    heading(a.name, badge(a.status)),
    sections,
  );
}

export async function render(ctx) {
  if (ctx.id) return detail(ctx.id);
  const p = ctx.params;
  const filters = Object.fromEntries(FILTERS.map((k) => [k, p.get(k) || '']));
  const limit = Number(p.get('limit')) || 50;
  const offset = Number(p.get('offset')) || 0;
  const page = await get('/api/assets/discovery/assets', { ...filters, limit, offset });

  const go = (changes) => {
    const next = new URLSearchParams({ ...filters, limit, offset, ...changes });
    for (const [k, v] of [...next.entries()]) if (!v || (k === 'offset' && v === '0')) next.delete(k);
    if (next.get('limit') === '50') next.delete('limit');
    const q = next.toString();
    ctx.navigate(`/ui/assets${q ? `?${q}` : ''}`);
  };

  const form = h(
    'form',
    {
      class: 'filters',
      role: 'search',
      'aria-label': 'Filter assets',
      onsubmit(event) {
        event.preventDefault();
        go({ ...values(event.target), offset: 0 });
      },
    },
    field('Type', select('type', [['', 'Any'], ['secret', 'Secret'], ['key', 'Key'], ['certificate', 'Certificate']], filters.type)),
    field('Status', select('status', [['', 'Any'], ['expired', 'Expired'], ['critical', 'Critical'], ['warning', 'Warning'], ['healthy', 'Healthy']], filters.status)),
    field('Vault', h('input', { name: 'vault', value: filters.vault, placeholder: 'name or id' })),
    field('Subscription', h('input', { name: 'subscription', value: filters.subscription, placeholder: 'subscription id' })),
    field('Per page', select('limit', [[25, '25'], [50, '50'], [100, '100'], [500, '500']], limit)),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply'), h('a', { href: '/ui/assets', class: 'button secondary' }, 'Clear')),
  );

  return h(
    'div',
    {},
    heading('Assets', h('span', { class: 'muted' }, h('span', { 'data-testid': 'asset-total' }, page.total), ' matching')),
    form,
    table(
      [
        { label: 'Name', cell: (a) => h('a', { href: `/ui/assets/${a.id}` }, a.name) },
        { label: 'Type', cell: (a) => a.type },
        { label: 'Status', cell: (a) => badge(a.status) },
        { label: 'Expires', cell: (a) => (a.expiresOn ? `${when(a.expiresOn)} (${days(a.daysUntilExpiry)})` : 'never') },
        { label: 'Vault', cell: (a) => a.vaultName },
        { label: 'Enabled', cell: (a) => (a.enabled ? 'yes' : 'no') },
      ],
      page.items,
      { empty: 'No asset matches these filters.' },
    ),
    pager(page, (o) => go({ offset: o })),
  );
}
