// Log in with a username and password. The API answers with the session cookies; the page keeps
// nothing itself and goes where the reader was heading (only ever a dashboard path).

import { get, post } from '../api.js';
import { h, field, problem } from '../dom.js';

export const title = 'Log in';

function safeNext(value) {
  return value && value.startsWith('/ui/') && !value.startsWith('/ui/login') ? value : '/ui/';
}

export async function render(ctx) {
  const message = h('div', { class: 'message' });
  const username = h('input', { name: 'username', autocomplete: 'username', required: true });
  const password = h('input', {
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const button = h('button', { type: 'submit' }, 'Log in');
  const form = h(
    'form',
    {
      class: 'login card',
      'aria-labelledby': 'login-title',
      async onsubmit(event) {
        event.preventDefault();
        button.disabled = true;
        message.replaceChildren();
        try {
          await post('/auth/login', { username: username.value, password: password.value });
          ctx.signedIn(await get('/auth/me'));
          ctx.navigate(safeNext(ctx.params.get('next')), { replace: true });
        } catch (e) {
          message.replaceChildren(problem(e));
          password.value = '';
          password.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    h('h1', { id: 'login-title', tabindex: '-1' }, 'Log in to CertifyClouds'),
    message,
    field('Username', username),
    field('Password', password),
    button,
  );
  return h('div', { class: 'login-wrap' }, form);
}
