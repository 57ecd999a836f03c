// tokenmeter status page: reads the exporter's usage API and renders it. Hand-written, no build step.
// Every figure shown comes from /api/v1/usage and /api/v1/summary; money stays a decimal string (never a float).

const REFRESH_MILLIS = 5000;
const NEAR_RATIO = 0.8; // the NearXxxLimit alerts fire at 80 %, OverXxxLimit at 100 %
const TOKEN_TYPES = ['input', 'cache_read', 'cache_write', 'output', 'reasoning'];

const state = {
  users: [],
  summary: null,
  sortKey: 'max_ratio',
  sortDir: 'desc',
  plan: '',
  // The API bearer token, when the exporter has `api_token` set: given once as /#token=... and kept for this tab only.
  token: null,
};

const TOKEN_STORAGE_KEY = 'tokenmeter.apiToken';

/** Takes a token from the URL fragment (never sent to the server, unlike a query string) into sessionStorage. */
function readApiToken() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    try {
      sessionStorage.setItem(TOKEN_STORAGE_KEY, decodeURIComponent(m[1]));
    } catch {}
    // Keep the secret out of the address bar and the history.
    history.replaceState(null, '', location.pathname + location.search);
    return decodeURIComponent(m[1]);
  }
  try {
    return sessionStorage.getItem(TOKEN_STORAGE_KEY);
  } catch {
    return null;
  }
}

const $ = (sel) => document.querySelector(sel);

// ---------- formatting (exact: integers via toLocaleString, money by string rounding) ----------

export function formatInt(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : '—';
}

/** Rounds a non-negative decimal string half-up to `digits` places, by string arithmetic. */
export function roundDecimal(s, digits) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(s).trim());
  if (!m) return String(s);
  const [, sign, intPart, fracPart = ''] = m;
  if (fracPart.length <= digits) return sign + intPart + (digits ? '.' + fracPart.padEnd(digits, '0') : '');
  const keep = (intPart + fracPart.slice(0, digits)).split('').map(Number);
  if (Number(fracPart[digits]) >= 5) {
    let i = keep.length - 1;
    while (i >= 0) {
      if (keep[i] === 9) { keep[i] = 0; i--; } else { keep[i]++; break; }
    }
    if (i < 0) keep.unshift(1);
  }
  const all = keep.join('');
  const ip = all.slice(0, all.length - digits) || '0';
  const fp = all.slice(all.length - digits);
  const out = digits ? `${ip}.${fp}` : ip;
  return sign && /[1-9]/.test(out) ? sign + out : out;
}

/** "$12.35" for amounts of a dollar or more, "$0.0123" below (sub-cent LLM calls are common). */
export function formatUsd(s) {
  if (s === null || s === undefined) return '—';
  const abs = String(s).replace(/^-/, '');
  const big = /^\d+/.exec(abs) && Number(/^\d+/.exec(abs)[0]) >= 1;
  const rounded = roundDecimal(s, big ? 2 : 4);
  const [ip, fp] = rounded.replace(/^-/, '').split('.');
  const grouped = Number(ip).toLocaleString('en-US');
  return (rounded.startsWith('-') ? '-$' : '$') + grouped + (fp ? '.' + fp : '');
}

/** Compares two decimal strings exactly (for sorting money). */
export function compareDecimal(a, b) {
  const norm = (s) => {
    const [ip, fp = ''] = String(s ?? '0').split('.');
    return [ip.replace(/^0+(?=\d)/, ''), fp.replace(/0+$/, '')];
  };
  const [ai, af] = norm(a);
  const [bi, bf] = norm(b);
  if (ai.length !== bi.length) return ai.length - bi.length;
  if (ai !== bi) return ai < bi ? -1 : 1;
  const w = Math.max(af.length, bf.length);
  const ap = af.padEnd(w, '0');
  const bp = bf.padEnd(w, '0');
  return ap === bp ? 0 : ap < bp ? -1 : 1;
}

export function formatPercent(ratio) {
  return ratio === null || ratio === undefined ? '—' : `${Math.round(ratio * 100)}%`;
}

