// Alert rules (create, edit, test, delete) and the delivery history, against `/alerts/rules`
// and `/alerts/history`. A rule is {id, name, alertType, thresholdDays | thresholds,
// deliveryMethod, deliveryMode, recipients, channel, enabled}; channel credentials (webhook URL,
// routing key, signing secret) are write-only. The API validates each field and names the one
// it refuses, which the form shows.

import { get, post, put, del } from '../api.js';
import { h, heading, badge, table, when, field, select, pager, problem, toast, values } from '../dom.js';

export const title = 'Alerts';

const TYPES = [
  ['secret_expiring', 'An item will expire (thresholds)'],
  ['secret_expired', 'An item has expired'],
  ['scan_completed', 'A scan completed'],
  ['vault_error', 'A vault could not be scanned'],
];
const METHODS = [['email', 'Email'], ['slack', 'Slack'], ['teams', 'Microsoft Teams'], ['pagerduty', 'PagerDuty'], ['webhook', 'Webhook']];
const MODES = [['immediate', 'Immediate'], ['digest', 'Digest']];
const STATUSES = [['', 'Any'], ['queued', 'Queued'], ['sending', 'Sending'], ['sent', 'Sent'], ['failed', 'Failed']];

function tabs(active) {
  const tab = (href, label, key) =>
    h('a', { href, class: 'tab', 'aria-current': active === key ? 'page' : false }, label);
  return h('nav', { class: 'tabs', 'aria-label': 'Alerts' }, tab('/ui/alerts', 'Rules', 'rules'), tab('/ui/alerts?view=history', 'History', 'history'));
}

function ruleForm(rule, done) {
  const message = h('div', {});
  const editing = Boolean(rule.id);
  const threshold = rule.thresholds?.length ? rule.thresholds.join(', ') : (rule.thresholdDays ?? '');
  const configured = rule.channel?.configured ? ' (stored; leave empty to keep it)' : '';
  const groups = {
    threshold: field('Thresholds (days before expiry)', h('input', { name: 'thresholds', value: threshold, inputmode: 'numeric' }), 'One or more, comma separated, e.g. 30, 7, 1; empty uses the alert-defaults setting'),
    recipients: field('Recipients', h('textarea', { name: 'recipients', rows: 3 }, (rule.recipients || []).join('\n')), 'Email addresses, one per line'),
    url: field(`Webhook URL${configured}`, h('input', { name: 'webhookUrl', type: 'url', autocomplete: 'off' })),
    key: field(`PagerDuty routing key${configured}`, h('input', { name: 'routingKey', autocomplete: 'off' })),
    secret: field(`Signing secret${rule.channel?.signed ? ' (stored; leave empty to keep it)' : ''}`, h('input', { name: 'signingSecret', type: 'password', autocomplete: 'new-password' }), 'Optional: signs each webhook body'),
  };
  const show = () => {
    const type = form.elements.alertType.value;
    const method = form.elements.deliveryMethod.value;
    groups.threshold.hidden = type !== 'secret_expiring';
    groups.recipients.hidden = method !== 'email';
    groups.url.hidden = !['slack', 'teams', 'webhook'].includes(method);
    groups.key.hidden = method !== 'pagerduty';
    groups.secret.hidden = method !== 'webhook';
  };
  const form = h(
    'form',
    {
      class: 'card rule-form',
      'aria-labelledby': 'rule-title',
      onchange: () => show(),
      async onsubmit(event) {
        event.preventDefault();
        const v = values(form);
        const body = {
          name: v.name.trim(),
          alertType: v.alertType,
          deliveryMethod: v.deliveryMethod,
          deliveryMode: v.deliveryMode,
          enabled: form.elements.enabled.checked,
        };
        const days = (v.thresholds || '').split(',').map((d) => d.trim()).filter(Boolean);
        if (v.alertType === 'secret_expiring' && days.length) body.thresholds = days.map(Number);
        if (v.deliveryMethod === 'email') {
          body.recipients = v.recipients.split(/[\n,]/).map((r) => r.trim()).filter(Boolean);
        }
        for (const key of ['webhookUrl', 'routingKey', 'signingSecret']) {
          if (!groups[{ webhookUrl: 'url', routingKey: 'key', signingSecret: 'secret' }[key]].hidden && v[key]) body[key] = v[key];
        }
        try {
          if (editing) await put(`/alerts/rules/${encodeURIComponent(rule.id)}`, body);
          else await post('/alerts/rules', body);
          toast(editing ? 'Rule saved' : 'Rule created');
          done();
        } catch (e) {
          message.replaceChildren(problem(e));
        }
      },
    },
    h('h2', { id: 'rule-title' }, editing ? `Edit “${rule.name}”` : 'New rule'),
    message,
    field('Name', h('input', { name: 'name', value: rule.name || '', required: true })),
    field('Alert type', select('alertType', TYPES, rule.alertType || 'secret_expiring')),
    groups.threshold,
    field('Delivery method', select('deliveryMethod', METHODS, rule.deliveryMethod || 'email')),
    field('Delivery mode', select('deliveryMode', MODES, rule.deliveryMode || 'immediate')),
    groups.recipients,
    groups.url,
    groups.key,
    groups.secret,
    h('div', { class: 'field checkbox' }, h('input', { type: 'checkbox', name: 'enabled', id: 'rule-enabled', checked: rule.enabled ?? true }), h('label', { for: 'rule-enabled' }, 'Enabled')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, editing ? 'Save rule' : 'Create rule'), h('button', { type: 'button', class: 'secondary', onclick: done }, 'Cancel')),
  );
  show();
  return form;
}

