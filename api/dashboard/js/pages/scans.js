// Scans: start one, follow it live (the page polls the status endpoint while the scan is queued
// or running), and read what it found per vault.

import { get, post } from '../api.js';
import { h, heading, badge, table, when, field, select, facts, pager, problem, toast } from '../dom.js';

export const title = 'Scans';

const ACTIVE = ['queued', 'running'];
const POLL_MS = 1000;

function progressOf(s) {
  const p = s.progress;
  return h(
    'div',
    { class: 'progress' },
    h('progress', { max: 100, value: p.percent, 'aria-label': 'Scan progress' }),
    h('span', {}, `${p.percent}% — ${p.vaultsDone} of ${p.vaultsTotal} vaults, ${p.itemsFound} items`),
  );
}

function statusView(s) {
  return h(
    'section',
    { 'aria-labelledby': 'state', 'data-scan-status': s.status },
    h('h2', { id: 'state' }, 'Status ', badge(s.status)),
    progressOf(s),
    facts([
      ['Mode', s.mode],
      ['Phase', s.phase],
      ['Requested by', s.requestedBy],
      ['Requested', when(s.createdAt)],
      ['Started', when(s.startedAt)],
      ['Finished', when(s.finishedAt)],
      ['Vaults failed', s.progress.vaultsFailed],
      ['Error', s.error],
      ['Superseded by', s.supersededBy ? h('a', { href: `/ui/scans/${s.supersededBy}` }, s.supersededBy) : null],
    ]),
    s.errors.length
      ? table(
          [
            { label: 'Vault', cell: (e) => e.vault },
            { label: 'Code', cell: (e) => e.code },
            { label: 'Message', cell: (e) => e.message },
          ],
          s.errors,
          { caption: 'Vaults that failed' },
        )
      : null,
  );
}

function resultsView(r) {
  const counts = (obj) => Object.entries(obj).map(([k, v]) => `${k} ${v}`).join(', ');
  return h(
    'section',
    { 'aria-labelledby': 'found' },
    h('h2', { id: 'found' }, 'Results'),
    facts([
      ['Items', r.total],
      ['By type', counts(r.byType)],
      ['By status now', counts(r.byStatus)],
    ]),
    table(
      [
        { label: 'Vault', cell: (v) => h('a', { href: `/ui/assets?vault=${encodeURIComponent(v.vaultId)}` }, v.name) },
        { label: 'Status', cell: (v) => badge(v.status) },
        { label: 'Secrets', cell: (v) => v.secrets },
        { label: 'Keys', cell: (v) => v.keys },
        { label: 'Certificates', cell: (v) => v.certificates },
        { label: 'Written', cell: (v) => v.written },
        { label: 'Error', cell: (v) => (v.errorCode ? `${v.errorCode}: ${v.errorMessage || ''}` : '') },
      ],
      r.vaults,
      { caption: 'Per vault' },
    ),
  );
}

async function detail(ctx) {
  const base = `/api/assets/discovery/scan/${encodeURIComponent(ctx.id)}`;
  const first = await get(`${base}/status`);
  const live = h('div', {}, statusView(first));
  const results = h('div', {});
  const root = h(
    'div',
    {},
    h('p', {}, h('a', { href: '/ui/scans' }, '← All scans')),
    heading(`Scan ${ctx.id}`),
    live,
    results,
  );

  const finish = async () => {
    try {
      results.replaceChildren(resultsView(await get(`${base}/results`)));
    } catch (e) {
      results.replaceChildren(problem(e));
    }
  };
  const poll = async () => {
    if (ctx.signal.aborted) return;
    try {
      const s = await get(`${base}/status`);
      if (ctx.signal.aborted) return;
      live.replaceChildren(statusView(s));
      if (ACTIVE.includes(s.status)) setTimeout(poll, POLL_MS);
      else {
        toast(`Scan ${s.status.replaceAll('_', ' ')}`);
        finish();
      }
    } catch (e) {
      live.append(problem(e));
    }
  };
  if (ACTIVE.includes(first.status)) setTimeout(poll, POLL_MS);
  else finish();
  return root;
}

export async function render(ctx) {
  if (ctx.id) return detail(ctx);
  const offset = Number(ctx.params.get('offset')) || 0;
  const page = await get('/api/assets/discovery/scans', { limit: 25, offset });
  const message = h('div', {});
  const start = h(
    'form',
    {
      class: 'filters',
      'aria-label': 'Start a scan',
      async onsubmit(event) {
        event.preventDefault();
        const button = event.target.querySelector('button');
        button.disabled = true;
        message.replaceChildren();
        try {
          const accepted = await post('/api/assets/discovery/scan', { mode: event.target.mode.value });
          ctx.navigate(`/ui/scans/${accepted.scanId}`);
        } catch (e) {
          const active = e.code === 'scan_in_progress' && e.message.match(/[0-9a-f-]{36}/)?.[0];
          message.replaceChildren(
            problem(e),
            active ? h('p', {}, h('a', { href: `/ui/scans/${active}` }, 'Follow the active scan')) : null,
          );
          button.disabled = false;
        }
      },
    },
    field(
      'Mode',
      select('mode', [['full', 'Full'], ['delta', 'Delta (changed items only)'], ['force', 'Force (supersedes an active scan)']], 'full'),
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Start scan')),
  );
  return h(
    'div',
    {},
    heading('Scans'),
    start,
    message,
    table(
      [
        { label: 'Scan', cell: (s) => h('a', { href: `/ui/scans/${s.scanId}` }, when(s.createdAt)) },
        { label: 'Mode', cell: (s) => s.mode },
        { label: 'Status', cell: (s) => badge(s.status) },
        { label: 'Progress', cell: (s) => `${s.progress.vaultsDone}/${s.progress.vaultsTotal} vaults, ${s.progress.itemsFound} items` },
        { label: 'Requested by', cell: (s) => s.requestedBy },
        { label: 'Finished', cell: (s) => when(s.finishedAt) },
      ],
      page.items,
      { empty: 'No scan yet.' },
    ),
    pager(page, (o) => ctx.navigate(`/ui/scans${o ? `?offset=${o}` : ''}`)),
  );
}