export function formatDuration(ms) {
  if (ms <= 0) return 'no time';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${s % 60}s`;
}

function level(ratio) {
  if (ratio === null || ratio === undefined) return 'none';
  if (ratio >= 1) return 'over';
  if (ratio >= NEAR_RATIO) return 'near';
  return 'ok';
}

// Characters that change how the text around them displays: C0/C1 controls and DEL, bidi marks, embeddings,
// overrides and isolates, zero-width characters, line and paragraph separators, the BOM, lone surrogates.
// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]|[\ud800-\udfff]/gu;
/** Longest id shown in full in a table cell; the full (escaped) id is in the cell's title. */
export const MAX_SHOWN_CHARS = 40;

/**
 * An untrusted string (a user id, a model name) as the page shows it: every character that could hide or reorder
 * the text (a bidi override making one id look like another, a control character) written as \u{XXXX}, backslashes
 * doubled so the escape cannot be faked, and cut to MAX_SHOWN_CHARS characters with an ellipsis. `title`: the whole
 * escaped string (shown on hover), or undefined when nothing was cut.
 */
export function displayText(s) {
  const escaped = String(s).replace(/\\/g, '\\\\').replace(INVISIBLE, (c) => `\\u{${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}}`);
  const chars = [...escaped];
  if (chars.length <= MAX_SHOWN_CHARS) return { text: escaped, title: undefined };
  return { text: `${chars.slice(0, MAX_SHOWN_CHARS - 1).join('')}…`, title: escaped };
}

// ---------- rendering (textContent only: user ids are untrusted input) ----------

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// Width through the CSSOM (not a style attribute) so a strict Content-Security-Policy allows it.
function fillDiv(ratio) {
  const fill = el('div', { class: 'fill' });
  fill.style.width = `${Math.min(ratio, 1) * 100}%`;
  return fill;
}

/** One "used / limit" cell with a bar; `used` and `limit` are display strings, `ratio` a number or null. */
function usageCell(kind, used, limit, ratio, rawUsed) {
  const lvl = level(ratio);
  const label = limit === null ? `${used} (no limit)` : `${used} of ${limit} (${formatPercent(ratio)})`;
  const children = [
    el('span', { class: 'figure' }, [
      el('span', { text: used, 'data-testid': `${kind}-used`, 'data-value': rawUsed }),
      el('span', { class: 'limit', text: limit === null ? ' · no limit' : ` / ${limit}`, 'data-testid': `${kind}-limit` }),
    ]),
  ];
  if (ratio !== null && ratio !== undefined) {
    children.push(
      el('div', {
        class: `bar ${lvl}`,
        role: 'progressbar',
        'aria-label': `${kind}: ${label}`,
        'aria-valuemin': '0',
        'aria-valuemax': '100',
        'aria-valuenow': String(Math.round(ratio * 100)),
        'data-testid': `${kind}-bar`,
      }, [fillDiv(ratio)]),
    );
  }
  return el('td', { class: `usage ${lvl}`, 'data-level': lvl }, children);
}

function sortValue(u, key) {
  switch (key) {
    case 'user': return u.user;
    case 'plan': return u.plan;
    case 'tokens': return u.tokens.total;
    case 'requests': return u.requests;
    case 'cost': return u.cost_usd;
    default: return u.max_ratio ?? -1;
  }
}

export function sortUsers(users, key, dir) {
  const sign = dir === 'asc' ? 1 : -1;
  return [...users].sort((a, b) => {
    const va = sortValue(a, key);
    const vb = sortValue(b, key);
    let c;
    if (key === 'cost') c = compareDecimal(va, vb);
    else if (typeof va === 'string') c = va.localeCompare(vb);
    else c = va - vb;
    return c * sign || a.user.localeCompare(b.user);
  });
}

function renderUsers() {
  const body = $('[data-testid=users-body]');
  const shown = sortUsers(state.users.filter((u) => !state.plan || u.plan === state.plan), state.sortKey, state.sortDir);
  body.replaceChildren(
    ...shown.map((u) =>
      el('tr', { 'data-testid': 'user-row', 'data-user': u.user, 'data-plan': u.plan }, [
        el('th', { scope: 'row', class: 'user', text: displayText(u.user).text, title: displayText(u.user).title, 'data-testid': 'user-name' }),
        el('td', { text: u.plan, 'data-testid': 'user-plan' }),
        usageCell('tokens', formatInt(u.tokens.total), u.limits.tokens === null ? null : formatInt(u.limits.tokens), u.ratios.tokens, String(u.tokens.total)),
        usageCell('requests', formatInt(u.requests), u.limits.requests === null ? null : formatInt(u.limits.requests), u.ratios.requests, String(u.requests)),
        usageCell('cost', formatUsd(u.cost_usd), u.limits.cost_usd === null ? null : formatUsd(u.limits.cost_usd), u.ratios.cost_usd, u.cost_usd),
        el('td', { class: `num ratio ${level(u.max_ratio)}`, text: formatPercent(u.max_ratio), 'data-testid': 'user-max-ratio' }),
      ]),
    ),
  );
  $('[data-testid=users-empty]').hidden = shown.length > 0;
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.setAttribute('aria-sort', th.dataset.sort === state.sortKey ? (state.sortDir === 'asc' ? 'ascending' : 'descending') : 'none');
  }
}

function renderPlanFilter() {
  const select = $('[data-testid=plan-filter]');
  const plans = [...new Set(state.users.map((u) => u.plan))].sort();
  if (state.plan && !plans.includes(state.plan)) plans.push(state.plan);
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join('\n') !== plans.join('\n')) {
    select.replaceChildren(el('option', { value: '', text: 'All plans' }), ...plans.map((p) => el('option', { value: p, text: p })));
    select.value = state.plan;
  }
}

function tokensTotal(t) {
  if (!t) return undefined;
  return typeof t.total === 'number' ? t.total : TOKEN_TYPES.reduce((s, k) => s + (t[k] ?? 0), 0);
}

function renderSummary() {
  const s = state.summary;
  if (!s) return;
  $('[data-testid=total-cost]').textContent = formatUsd(s.totals.cost_usd);
  $('[data-testid=total-tokens]').textContent = formatInt(tokensTotal(s.totals.tokens));
  $('[data-testid=total-requests]').textContent = formatInt(s.totals.requests);
  $('[data-testid=total-users]').textContent = formatInt(state.users.length);
  const start = new Date(s.period.start);
  const end = new Date(s.period.end);
  const fmt = (d) => d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  $('[data-testid=period-range]').textContent = `${fmt(start)} – ${fmt(end)}`;
  $('[data-testid=time-left]').textContent = formatDuration(end.getTime() - Date.now());

  const models = [...s.by_model].sort((a, b) => compareDecimal(b.cost_usd, a.cost_usd));
  $('[data-testid=models-body]').replaceChildren(
    ...models.map((m) =>
      el('tr', { 'data-testid': 'model-row', 'data-provider': m.provider, 'data-model': m.model }, [
        el('td', { text: displayText(m.provider).text, title: displayText(m.provider).title }),
        el('th', { scope: 'row', class: 'model', text: displayText(m.model).text, title: displayText(m.model).title }),
        ...TOKEN_TYPES.map((t) => el('td', { class: 'num', text: formatInt(m.tokens[t] ?? 0), 'data-testid': `model-${t}` })),
        el('td', { class: 'num', text: formatInt(m.requests), 'data-testid': 'model-requests' }),
        el('td', { class: 'num', text: formatUsd(m.cost_usd), 'data-testid': 'model-cost', 'data-value': m.cost_usd }),
      ]),
    ),
  );
  const providers = [...(s.by_provider ?? [])].sort((a, b) => compareDecimal(b.cost_usd, a.cost_usd));
  $('[data-testid=providers-body]').replaceChildren(
    ...providers.map((p) =>
      el('tr', { 'data-testid': 'provider-row', 'data-provider': p.provider }, [
        el('th', { scope: 'row', text: p.provider }),
        el('td', { class: 'num', text: formatInt(tokensTotal(p.tokens)), 'data-testid': 'provider-tokens' }),
        el('td', { class: 'num', text: formatInt(p.requests), 'data-testid': 'provider-requests' }),
        el('td', { class: 'num', text: formatUsd(p.cost_usd), 'data-testid': 'provider-cost', 'data-value': p.cost_usd }),
      ]),
    ),
  );
}

class AuthRequiredError extends Error {}

async function getJson(path) {
  const headers = { accept: 'application/json' };
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  const res = await fetch(path, { headers });
  if (res.status === 401) throw new AuthRequiredError(`${path}: HTTP 401`);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

async function refresh() {
  const status = $('[data-testid=status]');
  try {
    const [usage, summary] = await Promise.all([getJson('api/v1/usage'), getJson('api/v1/summary')]);
    state.users = usage.users;
    state.summary = summary;
    renderPlanFilter();
    renderUsers();
    renderSummary();
    status.textContent = `Updated ${new Date().toLocaleTimeString('en-GB')}`;
    status.classList.remove('error');
    document.body.dataset.loaded = 'true';
  } catch (err) {
    status.textContent =
      err instanceof AuthRequiredError
        ? `The usage API needs its bearer token (api_token): open this page as ${location.pathname}#token=<token>.`
        : `Cannot reach the usage API (${err.message}); retrying.`;
    status.classList.add('error');
  }
}

function init() {
  state.token = readApiToken();
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.querySelector('button').addEventListener('click', () => {
      const key = th.dataset.sort;
      if (state.sortKey === key) state.sortDir = state.sortDir === 'asc' ? 'desc' : 'asc';
      else {
        state.sortKey = key;
        state.sortDir = key === 'user' || key === 'plan' ? 'asc' : 'desc';
      }
      renderUsers();
    });
  }
  $('[data-testid=plan-filter]').addEventListener('change', (e) => {
    state.plan = e.target.value;
    renderUsers();
  });
  refresh();
  setInterval(refresh, REFRESH_MILLIS);
}

if (typeof document !== 'undefined') init();