// One recipient's test outcome: the peer's reply code is SMTP's for email, HTTP's otherwise.
function resultLine(method, x) {
  const protocol = method === 'email' ? 'SMTP' : 'HTTP';
  const code = x.responseCode ? ` (${protocol} ${x.responseCode})` : '';
  return `${x.recipient || 'channel'}: ${x.status}${code}${x.error ? ` — ${x.error}` : ''}`;
}

async function rules(ctx) {
  const page = await get('/alerts/rules?limit=500');
  const items = page.items ?? page;
  const editor = h('div', {});
  const message = h('div', {});
  const reload = () => ctx.navigate('/ui/alerts', { replace: true });
  const open = (rule) => {
    editor.replaceChildren(ruleForm(rule, reload));
    editor.querySelector('input')?.focus();
  };
  const actions = (r) =>
    h(
      'div',
      { class: 'row-actions' },
      h('button', { type: 'button', class: 'secondary small', 'aria-label': `Edit ${r.name}`, onclick: () => open(r) }, 'Edit'),
      h(
        'button',
        {
          type: 'button',
          class: 'secondary small',
          'aria-label': `Test ${r.name}`,
          async onclick() {
            try {
              const outcome = await post(`/alerts/rules/${encodeURIComponent(r.id)}/test`);
              const sent = outcome.status === 'sent';
              message.replaceChildren(
                h(
                  'div',
                  { class: sent ? 'ok' : 'problem', role: 'status' },
                  `Test of “${r.name}” through ${outcome.deliveryMethod}: ${outcome.status}`,
                  h('ul', {}, (outcome.results || []).map((x) => h('li', {}, resultLine(outcome.deliveryMethod, x)))),
                ),
              );
            } catch (e) {
              message.replaceChildren(problem(e));
            }
          },
        },
        'Test',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'danger small',
          'aria-label': `Delete ${r.name}`,
          async onclick() {
            if (!window.confirm(`Delete the rule “${r.name}”?`)) return;
            try {
              await del(`/alerts/rules/${encodeURIComponent(r.id)}`);
              toast('Rule deleted');
              reload();
            } catch (e) {
              message.replaceChildren(problem(e));
            }
          },
        },
        'Delete',
      ),
    );
  return h(
    'div',
    {},
    heading('Alerts', h('button', { type: 'button', onclick: () => open({}) }, 'New rule')),
    tabs('rules'),
    message,
    editor,
    table(
      [
        { label: 'Name', cell: (r) => r.name },
        { label: 'Type', cell: (r) => r.alertType },
        { label: 'Thresholds', cell: (r) => (r.thresholds?.length ? `${r.thresholds.join(', ')} days` : r.thresholdDays != null ? `${r.thresholdDays} days` : '—') },
        { label: 'Delivery', cell: (r) => `${r.deliveryMethod}, ${r.deliveryMode}` },
        { label: 'Recipients', cell: (r) => (r.recipients?.length ? r.recipients.join(', ') : r.channel?.host || (r.channel?.configured ? 'configured' : '—')) },
        { label: 'Enabled', cell: (r) => (r.enabled ? 'yes' : 'no') },
        { label: 'Actions', cell: actions },
      ],
      items,
      { empty: 'No alert rule yet.' },
    ),
  );
}

async function history(ctx) {
  const p = ctx.params;
  const filters = { status: p.get('status') || '', start_date: p.get('start_date') || '', end_date: p.get('end_date') || '' };
  const offset = Number(p.get('offset')) || 0;
  // A refused filter (a bad date, a range ending before it starts) is shown above the filters,
  // which stay on the page so the reader can correct them.
  let page = { items: [] };
  let refused = null;
  try {
    page = await get('/alerts/history', { ...filters, offset, limit: 50 });
  } catch (e) {
    if (e.status !== 400) throw e;
    refused = problem(e);
  }
  const items = page.items ?? page;
  const go = (changes) => {
    const q = new URLSearchParams({ view: 'history', ...filters, offset, ...changes });
    for (const [k, v] of [...q.entries()]) if (!v || v === '0') q.delete(k);
    ctx.navigate(`/ui/alerts?${q}`);
  };
  return h(
    'div',
    {},
    heading('Alerts'),
    tabs('history'),
    refused,
    h(
      'form',
      {
        class: 'filters',
        role: 'search',
        'aria-label': 'Filter the alert history',
        onsubmit(event) {
          event.preventDefault();
          go({ ...values(event.target), offset: 0 });
        },
      },
      field('Status', select('status', STATUSES, filters.status)),
      field('From', h('input', { type: 'date', name: 'start_date', value: filters.start_date })),
      field('To', h('input', { type: 'date', name: 'end_date', value: filters.end_date })),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply')),
    ),
    table(
      [
        { label: 'Time', cell: (e) => when(e.createdAt) },
        { label: 'Rule', cell: (e) => e.ruleName },
        { label: 'Subject', cell: (e) => `${e.subject}${e.eventCount > 1 ? ` (${e.eventCount} events)` : ''}` },
        { label: 'Channel', cell: (e) => `${e.deliveryMethod}, ${e.deliveryMode}` },
        { label: 'Recipient', cell: (e) => e.recipient },
        { label: 'Status', cell: (e) => badge(e.status) },
        { label: 'Attempts', cell: (e) => e.attempts },
        { label: 'Error', cell: (e) => e.error },
      ],
      items,
      { empty: refused ? 'Correct the filters to see deliveries.' : 'No delivery matches these filters.' },
    ),
    page.total !== undefined ? pager(page, (o) => go({ offset: o })) : null,
  );
}

export async function render(ctx) {
  return ctx.params.get('view') === 'history' ? history(ctx) : rules(ctx);
}
