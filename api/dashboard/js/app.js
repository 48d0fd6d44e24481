// The dashboard's shell: a small router over the History API. Each page is a module with a
// `render(main, ctx)` that builds its content from the REST API. Links under /ui/ are followed
// without a reload; the server answers the same shell for every page, so reloads work too.

import { get, post, onUnauthorized } from './api.js';
import { h, problem } from './dom.js';
import * as login from './pages/login.js';
import * as overview from './pages/overview.js';
import * as assets from './pages/assets.js';
import * as vaults from './pages/vaults.js';
import * as scans from './pages/scans.js';
import * as compliance from './pages/compliance.js';
import * as alerts from './pages/alerts.js';
import * as audit from './pages/audit.js';
import * as settings from './pages/settings.js';

const PAGES = { '': overview, login, assets, vaults, scans, compliance, alerts, audit, settings };

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const toggle = document.getElementById('nav-toggle');
let me = null;
let current = null;

/** Goes to a dashboard URL (pushing history unless `replace`). */
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

function toLogin() {
  me = null;
  const here = location.pathname + location.search;
  const next = here.startsWith('/ui/login') ? '' : `?next=${encodeURIComponent(here)}`;
  navigate(`/ui/login${next}`, { replace: true });
}

onUnauthorized(() => {
  if (!location.pathname.startsWith('/ui/login')) toLogin();
});

function showNav(user) {
  const signedIn = Boolean(user);
  nav.hidden = !signedIn;
  toggle.hidden = !signedIn;
  document.getElementById('who').textContent = signedIn ? `${user.username} (${user.role})` : '';
  for (const item of nav.querySelectorAll('[data-admin]')) item.hidden = user?.role !== 'admin';
}

function markCurrent(page) {
  for (const link of nav.querySelectorAll('a[data-page]')) {
    if (link.dataset.page === page) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function render() {
  const [, , page = '', id] = location.pathname.split('/');
  const module = PAGES[page];
  current?.abort();
  const alive = new AbortController();
  current = alive;
  nav.classList.remove('open');
  toggle.setAttribute('aria-expanded', 'false');

  if (page !== 'login' && !me) {
    try {
      me = await get('/auth/me');
    } catch (e) {
      if (e.status === 401) return toLogin();
      main.replaceChildren(problem(e));
      return;
    }
  }
  showNav(page === 'login' ? null : me);
  markCurrent(page);
  if (!module) {
    main.replaceChildren(h('h1', { tabindex: '-1' }, 'Not found'));
    return;
  }

  const ctx = {
    id: id ? decodeURIComponent(id) : undefined,
    params: new URLSearchParams(location.search),
    me,
    signal: alive.signal,
    navigate,
    signedIn(user) {
      me = user;
    },
  };
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  main.setAttribute('aria-busy', 'true');
  try {
    const view = await module.render(ctx);
    if (alive.signal.aborted) return;
    main.replaceChildren(view);
    document.title = `${module.title || 'Dashboard'} · CertifyClouds`;
  } catch (e) {
    if (alive.signal.aborted) return;
    main.replaceChildren(problem(e));
  } finally {
    main.removeAttribute('aria-busy');
  }
  const target = main.querySelector('h1') || main;
  target.focus({ preventScroll: false });
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || link.target || link.hasAttribute('download')) return;
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/ui/')) return;
  if (url.pathname.startsWith('/ui/static/')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', render);

toggle.addEventListener('click', () => {
  const open = !nav.classList.contains('open');
  nav.classList.toggle('open', open);
  toggle.setAttribute('aria-expanded', String(open));
});

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && nav.classList.contains('open')) {
    nav.classList.remove('open');
    toggle.setAttribute('aria-expanded', 'false');
    toggle.focus();
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await post('/auth/logout');
  } catch (e) {
    // A session that already ended is logged out all the same.
    if (e.status !== 401) {
      main.prepend(problem(e));
      return;
    }
  }
  me = null;
  navigate('/ui/login', { replace: true });
});

render();
