// app.js - the console's pages (SPEC §11), driven only by the /v1 API: credentials, one
// credential with both slots, the expiry timeline, renewals, policies, events, audit.
import { session, api, qs, h, clear, when, countdown, badge, can, ask, secretPanel,
  errorBox, setUnauthorizedHandler, parseDuration } from './lib.js';

const view = document.getElementById('view');
const PAGE = 50;
let policies = null; // name -> policy, cached per sign-in

async function policyMap(fresh) {
  if (!policies || fresh) {
    const r = await api('GET', '/v1/policies');
    policies = Object.fromEntries(r.items.map((p) => [p.name, p]));
  }
  return policies;
}

// ---- sign-in / out ----

function showSignin(message) {
  session.csrf = null;
  session.roles = [];
  policies = null;
  document.getElementById('top').hidden = true;
  clear(view);
  document.getElementById('signin').hidden = false;
  document.getElementById('signin-error').textContent = message || '';
  document.getElementById('signin-key').focus();
}

function adopt(s) {
  session.csrf = s.csrf_token;
  session.principal = s.principal;
  session.keyId = s.key_id;
  session.roles = s.roles;
  document.getElementById('signin').hidden = true;
  document.getElementById('top').hidden = false;
  document.getElementById('who').textContent = `${s.principal} · ${s.roles.join(', ')}`;
  for (const a of document.querySelectorAll('#nav a[data-role="audit"]')) a.parentElement.hidden = !can.audit();
}

document.getElementById('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = document.getElementById('signin-key');
  const key = input.value.trim();
  input.value = ''; // the key is sent once and kept nowhere
  const errEl = document.getElementById('signin-error');
  errEl.textContent = '';
  try {
    const r = await fetch('/console/api/session', { method: 'POST', credentials: 'same-origin',
      headers: { Authorization: 'Bearer ' + key, Accept: 'application/json' } });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.detail || `HTTP ${r.status}`);
    adopt(data);
    if (!location.hash || location.hash === '#/') location.hash = '#/credentials';
    else route();
  } catch (x) {
    errEl.textContent = x.message;
    input.focus();
  }
});

document.getElementById('signout').addEventListener('click', async () => {
  try { await api('DELETE', '/console/api/session'); } catch { /* ended anyway */ }
  showSignin('Signed out.');
});

setUnauthorizedHandler((detail) => showSignin(detail));

// ---- router ----

