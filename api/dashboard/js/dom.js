// Building blocks for the pages. Everything is built as DOM nodes with text content: no markup
// is ever parsed from strings (the Content-Security-Policy enforces Trusted Types, so a stray
// innerHTML would throw rather than open a hole).

/**
 * An element: `h('a', {href: '/ui/', class: 'x', onclick: fn}, 'text', child, [more])`.
 * Attributes whose value is false, null or undefined are left out; `true` sets them empty.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'value' && 'value' in el) {
      el.value = value;
    } else if (key === 'checked') {
      el.checked = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** A date and time in the reader's locale, or a dash. */
export function when(value) {
  if (!value) return '—';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

/** `in 5 days` / `3 days ago` for an asset's days until expiry. */
export function days(n) {
  if (n === null || n === undefined) return '';
  if (n === 0) return 'today';
  return n > 0 ? `in ${n} day${n === 1 ? '' : 's'}` : `${-n} day${n === -1 ? '' : 's'} ago`;
}

/** A coloured label for a status or severity. */
export function badge(value) {
  return h('span', { class: `badge badge-${String(value).replace(/[^a-z_]/gi, '')}` }, value);
}

/** A page heading; the router focuses it after each navigation. */
export function heading(text, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, text), ...extra);
}

/**
 * A table that turns into labelled cards on narrow screens. `columns` are
 * `{label, cell: row => node|string}`.
 */
export function table(columns, rows, { caption, empty = 'Nothing to show.' } = {}) {
  if (!rows.length) return h('p', { class: 'muted empty' }, empty);
  return h(
    'table',
    { class: 'data' },
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
    h(
      'tbody',
      {},
      rows.map((row) =>
        h('tr', {}, columns.map((c) => h('td', { 'data-label': c.label }, c.cell(row) ?? '—'))),
      ),
    ),
  );
}

/** A label wrapped around its control, with an optional hint. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintNode = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintNode) control.setAttribute('aria-describedby', hintNode.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintNode);
}

/** A select of `[value, label]` pairs with `selected` chosen. */
export function select(name, options, selected) {
  return h(
    'select',
    { name },
    options.map(([value, label]) =>
      h('option', { value, selected: String(value) === String(selected ?? '') }, label),
    ),
  );
}

/** A definition list of `[term, value]` pairs. */
export function facts(pairs) {
  return h(
    'dl',
    { class: 'facts' },
    pairs.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value ?? '—')]),
  );
}

/** An error from the API, shown where the reader is looking and announced. */
export function problem(error) {
  const code = error?.code ? ` (${error.code})` : '';
  return h('p', { class: 'problem', role: 'alert' }, `${error?.message || error}${code}`);
}

/**
 * Previous/next buttons for a `{total, limit, offset}` page; `go(offset)` moves.
 */
export function pager(page, go) {
  const { total, limit, offset } = page;
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return h(
    'nav',
    { class: 'pager', 'aria-label': 'Pages' },
    h(
      'button',
      { type: 'button', class: 'secondary', disabled: offset <= 0, onclick: () => go(Math.max(0, offset - limit)) },
      'Previous',
    ),
    h('span', { 'data-testid': 'range' }, `${first}–${last} of ${total}`),
    h(
      'button',
      { type: 'button', class: 'secondary', disabled: last >= total, onclick: () => go(offset + limit) },
      'Next',
    ),
  );
}

/** A short message in the status region. */
export function toast(text) {
  const region = document.getElementById('toast');
  if (!region) return;
  region.textContent = text;
  region.classList.add('shown');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => region.classList.remove('shown'), 4000);
}

/** The values of a form as an object of strings. */
export function values(form) {
  return Object.fromEntries(new FormData(form).entries());
}
