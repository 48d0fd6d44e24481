// Settings, for admins: every setting with its value in force and where it comes from; a
// category is saved with the values that changed, a single setting can be reset. The API
// refuses these changes to other roles whatever the page shows; the page refuses them first.

import { get, put, del } from '../api.js';
import { h, heading, field, problem, toast } from '../dom.js';

export const title = 'Settings';

const CATEGORIES = [
  ['performance', 'Performance'],
  ['features', 'Features'],
  ['logging', 'Logging'],
  ['alert-defaults', 'Alert defaults'],
  ['retention', 'Retention'],
  ['compliance-policy', 'Compliance policy'],
  ['automation', 'Automation'],
];

function control(s) {
  const name = s.key;
  if (s.type === 'boolean') return h('input', { type: 'checkbox', name, checked: s.value === true });
  if (s.allowed) {
    return h('select', { name }, s.allowed.map((v) => h('option', { value: v, selected: v === s.value }, v)));
  }
  if (s.type === 'integer') {
    return h('input', { type: 'number', name, value: s.value, min: s.min, max: s.max, step: 1, required: true });
  }
  return h('input', { name, value: s.value ?? '' });
}

function read(input, s) {
  if (s.type === 'boolean') return input.checked;
  if (s.type === 'integer') return Number(input.value);
  return input.value;
}

function category(slug, label, entries, reload) {
  const message = h('div', {});
  const form = h(
    'form',
    {
      class: 'card settings',
      'aria-labelledby': `s-${slug}`,
      async onsubmit(event) {
        event.preventDefault();
        const changed = {};
        for (const s of entries) {
          const value = read(form.elements[s.key], s);
          if (JSON.stringify(value) !== JSON.stringify(s.value)) changed[s.key] = value;
        }
        if (!Object.keys(changed).length) {
          message.replaceChildren(h('p', { class: 'muted' }, 'Nothing changed.'));
          return;
        }
        try {
          await put(`/api/settings/${slug}`, changed);
          toast(`${label} saved`);
          reload();
        } catch (e) {
          message.replaceChildren(problem(e));
        }
      },
    },
    h('h2', { id: `s-${slug}` }, label),
    message,
    entries.map((s) =>
      h(
        'div',
        { class: 'setting' },
        field(s.key, control(s), `${s.description} — from ${s.source}${s.environmentVariable ? ` (${s.environmentVariable})` : ''}`),
        s.source === 'database'
          ? h(
              'button',
              {
                type: 'button',
                class: 'secondary small',
                'aria-label': `Reset ${s.key}`,
                async onclick() {
                  try {
                    await del(`/api/settings/${slug}/${s.key}`);
                    toast(`${s.key} reset`);
                    reload();
                  } catch (e) {
                    message.replaceChildren(problem(e));
                  }
                },
              },
              'Reset',
            )
          : null,
      ),
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, `Save ${label.toLowerCase()}`)),
  );
  return form;
}

export async function render(ctx) {
  if (ctx.me?.role !== 'admin') {
    return h(
      'div',
      {},
      heading('Settings'),
      h('p', { class: 'problem', role: 'alert' }, 'Settings are for administrators; your role is ' + (ctx.me?.role ?? 'unknown') + '.'),
    );
  }
  const [all, stats] = await Promise.all([
    get('/api/settings/all'),
    get('/api/settings/retention/stats').catch((e) => ({ error: e })),
  ]);
  const reload = () => ctx.navigate('/ui/settings', { replace: true });
  const camel = (slug) => slug.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  return h(
    'div',
    {},
    heading('Settings', h('span', { class: 'muted' }, `licence tier ${all.licenseTier}`)),
    CATEGORIES.map(([slug, label]) => category(slug, label, all[camel(slug)] || [], reload)),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'stats' },
      h('h2', { id: 'stats' }, 'History kept'),
      stats.error ? problem(stats.error) : h('pre', { class: 'details' }, JSON.stringify(stats, null, 2)),
    ),
  );
}