const routes = [
  [/^#\/credentials\/(cred_\w+)$/, credentialPage],
  [/^#\/credentials$/, credentialsPage],
  [/^#\/keys\/(key_\w+)$/, keyRedirect],
  [/^#\/expiring$/, expiringPage],
  [/^#\/renewals$/, renewalsPage],
  [/^#\/policies$/, policiesPage],
  [/^#\/events$/, eventsPage],
  [/^#\/audit$/, auditPage],
];

async function route() {
  if (!session.csrf) return;
  const hash = location.hash || '#/credentials';
  for (const a of document.querySelectorAll('#nav a')) {
    const cur = hash.startsWith('#/' + a.dataset.page);
    if (cur) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  for (const [re, fn] of routes) {
    const m = re.exec(hash);
    if (m) {
      clear(view);
      view.setAttribute('aria-busy', 'true');
      try {
        await fn(...m.slice(1));
      } catch (e) {
        if (session.csrf) view.append(errorBox(e));
      } finally {
        view.removeAttribute('aria-busy');
        performance.mark('kw:ready'); // rendered, handlers attached: the test's time to interactive
      }
      return;
    }
  }
  location.hash = '#/credentials';
}

window.addEventListener('hashchange', () => { route(); document.getElementById('main').focus(); });

function table(cols, rows, cls = 'responsive') {
  return h('div.table-wrap', h('table.' + cls,
    h('thead', h('tr', cols.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', rows.length ? rows.map((cells) => h('tr', cells.map((c, i) =>
      h('td', { 'data-label': cols[i] }, h('div', c))))) : h('tr', h('td', { colspan: cols.length }, h('span.muted', 'Nothing here.'))))));
}

// A paged list: load(cursor) -> {items, next}; render(items) -> a node. Previous pages'
// cursors are kept on a stack (the API pages forward only).
function pagedList(host, load, render) {
  const stack = [];
  let cur = null;
  const go = async (cursor, dir) => {
    let r;
    try {
      r = await load(cursor);
    } catch (e) {
      clear(host).append(errorBox(e));
      return;
    }
    if (dir === 'next') stack.push(cur);
    if (dir === 'prev') stack.pop();
    cur = cursor;
    clear(host).append(render(r.items), h('div.pager',
      h('button.secondary', { type: 'button', disabled: stack.length === 0,
        onclick: () => go(stack[stack.length - 1], 'prev') }, 'Previous page'),
      h('button.secondary', { type: 'button', disabled: !r.next, onclick: () => go(r.next, 'next') }, 'Next page'),
      h('span.muted', `${r.items.length} on this page`)));
  };
  return go(null, 'first');
}

// ---- credentials ----

function credStatus(c, pols) {
  if (c.disabled) return ['disabled', ''];
  const now = Date.now();
  const live = c.keys.filter((k) => k.state === 'active');
  const expiredSlot = [1, 2].some((s) => {
    const k = c.keys.find((x) => x.slot === s);
    return k && k.state === 'expired';
  });
  if (!live.length) return ['no usable key', 'bad'];
  if (expiredSlot) return ['one slot expired', 'bad'];
  const first = parseDuration(((pols[c.policy] || {}).alert_thresholds || ['30d'])[0]);
  if (live.some((k) => k.expires_at && new Date(k.expires_at) - now <= first)) return ['expiring', 'warn'];
  return ['healthy', 'ok'];
}

async function credentialsPage() {
  const pols = await policyMap();
  const f = { q: '', owner: '', policy: '', status: '' };
  const list = h('div');
  const search = h('input', { id: 'f-q', type: 'search', placeholder: 'name, id or owner' });
  const owner = h('input', { id: 'f-owner', type: 'text', placeholder: 'exact owner' });
  const policy = h('select', { id: 'f-policy' }, h('option', { value: '' }, 'any'),
    Object.keys(pols).map((p) => h('option', { value: p }, p)));
  const status = h('select', { id: 'f-status' }, ['', 'healthy', 'expiring', 'one slot expired', 'no usable key', 'disabled']
    .map((s) => h('option', { value: s }, s || 'any')));
  const match = (c) => {
    const q = f.q.toLowerCase();
    if (q && ![c.name, c.id, c.owner || ''].some((v) => v.toLowerCase().includes(q))) return false;
    if (f.policy && c.policy !== f.policy) return false;
    if (f.status && credStatus(c, pols)[0] !== f.status) return false;
    return true;
  };
  const render = (items) => {
    const shown = items.filter(match);
    return table(['Name', 'Owner', 'Policy', 'Status', 'Keys', 'Next expiry'], shown.map((c) => {
      const [st, kind] = credStatus(c, pols);
      const live = c.keys.filter((k) => k.state === 'active');
      const next = live.map((k) => k.expires_at).filter(Boolean).sort()[0];
      return [h('a', { href: `#/credentials/${c.id}` }, c.name), c.owner || h('span.muted', '—'), c.policy,
        badge(st, kind), `${live.length} usable`, next ? [when(next), ' ', countdown(next)] : h('span.muted', 'none')];
    }));
  };
  // The API filters by owner; search, policy and status are matched here, reading pages of
  // 200 until a page of matches is full or SCAN credentials have been read.
  const SCAN = 5000;
  const load = async (cursor) => {
    if (!f.q && !f.policy && !f.status) return api('GET', '/v1/credentials' + qs({ owner: f.owner, limit: PAGE, cursor }));
    const items = [];
    let next = cursor, scanned = 0;
    do {
      const r = await api('GET', '/v1/credentials' + qs({ owner: f.owner, limit: 200, cursor: next }));
      items.push(...r.items.filter(match));
      scanned += r.items.length;
      next = r.next;
    } while (next && items.length < PAGE && scanned < SCAN);
    return { items, next };
  };
  let timer;
  const reload = () => { clearTimeout(timer); timer = setTimeout(() => pagedList(list, load, render), 250); };
  search.addEventListener('input', () => { f.q = search.value.trim(); reload(); });
  policy.addEventListener('change', () => { f.policy = policy.value; reload(); });
  status.addEventListener('change', () => { f.status = status.value; reload(); });
  owner.addEventListener('change', () => { f.owner = owner.value.trim(); reload(); });
  view.append(h('h1', 'Credentials'),
    h('div.toolbar',
      h('div', h('label', { for: 'f-q' }, 'Search'), search),
      h('div', h('label', { for: 'f-owner' }, 'Owner'), owner),
      h('div', h('label', { for: 'f-policy' }, 'Policy'), policy),
      h('div', h('label', { for: 'f-status' }, 'Status'), status),
      can.write() ? h('button', { type: 'button', id: 'new-cred', onclick: () => createCredential(pols) }, 'New credential') : null),
    list);
  await pagedList(list, load, render);
}

async function createCredential(pols) {
  const r = await ask({ title: 'New credential', ok: 'Create', fields: [
    { name: 'name', label: 'Name', required: true },
    { name: 'owner', label: 'Owner', hint: 'Free text, e.g. an e-mail address.' },
    { name: 'policy', label: 'Policy', type: 'select', options: Object.keys(pols), value: 'default' },
    { name: 'scopes', label: 'Scopes', hint: 'Comma-separated, e.g. orders:read, orders:write' },
    { name: 'lifetime', label: 'First key lifetime', hint: 'e.g. 90d; empty: the policy default' },
  ], submit: (v) => api('POST', '/v1/credentials', {
    name: v.name, owner: v.owner || undefined, policy: v.policy,
    scopes: v.scopes ? v.scopes.split(',').map((s) => s.trim()).filter(Boolean) : [],
    lifetime: v.lifetime || undefined }) });
  if (!r) return;
  location.hash = `#/credentials/${r.credential.id}`;
  pendingSecret = { secret: r.secret, what: `New key ${r.key.hint} in slot ${r.key.slot}` };
}

let pendingSecret = null;
let pendingNotice = null;
let eventsFor = ''; // the Events page opens filtered on this credential when set

async function keyRedirect(id) {
  const k = await api('GET', `/v1/keys/${id}`);
  location.replace(`#/credentials/${k.credential_id}`);
}

async function credentialPage(id) {
  const [c, pols] = await Promise.all([api('GET', `/v1/credentials/${id}`), policyMap()]);
  const pol = pols[c.policy] || {};
  const [st, kind] = credStatus(c, pols);
  const reload = async (secret) => {
    if (secret) pendingSecret = secret;
    await route();
  };
  const act = (fn) => async () => {
    const r = await fn();
    if (r) await reload(r.secret ? { secret: r.secret, what: `New key ${r.key.hint} in slot ${r.key.slot}` } : null);
  };
  view.append(h('p', h('a', { href: '#/credentials' }, '← Credentials')),
    h('h1', c.name, ' ', badge(st, kind)));
  if (pendingNotice) {
    view.append(h('p.banner.info', { role: 'status' }, pendingNotice));
    pendingNotice = null;
  }
  if (pendingSecret) {
    view.append(secretPanel(pendingSecret.secret, pendingSecret.what));
    pendingSecret = null;
  }
  view.append(h('dl.facts',
    h('dt', 'Id'), h('dd.mono', c.id), h('dt', 'Owner'), h('dd', c.owner || '—'),
    h('dt', 'Policy'), h('dd', `${c.policy} (max lifetime ${pol.max_lifetime || '?'}, alerts ${(pol.alert_thresholds || []).join(', ')})`),
    h('dt', 'Scopes'), h('dd.mono', c.scopes.join(', ') || '—'),
    h('dt', 'Allowed networks'), h('dd.mono', c.allowed_cidrs.join(', ') || 'any'),
    h('dt', 'Contacts'), h('dd', c.contacts.map((x) => x.url || x.to || x.type).join(', ') || '—'),
    h('dt', 'Created'), h('dd', when(c.created_at)),
    h('dt', 'Events'), h('dd', h('a', { href: `#/events`, onclick: () => { eventsFor = c.id; } }, 'events and deliveries of this credential'))));
  const usable = c.keys.filter((k) => k.state === 'active');
  const slots = h('div.slots');
  for (const s of [1, 2]) {
    const k = c.keys.find((x) => x.slot === s && x.state === 'active') || c.keys.find((x) => x.slot === s);
    const card = h('section.card.slot', { 'aria-labelledby': `slot${s}-title` },
      h('h2', { id: `slot${s}-title` }, s === 1 ? 'Slot 1 · primary' : 'Slot 2 · secondary',
        k ? badge(k.state, { active: 'ok', expired: 'bad', revoked: '' }[k.state]) : badge('free')));
    if (k) {
      card.append(h('dl.facts',
        h('dt', 'Hint'), h('dd.mono', k.hint), h('dt', 'Key id'), h('dd.mono', k.id),
        h('dt', 'State'), h('dd', k.state, k.revoked_at ? [' (', k.revoke_reason || 'revoked', ')'] : ''),
        h('dt', 'Created'), h('dd', when(k.created_at)),
        h('dt', 'Expires'), h('dd', k.expires_at ? [when(k.expires_at), ' · ', countdown(k.expires_at)] : h('span.muted', 'never')),
        h('dt', 'Last used'), h('dd', when(k.last_used_at, 'never')),
        h('dt', 'Uses'), h('dd', String(k.use_count))));
    }
    const acts = h('div.actions');
    if (can.write() && !c.disabled) {
      if (k && k.state === 'active') {
        if (usable.length < 2) {
          acts.append(h('button', { type: 'button', onclick: act(() => ask({ title: `Roll ${k.hint}`, ok: 'Roll',
            text: 'A new key goes into the other slot; this key keeps working for the overlap, then expires.',
            fields: [{ name: 'overlap', label: 'Overlap', value: '24h', hint: `At most ${pol.max_roll_overlap || 'the policy maximum'}.` }],
            submit: (v) => api('POST', `/v1/keys/${k.id}/roll`, { overlap: v.overlap || undefined }) })) }, 'Roll with overlap'));
        }
        acts.append(h('button.secondary', { type: 'button', onclick: act(() => ask({ title: `Renew ${k.hint}`, ok: 'Renew',
          fields: [{ name: 'extend_by', label: 'Extend by', value: '90d' }, { name: 'reason', label: 'Reason' }],
          submit: async (v) => {
            const r = await api('POST', `/v1/keys/${k.id}/renew`, { extend_by: v.extend_by, reason: v.reason || undefined });
            pendingNotice = r.renewal
              ? `The policy needs an approver: renewal request ${r.renewal.id} is waiting on the Renewals page.`
              : `Renewed: ${k.hint} now expires ${new Date(r.key.expires_at).toLocaleString()}${r.capped ? ' (capped by the policy)' : ''}.`;
            return {};
          } })) }, 'Renew'));
        acts.append(h('button.danger', { type: 'button', onclick: act(() => ask({ title: `Invalidate ${k.hint}?`,
          ok: 'Invalidate now', danger: true,
          text: 'The key stops working at once, everywhere. This cannot be undone.',
          fields: [{ name: 'unused_for', label: 'Refuse if used within', value: '1h',
            hint: 'Safe cleanup after a rotation: refused if the key was used more recently than this. Empty: no guard.' },
          { name: 'reason', label: 'Reason' }],
          submit: (v) => api('POST', `/v1/keys/${k.id}/invalidate`, { unused_for: v.unused_for || undefined, reason: v.reason || undefined }) })) }, 'Invalidate'));
      } else if (usable.length < 2 && !usable.some((x) => x.slot === s)) {
        acts.append(h('button', { type: 'button', onclick: act(() => ask({ title: 'Generate a key', ok: 'Generate',
          text: 'A new key is made in the free slot. Its secret is shown once.',
          fields: [{ name: 'lifetime', label: 'Lifetime', hint: 'e.g. 90d; empty: the policy default' }],
          submit: (v) => api('POST', `/v1/credentials/${c.id}/keys`, { lifetime: v.lifetime || undefined }) })) },
        s === 2 ? 'Generate a secondary key' : 'Generate a key in this slot'));
      }
    }
    card.append(acts);
    slots.append(card);
  }
  view.append(slots);
  if (can.write()) {
    view.append(h('h2', 'Credential'), h('div.actions',
      h('button.secondary', { type: 'button', onclick: act(() => ask({ title: 'Edit access and contacts', ok: 'Save', fields: [
        { name: 'scopes', label: 'Scopes', value: c.scopes.join(', '), hint: 'Comma-separated.' },
        { name: 'cidrs', label: 'Allowed networks (CIDR)', value: c.allowed_cidrs.join(', '), hint: 'Comma-separated; empty: any address.' },
        { name: 'contacts', label: 'Contacts (JSON)', type: 'textarea', value: JSON.stringify(c.contacts),
          hint: '[{"type":"email","to":"a@b.c"}, {"type":"webhook","url":"https://…"}]' }],
      submit: (v) => {
        let contacts;
        try { contacts = JSON.parse(v.contacts || '[]'); } catch { throw new Error('Contacts must be JSON, e.g. [] or [{"type":"log"}]'); }
        const split = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
        return api('PATCH', `/v1/credentials/${c.id}`, { scopes: split(v.scopes), allowed_cidrs: split(v.cidrs), contacts });
      } })) }, 'Edit scopes, networks, contacts'),
      c.disabled
        ? h('button', { type: 'button', onclick: act(() => api('PATCH', `/v1/credentials/${c.id}`, { disabled: false })) }, 'Enable')
        : h('button.danger', { type: 'button', onclick: act(() => ask({ title: `Disable ${c.name}?`, danger: true, ok: 'Disable',
          text: 'Every key of this credential stops verifying until it is enabled again.',
          submit: () => api('PATCH', `/v1/credentials/${c.id}`, { disabled: true }) })) }, 'Disable')));
  }
  const old = c.keys.filter((k) => !(k.state === 'active') && !(c.keys.find((x) => x.slot === k.slot) === k));
  if (old.length) {
    view.append(h('h2', 'Earlier keys'), table(['Hint', 'Slot', 'State', 'Created', 'Expired / revoked', 'Uses'],
      old.map((k) => [h('span.mono', k.hint), String(k.slot), k.state, when(k.created_at), when(k.revoked_at || k.expires_at), String(k.use_count)])));
  }
}

// ---- expiring ----

async function expiringPage() {
  const pols = await policyMap();
  const credPolicy = {}; // /v1/expiring names the credential, not its policy
  const now = Date.now(), span = 90 * 86400e3;
  const pct = (t) => `${Math.max(0, Math.min(100, ((t - now) / span) * 100))}%`;
  const axis = h('div.tl-axis', { 'aria-hidden': 'true' });
  for (let d = 0; d <= 90; d += 15) {
    const s = h('span', d === 0 ? 'today' : `+${d} d`);
    s.style.left = `${(d / 90) * 100}%`;
    axis.append(s);
  }
  const row = (k) => {
    const exp = new Date(k.expires_at).getTime();
    const track = h('div.tl-track', { role: 'img', 'aria-label': `expires ${new Date(k.expires_at).toLocaleString()}` });
    for (let d = 15; d < 90; d += 15) { const g = h('div.tl-grid'); g.style.left = `${(d / 90) * 100}%`; track.append(g); }
    const fill = h('div.tl-fill'); fill.style.width = pct(exp); track.append(fill);
    for (const t of ((pols[credPolicy[k.credential_id]] || pols.default || {}).alert_thresholds || [])) {
      const at = exp - parseDuration(t);
      if (at > now) { const tick = h('div.tl-tick', { title: `${t} alert` }); tick.style.left = pct(at); track.append(tick); }
    }
    const dot = h('div.tl-dot', { title: new Date(k.expires_at).toISOString() }); dot.style.left = pct(exp); track.append(dot);
    return h('div.tl-row',
      h('div', h('a', { href: `#/credentials/${k.credential_id}` }, k.credential_name || k.credential_id), ' ',
        h('span.mono.muted', `${k.hint} · slot ${k.slot}`), h('br'), when(k.expires_at), ' · ', countdown(k.expires_at),
        credPolicy[k.credential_id] ? h('span.muted', ` · ${credPolicy[k.credential_id]}`) : ''),
      track);
  };
  // a page of 50 keys, soonest first; their credentials' policies read 8 at a time
  const load = async (cursor) => {
    const r = await api('GET', '/v1/expiring' + qs({ within: '90d', limit: PAGE, cursor }));
    const ids = [...new Set(r.items.map((k) => k.credential_id))].filter((id) => !(id in credPolicy));
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let id; (id = ids.pop());) {
        try { credPolicy[id] = (await api('GET', `/v1/credentials/${id}`)).policy; } catch { credPolicy[id] = null; }
      }
    }));
    return r;
  };
  const render = (items) => h('div.timeline', h('div.tl-row', h('div'), axis),
    items.length ? items.map(row) : h('p.muted', 'Nothing expires in the next 90 days.'));
  const list = h('div');
  view.append(h('h1', 'Expiring in the next 90 days'),
    h('p.muted', 'Usable keys, soonest first, on a line from today to 90 days ahead.'),
    h('div.legend', h('span', h('i.l-dot'), 'expiry'), h('span', h('i.l-tick'), 'alert thresholds of the key\'s policy')),
    list);
  await pagedList(list, load, render);
}

// ---- renewals ----

async function renewalsPage() {
  const sel = h('select', { id: 'r-state' }, ['pending', 'approved', 'rejected', 'cancelled', ''].map((s) =>
    h('option', { value: s }, s || 'any state')));
  const list = h('div');
  const decide = (r, verb) => async () => {
    const done = await ask({ title: `${verb === 'approve' ? 'Approve' : 'Reject'} renewal ${r.id}?`, ok: verb === 'approve' ? 'Approve' : 'Reject',
      danger: verb === 'reject', fields: [{ name: 'note', label: 'Note', hint: 'Kept in the audit trail and shown to the requester.' }],
      submit: (v) => api('POST', `/v1/renewals/${r.id}/${verb}`, { note: v.note || undefined }) });
    if (done) load();
  };
  const render = (items) => table(['Request', 'Key', 'Asked', 'Reason', 'Requested by', 'State', 'Decision'], items.map((r) => [
    [h('span.mono', r.id), h('br'), when(r.created_at)],
    h('a.mono', { href: `#/keys/${r.key_id}` }, r.key_id),
    r.extend_by ? `extend by ${r.extend_by}` : ['until ', when(r.expires_at)],
    r.reason || h('span.muted', '—'),
    h('span.mono', r.requested_by, r.requested_by === session.principal ? ' (you)' : ''),
    badge(r.state, { pending: 'warn', approved: 'ok', rejected: 'bad' }[r.state]),
    r.state !== 'pending'
      ? [r.decided_by || '', r.decided_at ? [' · ', when(r.decided_at)] : '', r.note ? [h('br'), r.note] : '']
      : !can.decide() ? h('span.muted', 'needs an approver')
        : r.requested_by === session.principal ? h('span.muted', 'Your own request: another approver must decide.')
          : h('div.actions', h('button', { type: 'button', onclick: decide(r, 'approve') }, 'Approve'),
            h('button.danger', { type: 'button', onclick: decide(r, 'reject') }, 'Reject')),
  ]));
  const load = () => pagedList(list, (cursor) => api('GET', '/v1/renewals' + qs({ state: sel.value, limit: PAGE, cursor })), render);
  sel.addEventListener('change', load);
  view.append(h('h1', 'Renewals'), h('div.toolbar', h('div', h('label', { for: 'r-state' }, 'State'), sel)), list);
  await load();
}

// ---- policies ----

const POLICY_FIELDS = [
  ['default_lifetime', 'Default lifetime'], ['max_lifetime', 'Maximum lifetime'], ['max_roll_overlap', 'Maximum roll overlap'],
  ['alert_thresholds', 'Alert thresholds'], ['allow_never_expire', 'Keys may never expire'], ['renewable', 'Renewable'],
  ['renewal_requires_approval', 'Renewal needs approval']];

function policyForm(p, create) {
  const fields = create ? [{ name: 'name', label: 'Name', required: true }] : [];
  for (const [k, label] of POLICY_FIELDS) {
    const v = p[k];
    if (typeof v === 'boolean') fields.push({ name: k, label, type: 'checkbox', value: v });
    else fields.push({ name: k, label, value: Array.isArray(v) ? v.join(', ') : v ?? '', hint: k === 'alert_thresholds' ? 'Comma-separated, strictly decreasing, e.g. 30d, 14d, 7d, 1d' : null });
  }
  return fields;
}

function policyBody(v) {
  const b = { ...v };
  if (typeof b.alert_thresholds === 'string') b.alert_thresholds = b.alert_thresholds.split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of Object.keys(b)) if (b[k] === '') delete b[k];
  return b;
}

async function policiesPage() {
  const pols = await policyMap(true);
  view.append(h('h1', 'Policies'));
  if (can.policy()) {
    view.append(h('div.toolbar', h('button', { type: 'button', onclick: async () => {
      if (await ask({ title: 'New policy', ok: 'Create', fields: policyForm(pols.default || {}, true),
        submit: (v) => api('POST', '/v1/policies', policyBody(v)) })) route();
    } }, 'New policy')));
  }
  view.append(table(['Name', ...POLICY_FIELDS.map((f) => f[1]), ''], Object.values(pols).map((p) => [
    h('strong', p.name), ...POLICY_FIELDS.map(([k]) => typeof p[k] === 'boolean' ? (p[k] ? 'yes' : 'no') : Array.isArray(p[k]) ? p[k].join(', ') : p[k]),
    can.policy() ? h('button.secondary', { type: 'button', onclick: async () => {
      if (await ask({ title: `Edit policy ${p.name}`, ok: 'Save', fields: policyForm(p, false),
        submit: (v) => api('PATCH', `/v1/policies/${encodeURIComponent(p.name)}`, policyBody(v)) })) route();
    } }, 'Edit') : '',
  ])));
}

// ---- events ----

async function eventsPage() {
  const type = h('select', { id: 'e-type' }, ['', 'key.created', 'key.rolled', 'key.renewed', 'key.invalidated', 'key.expiring', 'key.expired',
    'renewal.requested', 'renewal.approved', 'renewal.rejected'].map((t) => h('option', { value: t }, t || 'any type')));
  const cred = h('input', { id: 'e-cred', placeholder: 'cred_…', value: eventsFor });
  eventsFor = '';
  const list = h('div');
  const render = (items) => table(['Event', 'Credential / key', 'Deliveries', ''], items.map((e) => {
    const retryable = (e.deliveries || []).some((d) => ['failed', 'disabled', 'cancelled'].includes(d.state));
    return [
      [h('strong', e.type), h('br'), when(e.occurred_at), h('br'), h('span.mono.muted', e.id)],
      [e.credential_id ? h('a.mono', { href: `#/credentials/${e.credential_id}` }, e.credential_id) : '—', h('br'), h('span.mono', e.hint || '')],
      (e.deliveries || []).length ? h('ul.dl-list', e.deliveries.map((d) => h('li',
        badge(d.state, { delivered: 'ok', pending: 'warn', sending: 'warn', failed: 'bad', disabled: 'bad' }[d.state]), ' ',
        h('span.mono', d.channel), ` · ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`,
        d.last_error ? [' · last error: ', d.last_error] : '',
        d.delivered_at ? [' · delivered ', when(d.delivered_at)] : d.next_attempt_at && d.state === 'pending' ? [' · next ', when(d.next_attempt_at)] : ''))) : h('span.muted', 'no channel'),
      retryable && can.write() ? h('button.secondary', { type: 'button', onclick: async (ev) => {
        const b = ev.currentTarget;
        try { await api('POST', `/v1/events/${e.id}/retry`, {}); load(); } catch (x) { b.after(errorBox(x)); }
      } }, 'Retry') : '',
    ];
  }));
  const load = () => pagedList(list, (cursor) => api('GET', '/v1/events' + qs({ type: type.value, credential_id: cred.value.trim(), limit: PAGE, cursor })), render);
  type.addEventListener('change', load);
  cred.addEventListener('change', load);
  view.append(h('h1', 'Events and deliveries'), h('div.toolbar', h('div', h('label', { for: 'e-type' }, 'Type'), type),
    h('div', h('label', { for: 'e-cred' }, 'Credential'), cred)), list);
  await load();
}

// ---- audit ----

async function auditPage() {
  if (!can.audit()) {
    view.append(h('h1', 'Audit'), h('p', 'Reading the audit trail needs the auditor or admin role.'));
    return;
  }
  const v = await api('GET', '/v1/audit/verify');
  const actor = h('input', { id: 'a-actor', placeholder: 'cred_… or system' });
  const target = h('input', { id: 'a-target', placeholder: 'cred_…, key_…, ren_… or policy' });
  const list = h('div');
  const render = (items) => table(['#', 'When', 'Actor', 'Action', 'Target', 'Outcome', 'Detail'], items.map((r) => [
    String(r.seq), when(r.at), h('span.mono', r.actor), r.action, r.target ? h('span.mono', r.target) : '—',
    badge(r.outcome, r.outcome === 'ok' ? 'ok' : 'bad'), r.detail ? h('pre.detail', JSON.stringify(r.detail)) : '']));
  const load = () => pagedList(list, (cursor) => api('GET', '/v1/audit' + qs({ actor: actor.value.trim(), target: target.value.trim(), limit: PAGE, cursor })), render);
  actor.addEventListener('change', load);
  target.addEventListener('change', load);
  view.append(h('h1', 'Audit trail'),
    v.ok
      ? h('p.banner.ok', { id: 'chain', role: 'status' }, `Chain valid: ${v.records} records, head ${(v.head || '').slice(0, 16)}…`)
      : h('p.banner.bad', { id: 'chain', role: 'alert' }, `Chain broken at record #${v.first_bad}: ${v.reason}. ${v.records} records checked.`),
    h('div.toolbar', h('div', h('label', { for: 'a-actor' }, 'Actor'), actor), h('div', h('label', { for: 'a-target' }, 'Target'), target)),
    list);
  await load();
}

// ---- start ----

(async () => {
  try {
    const s = await api('GET', '/console/api/session');
    if (s && s.signed_in) {
      adopt(s);
      await route();
      return;
    }
  } catch (e) {
    showSignin(e.message);
    return;
  }
  showSignin();
})();
