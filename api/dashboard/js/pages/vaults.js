// The vaults the scans found, with their protection settings and what each holds.

import { get } from '../api.js';
import { h, heading, table, when, field, pager } from '../dom.js';

export const title = 'Vaults';

const yes = (b) => (b ? 'yes' : 'no');

export async function render(ctx) {
  const subscription = ctx.params.get('subscription') || '';
  const offset = Number(ctx.params.get('offset')) || 0;
  const page = await get('/api/assets/discovery/vaults', { subscription, offset, limit: 50 });
  const go = (changes) => {
    const q = new URLSearchParams({ subscription, offset, ...changes });
    for (const [k, v] of [...q.entries()]) if (!v || v === '0') q.delete(k);
    ctx.navigate(`/ui/vaults${q.toString() ? `?${q}` : ''}`);
  };
  const assets = (v, type, n) =>
    h('a', { href: `/ui/assets?vault=${encodeURIComponent(v.id)}&type=${type}` }, n);
  return h(
    'div',
    {},
    heading('Vaults', h('span', { class: 'muted' }, `${page.total} in the inventory`)),
    h(
      'form',
      {
        class: 'filters',
        role: 'search',
        'aria-label': 'Filter vaults',
        onsubmit(event) {
          event.preventDefault();
          go({ subscription: event.target.subscription.value.trim(), offset: 0 });
        },
      },
      field('Subscription', h('input', { name: 'subscription', value: subscription })),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply')),
    ),
    table(
      [
        { label: 'Name', cell: (v) => h('a', { href: `/ui/assets?vault=${encodeURIComponent(v.id)}` }, v.name) },
        { label: 'Subscription', cell: (v) => v.subscriptionId },
        { label: 'Resource group', cell: (v) => v.resourceGroup },
        { label: 'Location', cell: (v) => v.location },
        { label: 'RBAC', cell: (v) => yes(v.rbacEnabled) },
        { label: 'Soft delete', cell: (v) => yes(v.softDeleteEnabled) },
        { label: 'Purge protection', cell: (v) => yes(v.purgeProtection) },
        { label: 'Public network', cell: (v) => v.publicNetworkAccess },
        { label: 'Secrets', cell: (v) => assets(v, 'secret', v.secrets) },
        { label: 'Keys', cell: (v) => assets(v, 'key', v.keys) },
        { label: 'Certificates', cell: (v) => assets(v, 'certificate', v.certificates) },
        { label: 'Last seen', cell: (v) => when(v.lastSeenAt) },
      ],
      page.items,
      { empty: 'No vault yet: run a scan.' },
    ),
    pager(page, (o) => go({ offset: o })),
  );
}
