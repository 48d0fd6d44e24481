// Alert rules (create, edit, test, delete) and the delivery history, against `/alerts/rules`
// and `/alerts/history`. A rule is {id, name, alertType, thresholdDays, deliveryMethod,
// deliveryMode, recipients, enabled}; the API validates each field and names the one it refuses.

import { get, post, put, del } from '../api.js';
import { h, heading, badge, table, when, field, select, pager, problem, toast, values } from '../dom.js';

export const title = 'Alerts';

const TYPES = ['secret_expiring', 'certificate_expiring', 'key_expiring'];
const METHODS = [['email', 'Email'], ['slack', 'Slack'], ['teams', 'Microsoft Teams'], ['pagerduty', 'PagerDuty'], ['webhook', 'Webhook']];
const MODES = [['immediate', 'Immediate'], ['digest', 'Digest']];

function tabs(active) {
  const tab = (href, label, key) =>
    h('a', { href, class: 'tab', 'aria-current': active === key ? 'page' : false }, label);
  return h('nav', { class: 'tabs', 'aria-label': 'Alerts' }, tab('/ui/alerts', 'Rules', 'rules'), tab('/ui/alerts?view=history', 'History', 'history'));
}

function ruleForm(rule, done) {
  const message = h('div', {});
  const editing = Boolean(rule.id);
  const typeList = h('datalist', { id: 'alert-types' }, TYPES.map((t) => h('option', { value: t })));
  const form = h(
    'form',
    {
      class: 'card rule-form',
      'aria-labelledby': 'rule-title',
      async onsubmit(event) {
        event.preventDefault();
        const v = values(form);
        const body = {
          name: v.name.trim(),
          alertType: v.alertType.trim(),
          thresholdDays: Number(v.thresholdDays),
          deliveryMethod: v.deliveryMethod,
          deliveryMode: v.deliveryMode,
          recipients: v.recipients.split(/[\n,]/).map((r) => r.trim()).filter(Boolean),
          enabled: form.elements.enabled.checked,
        };
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
    field('Alert type', h('input', { name: 'alertType', list: 'alert-types', value: rule.alertType || 'secret_expiring', required: true })),
    typeList,
    field('Threshold (days before expiry)', h('input', { name: 'thresholdDays', type: 'number', min: 0, value: rule.thresholdDays ?? 30, required: true })),
    field('Delivery method', select('deliveryMethod', METHODS, rule.deliveryMethod || 'email')),
    field('Delivery mode', select('deliveryMode', MODES, rule.deliveryMode || 'immediate')),
    field('Recipients', h('textarea', { name: 'recipients', rows: 3 }, (rule.recipients || []).join('\n')), 'One per line: addresses, or webhook URLs'),
    h('div', { class: 'field checkbox' }, h('input', { type: 'checkbox', name: 'enabled', id: 'rule-enabled', checked: rule.enabled ?? true }), h('label', { for: 'rule-enabled' }, 'Enabled')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, editing ? 'Save rule' : 'Create rule'), h('button', { type: 'button', class: 'secondary', onclick: done }, 'Cancel')),
  );
  return form;
}

async function rules(ctx) {
  const page = await get('/alerts/rules');
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
              const result = await post(`/alerts/rules/${encodeURIComponent(r.id)}/test`);
              message.replaceChildren(h('p', { class: 'ok', role: 'status' }, `Test of “${r.name}”: ${result?.status || result?.message || 'sent'}`));
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
        { label: 'Threshold', cell: (r) => `${r.thresholdDays} days` },
        { label: 'Delivery', cell: (r) => `${r.deliveryMethod}, ${r.deliveryMode}` },
        { label: 'Recipients', cell: (r) => (r.recipients || []).join(', ') },
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
  const page = await get('/alerts/history', { ...filters, offset, limit: 50 });
  const items = page.items ?? page;
  const go = (changes) => {
    const q = new URLSearchParams({ view: 'history', ...filters, offset, ...changes });
    for (const [k, v] of [...q.entries()]) if (!v || v === '0') q.delete(k);
    ctx.navigate(`/ui/alerts?${q}`);
  };
  const pick = (o, ...keys) => keys.map((k) => o[k]).find((v) => v !== undefined && v !== null);
  return h(
    'div',
    {},
    heading('Alerts'),
    tabs('history'),
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
      field('Status', select('status', [['', 'Any'], ['pending', 'Pending'], ['sent', 'Sent'], ['failed', 'Failed']], filters.status)),
      field('From', h('input', { type: 'date', name: 'start_date', value: filters.start_date })),
      field('To', h('input', { type: 'date', name: 'end_date', value: filters.end_date })),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply')),
    ),
    table(
      [
        { label: 'Time', cell: (e) => when(pick(e, 'createdAt', 'sentAt', 'at')) },
        { label: 'Rule', cell: (e) => pick(e, 'ruleName', 'ruleId') },
        { label: 'Asset', cell: (e) => (e.assetId ? h('a', { href: `/ui/assets/${e.assetId}` }, pick(e, 'assetName', 'assetId')) : pick(e, 'assetName')) },
        { label: 'Channel', cell: (e) => pick(e, 'deliveryMethod', 'channel') },
        { label: 'Recipient', cell: (e) => pick(e, 'recipient') },
        { label: 'Status', cell: (e) => badge(e.status) },
        { label: 'Attempts', cell: (e) => pick(e, 'attempts', 'attempt') },
        { label: 'Error', cell: (e) => pick(e, 'error') },
      ],
      items,
      { empty: 'No delivery matches these filters.' },
    ),
    page.total !== undefined ? pager(page, (o) => go({ offset: o })) : null,
  );
}

export async function render(ctx) {
  return ctx.params.get('view') === 'history' ? history(ctx) : rules(ctx);
}
