// lib.js - the console's helpers: the /v1 API client (session cookie + CSRF token), DOM
// building without innerHTML, dates in the browser's time zone with UTC on hover.

export const session = { csrf: null, principal: null, keyId: null, roles: [] };

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// One API call. Throws ApiError carrying the problem's detail, as the API wrote it.
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') {
    if (session.csrf) headers['X-CSRF-Token'] = session.csrf;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
  }
  let r;
  try {
    r = await fetch(path, { method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body !== undefined ? JSON.stringify(body) : undefined });
  } catch (e) {
    throw new ApiError(0, 'keyward did not answer: ' + e.message);
  }
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!r.ok) {
    const detail = data && data.detail ? data.detail : `HTTP ${r.status}`;
    if (r.status === 401 && path.startsWith('/v1/')) onUnauthorized(detail);
    throw new ApiError(r.status, detail);
  }
  return data;
}

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}

// h('tag.class', {attr}, ...children): text children become text nodes (never HTML).
export function h(spec, attrs, ...kids) {
  const [tag, ...cls] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (cls.length) el.className = cls.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    kids.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : String(k));
  }
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

const DAY = 86400e3;

export function fmtDuration(ms) {
  const a = Math.abs(ms);
  const d = Math.floor(a / DAY), hh = Math.floor((a % DAY) / 3600e3), m = Math.floor((a % 3600e3) / 60e3);
  if (d >= 2) return `${d} d ${hh} h`;
  if (d >= 1) return `${d} d ${hh} h ${m} min`;
  if (hh >= 1) return `${hh} h ${m} min`;
  if (m >= 1) return `${m} min`;
  return `${Math.floor(a / 1000)} s`;
}

// A <time> in the browser's time zone, UTC in its title.
export function when(iso, empty = '—') {
  if (!iso) return h('span.muted', empty);
  const d = new Date(iso);
  return h('time', { datetime: iso, title: d.toISOString().replace('.000Z', 'Z') + ' (UTC)' },
    d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }));
}

export function countdown(iso) {
  if (!iso) return h('span.muted', 'never expires');
  const ms = new Date(iso).getTime() - Date.now();
  return h('span.countdown', ms >= 0 ? `in ${fmtDuration(ms)}` : `${fmtDuration(ms)} ago`);
}

export function parseDuration(s) {
  const m = /^(\d+)([smhd])$/.exec(s || '');
  if (!m) return 0;
  return Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: DAY }[m[2]];
}

export function badge(text, kind) { return h('span.badge' + (kind ? '.' + kind : ''), text); }

export function has(...roles) { return roles.some((r) => session.roles.includes(r)); }
export const can = {
  write: () => has('admin', 'operator'),
  decide: () => has('admin', 'approver'),
  audit: () => has('admin', 'auditor'),
  policy: () => has('admin'),
};

// A modal form in the page's <dialog>. fields: [{name, label, type, value, hint, options,
// required}]. submit(values) may throw: its message is shown and the dialog stays open.
// Resolves with submit's result, or null when cancelled.
export function ask({ title, text, fields = [], ok = 'OK', danger = false, submit }) {
  const dlg = document.getElementById('dialog');
  const body = clear(document.getElementById('dialog-body'));
  const err = document.getElementById('dialog-error');
  const okb = document.getElementById('dialog-ok');
  const cancel = document.getElementById('dialog-cancel');
  const form = document.getElementById('dialog-form');
  document.getElementById('dialog-title').textContent = title;
  err.textContent = '';
  okb.textContent = ok;
  okb.className = danger ? 'danger' : '';
  if (text) body.append(h('p', text));
  const inputs = {};
  fields.forEach((f, i) => {
    const id = `dlg-f${i}`;
    let input;
    if (f.type === 'select') {
      input = h('select', { id, name: f.name }, f.options.map((o) =>
        h('option', { value: o.value ?? o, selected: (o.value ?? o) === f.value }, o.label ?? o)));
    } else if (f.type === 'textarea') {
      input = h('textarea', { id, name: f.name }, f.value || '');
    } else if (f.type === 'checkbox') {
      input = h('input', { id, name: f.name, type: 'checkbox', checked: !!f.value });
    } else {
      input = h('input', { id, name: f.name, type: f.type || 'text', value: f.value ?? '',
        required: f.required, autocomplete: 'off', placeholder: f.placeholder });
    }
    inputs[f.name] = input;
    body.append(h('label', { for: id }, f.label), input, f.hint ? h('p.hint', f.hint) : null);
  });
  return new Promise((resolve) => {
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dlg.removeEventListener('cancel', onCancel);
      if (dlg.open) dlg.close();
      resolve(v);
    };
    const onCancel = (e) => { e.preventDefault(); finish(null); };
    const onSubmit = async (e) => {
      e.preventDefault();
      const values = {};
      for (const [k, el] of Object.entries(inputs)) values[k] = el.type === 'checkbox' ? el.checked : el.value.trim();
      okb.disabled = true;
      try {
        finish(submit ? (await submit(values)) ?? true : values);
      } catch (x) {
        err.textContent = x.message;
      } finally {
        okb.disabled = false;
      }
    };
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dlg.addEventListener('cancel', onCancel);
    dlg.showModal();
    const first = body.querySelector('input, select, textarea');
    (first || (danger ? cancel : okb)).focus();
  });
}

// The panel that shows a new secret once, with a copy button and a warning.
export function secretPanel(secret, what) {
  const code = h('code', { id: 'new-secret', tabindex: '0' }, secret);
  const status = h('span.muted', { role: 'status' });
  const panel = h('section.secret', { 'aria-label': 'New secret' },
    h('strong', `${what}: copy it now.`),
    h('p', 'This is the only time keyward shows this secret. It is not stored anywhere readable; if you lose it, generate a new key.'),
    code,
    h('div.actions',
      h('button', { type: 'button', onclick: async () => {
        try {
          await navigator.clipboard.writeText(secret);
          status.textContent = 'Copied.';
        } catch {
          const r = document.createRange();
          r.selectNodeContents(code);
          getSelection().removeAllRanges();
          getSelection().addRange(r);
          status.textContent = 'Selected: press Ctrl+C to copy.';
        }
      } }, 'Copy'),
      h('button.secondary', { type: 'button', onclick: () => panel.remove() }, 'I have stored it, hide it'),
      status));
  return panel;
}


export function errorBox(e) { return h('p.error', { role: 'alert' }, e.message || String(e)); }
