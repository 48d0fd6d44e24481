// The audit trail: filters (kept in the URL), pages, export links carrying the same filters,
// and a check of the HMAC chain.

import { get, query } from '../api.js';
import { h, heading, table, when, field, pager, problem, values } from '../dom.js';

export const title = 'Audit';

const FILTERS = ['start_date', 'end_date', 'event_type', 'actor'];

export async function render(ctx) {
  const filters = Object.fromEntries(FILTERS.map((k) => [k, ctx.params.get(k) || '']));
  const offset = Number(ctx.params.get('offset')) || 0;
  const page = await get('/audit/entries', { ...filters, offset, limit: 50 });
  const go = (changes) => {
    const q = new URLSearchParams({ ...filters, offset, ...changes });
    for (const [k, v] of [...q.entries()]) if (!v || v === '0') q.delete(k);
    ctx.navigate(`/ui/audit${q.toString() ? `?${q}` : ''}`);
  };
  const exportLink = (format, label) =>
    h('a', { class: 'button secondary', href: `/audit/export${query({ ...filters, format })}`, download: '' }, label);

  const verdict = h('div', { 'aria-live': 'polite' });
  const verify = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      async onclick() {
        verify.disabled = true;
        try {
          const v = await get('/audit/verify');
          const text = v.valid
            ? `The chain is intact: ${v.checked} entries checked.`
            : `The chain is broken: ${JSON.stringify(v.firstBreak)}`;
          verdict.replaceChildren(h('p', { class: v.valid ? 'ok' : 'problem' }, text));
        } catch (e) {
          verdict.replaceChildren(problem(e));
        } finally {
          verify.disabled = false;
        }
      },
    },
    'Verify the chain',
  );

  return h(
    'div',
    {},
    heading('Audit', h('span', { class: 'muted' }, `${page.total} entries`)),
    h(
      'form',
      {
        class: 'filters',
        role: 'search',
        'aria-label': 'Filter the audit trail',
        onsubmit(event) {
          event.preventDefault();
          go({ ...values(event.target), offset: 0 });
        },
      },
      field('From', h('input', { type: 'date', name: 'start_date', value: filters.start_date })),
      field('To', h('input', { type: 'date', name: 'end_date', value: filters.end_date })),
      field('Event type', h('input', { name: 'event_type', value: filters.event_type, placeholder: 'auth.login.succeeded' })),
      field('Actor', h('input', { name: 'actor', value: filters.actor })),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply'), h('a', { href: '/ui/audit', class: 'button secondary' }, 'Clear')),
    ),
    h(
      'div',
      { class: 'toolbar', role: 'group', 'aria-label': 'Export' },
      h('span', {}, 'Export these entries: '),
      exportLink('json', 'JSON'),
      exportLink('csv', 'CSV'),
      exportLink('pdf', 'PDF'),
      verify,
    ),
    verdict,
    table(
      [
        { label: 'Time', cell: (e) => when(e.at) },
        { label: 'Actor', cell: (e) => e.actor },
        { label: 'Event', cell: (e) => e.eventType },
        { label: 'Target', cell: (e) => e.target },
        { label: 'Source', cell: (e) => e.sourceIp },
        { label: 'Details', cell: (e) => h('code', { class: 'details' }, JSON.stringify(e.details)) },
      ],
      page.items,
      { empty: 'No entry matches these filters.' },
    ),
    pager(page, (o) => go({ offset: o })),
  );
}
