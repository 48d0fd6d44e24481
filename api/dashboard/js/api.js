// The dashboard's REST client. It speaks the API exactly as any client does, except that the
// browser sends the HttpOnly session cookie, so every mutation carries the CSRF token the login
// left in the readable `cc_csrf` cookie. The page never sees the access token itself.

/** An answer outside 2xx, carrying the API's `{error, detail, code}`. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || body?.error || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || 'http_error';
    this.body = body;
  }
}

let unauthorized = () => {};

/** Sets what happens when the session has ended (401 outside the login). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** The value of a cookie the page may read. */
export function cookie(name) {
  for (const pair of document.cookie.split(';')) {
    const [key, ...rest] = pair.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return '';
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : '';
}

/** One request; resolves to the parsed JSON body (null for 204). */
export async function request(method, path, body) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') {
    const token = cookie('cc_csrf');
    if (token) headers['x-csrf-token'] = token;
  }
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = response.status === 204 ? '' : await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: response.statusText, detail: text.slice(0, 200), code: 'not_json' };
    }
  }
  if (!response.ok) {
    if (response.status === 401 && path !== '/auth/login') unauthorized();
    throw new ApiError(response.status, data);
  }
  return data;
}

export const get = (path, params) => request('GET', path + query(params));
export const post = (path, body) => request('POST', path, body);
export const put = (path, body) => request('PUT', path, body);
export const del = (path) => request('DELETE', path);
