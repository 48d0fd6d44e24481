// Compliance: the score of the latest evaluation, the frameworks and their controls, and the
// open violations with the remedy of each rule.

import { get, post } from '../api.js';
import { h, heading, badge, table, when, field, select, pager, problem, toast } from '../dom.js';

export const title = 'Compliance';

const SEVERITIES = ['critical', 'high', 'medium', 'low'];

async function framework(ctx) {
  const f = await get(`/compliance/frameworks/${encodeURIComponent(ctx.id)}`);
  return h(
    'div',
    {},
    h('p', {}, h('a', { href: '/ui/compliance' }, '← Compliance')),
    heading(f.name, h('span', { class: 'muted' }, `evaluated ${when(f.evaluatedAt)}`)),
    h(
      'p',
      {},
      h('a', { href: `/ui/compliance?framework=${encodeURIComponent(f.id)}` }, 'Open violations of this framework'),
    ),
    f.controls.map((c) =>
      h(
        'section',
        { class: 'control card', 'aria-labelledby': `c-${c.id}` },
        h('h2', { id: `c-${c.id}` }, `${c.id} — ${c.title}`),
        h('p', {}, `${c.passed} passed, ${c.failed} failed`),
        c.evidence ? h('p', { class: 'muted' }, c.evidence) : null,
        h(
          'ul',
          { class: 'rules' },
          c.rules.map((r) =>
            h('li', {}, badge(r.severity), ' ', h('strong', {}, r.title), h('p', { class: 'remedy' }, `Remedy: ${r.remedy}`)),
          ),
        ),
      ),
    ),
  );
}

export async function render(ctx) {
  if (ctx.id) return framework(ctx);
  const severity = ctx.params.get('severity') || '';
  const frameworkId = ctx.params.get('framework') || '';
  const offset = Number(ctx.params.get('offset')) || 0;
  const [score, frameworks, violations] = await Promise.all([
    get('/compliance/score'),
    get('/compliance/frameworks'),
    get('/compliance/violations', { severity, framework: frameworkId, offset, limit: 25 }),
  ]);
  const go = (changes) => {
    const q = new URLSearchParams({ severity, framework: frameworkId, offset, ...changes });
    for (const [k, v] of [...q.entries()]) if (!v || v === '0') q.delete(k);
    ctx.navigate(`/ui/compliance${q.toString() ? `?${q}` : ''}`);
  };
  const message = h('div', {});
  const evaluate = h(
    'button',
    {
      type: 'button',
      async onclick() {
        evaluate.disabled = true;
        try {
          await post('/compliance/evaluate');
          toast('Evaluation queued; reload in a moment for the new score.');
        } catch (e) {
          message.replaceChildren(problem(e));
        } finally {
          evaluate.disabled = false;
        }
      },
    },
    'Evaluate now',
  );
  const sev = score.bySeverity || {};
  return h(
    'div',
    {},
    heading('Compliance', evaluate),
    message,
    h(
      'section',
      { class: 'cards', 'aria-label': 'Score' },
      h(
        'div',
        { class: 'card stat' },
        h('span', { class: 'card-label' }, 'Score'),
        h('span', { class: 'card-value' }, score.score === null ? '—' : `${score.score}%`),
        h('span', { class: 'muted small' }, `${score.passed} of ${score.total} checks passed · ${when(score.evaluatedAt)}`),
      ),
      SEVERITIES.map((s) =>
        h('div', { class: 'card stat' }, h('span', { class: 'card-label' }, `${s} failures`), h('span', { class: 'card-value' }, sev[s] ?? 0)),
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'fw' },
      h('h2', { id: 'fw' }, 'Frameworks'),
      table(
        [
          { label: 'Framework', cell: (f) => h('a', { href: `/ui/compliance/${encodeURIComponent(f.id)}` }, f.name) },
          { label: 'Controls', cell: (f) => f.controls },
          { label: 'Passed', cell: (f) => f.passed },
          { label: 'Failed', cell: (f) => f.failed },
          { label: 'Score', cell: (f) => `${f.score}%` },
        ],
        frameworks.items,
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'viol' },
      h('h2', { id: 'viol' }, `Open violations (${violations.total})`),
      h(
        'form',
        {
          class: 'filters',
          role: 'search',
          'aria-label': 'Filter violations',
          onsubmit(event) {
            event.preventDefault();
            go({ severity: event.target.severity.value, framework: event.target.framework.value, offset: 0 });
          },
        },
        field('Severity', select('severity', [['', 'Any'], ...SEVERITIES.map((s) => [s, s])], severity)),
        field('Framework', select('framework', [['', 'Any'], ...frameworks.items.map((f) => [f.id, f.name])], frameworkId)),
        h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply')),
      ),
      table(
        [
          { label: 'Severity', cell: (v) => badge(v.severity) },
          { label: 'Rule', cell: (v) => h('span', {}, h('strong', {}, v.title || v.ruleId), h('span', { class: 'muted small block' }, v.ruleId)) },
          {
            label: 'Target',
            cell: (v) =>
              v.targetType === 'asset'
                ? h('a', { href: `/ui/assets/${v.targetId}` }, v.targetName || v.targetId)
                : v.targetName || v.targetId,
          },
          { label: 'Vault', cell: (v) => v.vaultName },
          { label: 'Since', cell: (v) => when(v.firstSeenAt) },
          { label: 'Remedy', cell: (v) => h('span', { class: 'remedy' }, v.remedy) },
        ],
        violations.items,
        { empty: 'No open violation.' },
      ),
      pager(violations, (o) => go({ offset: o })),
    ),
  );
}
