// tokenmeter status page: reads the exporter's usage API and renders it. Hand-written, no build step.
// Every figure shown comes from /api/v1/usage and /api/v1/summary; money stays a decimal string (never a float).

const REFRESH_MILLIS = 5000;
const NEAR_RATIO = 0.8; // the NearXxxLimit alerts fire at 80 %, OverXxxLimit at 100 %
const TOKEN_TYPES = ['input', 'cache_read', 'cache_write', 'output', 'reasoning'];

const state = {
  users: [],
  // The API's count of users with usage this period (the list it returns is capped, by default at 1,000).
  total: 0,
  // Every plan with usage this period (from the API: the capped list may not show them all).
  plans: [],
  // The API's own list for the selected plan ({ plan, users, total }), fetched when the full list is capped.
  planList: null,
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

/**
 * A cost as shown: unpriced usage is never "$0". `cost` is the API's cost_usd (null when every request of the
 * figure had no price), `unpriced` its unpriced_requests.
 */
export function formatCost(cost, unpriced) {
  if (cost === null || cost === undefined) return unpriced > 0 ? 'unpriced' : '—';
  return unpriced > 0 ? `${formatUsd(cost)} + unpriced` : formatUsd(cost);
}

function unpricedTitle(unpriced) {
  return `${formatInt(unpriced)} request${unpriced === 1 ? '' : 's'} of a model with no price: tokens counted, cost unknown (not $0)`;
}

/** A cost cell's text node, marked when part or all of it is unpriced. */
function costSpan(cost, unpriced, attrs = {}) {
  const marked = unpriced > 0;
  return el('span', {
    ...attrs,
    text: formatCost(cost, unpriced),
    class: marked ? 'unpriced' : undefined,
    title: marked ? unpricedTitle(unpriced) : undefined,
    'data-value': cost ?? '',
    'data-unpriced': String(unpriced ?? 0),
  });
}

// ---------- alerts (the same rules as the Prometheus / Grafana ones in src/dashboards/alerts.ts) ----------

// The per-user limit rules: name, the usage-API ratio they watch, thresholds, severity. The demo's terminal view
// derives the same table from the alert definitions (src/demo/alerts.ts); test/demo/status-page-format.test.ts
// checks that the two agree.
export const LIMIT_ALERT_RULES = [
  { name: 'TokenmeterUserNearTokenLimit', measure: 'tokens', minRatio: NEAR_RATIO, maxRatio: 1, severity: 'info' },
  { name: 'TokenmeterUserOverTokenLimit', measure: 'tokens', minRatio: 1, maxRatio: Infinity, severity: 'warning' },
  { name: 'TokenmeterUserNearRequestLimit', measure: 'requests', minRatio: NEAR_RATIO, maxRatio: 1, severity: 'info' },
  { name: 'TokenmeterUserOverRequestLimit', measure: 'requests', minRatio: 1, maxRatio: Infinity, severity: 'warning' },
  { name: 'TokenmeterUserNearBudget', measure: 'cost_usd', minRatio: NEAR_RATIO, maxRatio: 1, severity: 'info' },
  { name: 'TokenmeterUserOverBudget', measure: 'cost_usd', minRatio: 1, maxRatio: Infinity, severity: 'warning' },
];
export const UNPRICED_MODEL_ALERT = { name: 'TokenmeterUnpricedModel', severity: 'warning' };
const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
const MAX_ALERTS_SHOWN = 50;

/** The limit alerts firing for these users: most severe first, then the most over. */
export function firingAlerts(users, rules = LIMIT_ALERT_RULES) {
  const out = [];
  for (const u of users) {
    for (const r of rules) {
      const ratio = u.ratios?.[r.measure];
      if (ratio === null || ratio === undefined) continue;
      if (ratio >= r.minRatio && ratio < r.maxRatio) out.push({ name: r.name, severity: r.severity, user: u.user, plan: u.plan, measure: r.measure, ratio });
    }
  }
  return out.sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || b.ratio - a.ratio);
}

/** Models with unpriced usage this period, most unpriced requests first. */
export function unpricedModels(byModel) {
  return (byModel ?? []).filter((m) => m.unpriced_requests > 0).sort((a, b) => b.unpriced_requests - a.unpriced_requests || b.tokens.total - a.tokens.total);
}

const MEASURE_LABEL = { tokens: 'tokens', requests: 'requests', cost_usd: 'cost budget' };

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
function usageCell(kind, used, limit, ratio, rawUsed, unpriced = 0) {
  const lvl = level(ratio);
  const label = limit === null ? `${used} (no limit)` : `${used} of ${limit} (${formatPercent(ratio)})`;
  const children = [
    el('span', { class: 'figure' }, [
      el('span', {
        text: used,
        'data-testid': `${kind}-used`,
        'data-value': rawUsed,
        ...(unpriced > 0 ? { class: 'unpriced', title: unpricedTitle(unpriced), 'data-unpriced': String(unpriced) } : {}),
      }),
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

function renderAlerts() {
  const limit = firingAlerts(state.users);
  const unpriced = unpricedModels(state.summary?.by_model);
  // The list is the API's top users by highest use: past its end more users may be near a limit.
  const last = state.users[state.users.length - 1];
  const partial = state.total > state.users.length && last && (last.max_ratio ?? 0) >= NEAR_RATIO;
  const items = [
    ...unpriced.map((m) =>
      el('li', { class: UNPRICED_MODEL_ALERT.severity, 'data-testid': 'alert', 'data-alert': UNPRICED_MODEL_ALERT.name }, [
        el('span', { class: 'sev', text: UNPRICED_MODEL_ALERT.severity }),
        el('span', { class: 'name', text: UNPRICED_MODEL_ALERT.name }),
        el('span', {
          text:
            `${m.provider}/${m.model} has no price: ` +
            (m.cost_usd === null
              ? `${formatInt(m.requests)} request${m.requests === 1 ? '' : 's'}, ${formatInt(m.tokens.total)} tokens this period, cost unknown`
              : `${formatInt(m.unpriced_requests)} of its ${formatInt(m.requests)} requests this period`),
        }),
      ]),
    ),
    ...limit.slice(0, MAX_ALERTS_SHOWN).map((a) =>
      el('li', { class: a.severity, 'data-testid': 'alert', 'data-alert': a.name, 'data-user': a.user }, [
        el('span', { class: 'sev', text: a.severity }),
        el('span', { class: 'name', text: a.name }),
        el('span', { class: 'user', text: a.user, 'data-testid': 'alert-user' }),
        el('span', { text: ` (${a.plan}): ${MEASURE_LABEL[a.measure]} at ${formatPercent(a.ratio)} of the limit` }),
      ]),
    ),
  ];
  if (limit.length > MAX_ALERTS_SHOWN) items.push(el('li', { class: 'muted', text: `… and ${formatInt(limit.length - MAX_ALERTS_SHOWN)} more` }));
  $('[data-testid=alerts-list]').replaceChildren(...items);
  const count = limit.length + unpriced.length;
  $('[data-testid=alerts-count]').textContent = `(${partial ? 'at least ' : ''}${formatInt(count)})`;
  $('[data-testid=alerts-empty]').hidden = count > 0;
}

/** The users the table shows and how many there are in all: the API's per-plan list when the full list is capped. */
function usersToShow() {
  if (!state.plan) return { users: state.users, total: state.total };
  if (state.planList?.plan === state.plan) return { users: state.planList.users, total: state.planList.total };
  const users = state.users.filter((u) => u.plan === state.plan);
  // Until the per-plan list arrives, a capped list gives only a lower bound.
  return { users, total: state.total > state.users.length ? null : users.length };
}

/**
 * Admission control: calls refused before they were sent (over a limit) this period, under the requests figure.
 * Counted by the exporter process answering the page since it started.
 */
function withRefused(cell, refused) {
  if (!(refused > 0)) return cell;
  cell.append(
    el('span', {
      class: 'refused',
      text: ` · ${formatInt(refused)} refused`,
      title: `${formatInt(refused)} call${refused === 1 ? '' : 's'} refused before they were sent (over a limit), counted by this exporter since it started`,
      'data-testid': 'user-refused',
    }),
  );
  return cell;
}

function renderUsers() {
  const body = $('[data-testid=users-body]');
  const list = usersToShow();
  const shown = sortUsers(list.users, state.sortKey, state.sortDir);
  body.replaceChildren(
    ...shown.map((u) =>
      el('tr', { 'data-testid': 'user-row', 'data-user': u.user, 'data-plan': u.plan }, [
        el('th', { scope: 'row', class: 'user', text: displayText(u.user).text, title: displayText(u.user).title, 'data-testid': 'user-name' }),
        el('td', { text: u.plan, 'data-testid': 'user-plan' }),
        usageCell('tokens', formatInt(u.tokens.total), u.limits.tokens === null ? null : formatInt(u.limits.tokens), u.ratios.tokens, String(u.tokens.total)),
        withRefused(usageCell('requests', formatInt(u.requests), u.limits.requests === null ? null : formatInt(u.limits.requests), u.ratios.requests, String(u.requests)), u.refused_calls),
        usageCell('cost', formatCost(u.cost_usd, u.unpriced_requests), u.limits.cost_usd === null ? null : formatUsd(u.limits.cost_usd), u.ratios.cost_usd, u.cost_usd ?? '', u.unpriced_requests),
        el('td', { class: `num ratio ${level(u.max_ratio)}`, text: formatPercent(u.max_ratio), 'data-testid': 'user-max-ratio' }),
      ]),
    ),
  );
  $('[data-testid=users-empty]').hidden = shown.length > 0;
  const truncated = $('[data-testid=users-truncated]');
  const onPlan = state.plan ? ` on plan ${state.plan}` : '';
  truncated.hidden = list.total !== null && list.total <= list.users.length;
  truncated.textContent = truncated.hidden
    ? ''
    : list.total === null
      ? `Showing the ${formatInt(list.users.length)} users${onPlan} among the top ${formatInt(state.users.length)}; loading the others…`
      : `Showing the top ${formatInt(list.users.length)} of ${formatInt(list.total)} users${onPlan}, closest to a limit first; sorting applies to these. ` +
        'The usage API has every user: /api/v1/usage?plan=…&limit=…, /api/v1/usage/{user}.';
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.setAttribute('aria-sort', th.dataset.sort === state.sortKey ? (state.sortDir === 'asc' ? 'ascending' : 'descending') : 'none');
  }
}

function renderPlanFilter() {
  const select = $('[data-testid=plan-filter]');
  const plans = [...new Set([...state.plans, ...state.users.map((u) => u.plan)])].sort();
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
  const unpriced = s.totals.unpriced_requests ?? 0;
  $('[data-testid=total-cost]').textContent = s.totals.cost_usd === null ? 'unpriced' : formatUsd(s.totals.cost_usd);
  const costNote = $('[data-testid=total-cost-note]');
  costNote.hidden = unpriced === 0;
  costNote.textContent = unpriced === 0 ? '' : `+ ${formatInt(unpriced)} unpriced request${unpriced === 1 ? '' : 's'} (cost unknown)`;
  $('[data-testid=total-tokens]').textContent = formatInt(tokensTotal(s.totals.tokens));
  $('[data-testid=total-requests]').textContent = formatInt(s.totals.requests);
  // The API's total, not the length of the (capped) list it returned.
  $('[data-testid=total-users]').textContent = formatInt(state.total);
  const usersNote = $('[data-testid=total-users-note]');
  usersNote.hidden = state.total <= state.users.length;
  usersNote.textContent = usersNote.hidden ? '' : `top ${formatInt(state.users.length)} of ${formatInt(state.total)} listed`;
  const start = new Date(s.period.start);
  const end = new Date(s.period.end);
  const fmt = (d) => d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  $('[data-testid=period-range]').textContent = `${fmt(start)} – ${fmt(end)}`;
  $('[data-testid=time-left]').textContent = formatDuration(end.getTime() - Date.now());

  const models = [...s.by_model].sort((a, b) => compareDecimal(b.cost_usd ?? '0', a.cost_usd ?? '0'));
  $('[data-testid=models-body]').replaceChildren(
    ...models.map((m) =>
      el('tr', { 'data-testid': 'model-row', 'data-provider': m.provider, 'data-model': m.model }, [
        el('td', { text: displayText(m.provider).text, title: displayText(m.provider).title }),
        el('th', { scope: 'row', class: 'model', text: displayText(m.model).text, title: displayText(m.model).title }),
        ...TOKEN_TYPES.map((t) => el('td', { class: 'num', text: formatInt(m.tokens[t] ?? 0), 'data-testid': `model-${t}` })),
        el('td', { class: 'num', text: formatInt(m.requests), 'data-testid': 'model-requests' }),
        el('td', { class: 'num' }, [costSpan(m.cost_usd, m.unpriced_requests ?? 0, { 'data-testid': 'model-cost' })]),
      ]),
    ),
  );
  const providers = [...(s.by_provider ?? [])].sort((a, b) => compareDecimal(b.cost_usd ?? '0', a.cost_usd ?? '0'));
  $('[data-testid=providers-body]').replaceChildren(
    ...providers.map((p) =>
      el('tr', { 'data-testid': 'provider-row', 'data-provider': p.provider }, [
        el('th', { scope: 'row', text: p.provider }),
        el('td', { class: 'num', text: formatInt(tokensTotal(p.tokens)), 'data-testid': 'provider-tokens' }),
        el('td', { class: 'num', text: formatInt(p.requests), 'data-testid': 'provider-requests' }),
        el('td', { class: 'num' }, [costSpan(p.cost_usd, p.unpriced_requests ?? 0, { 'data-testid': 'provider-cost' })]),
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

/** The API's list for one plan: with the full list capped, the plan's users may not be in it at all. */
async function loadPlanList(plan) {
  const usage = await getJson(`api/v1/usage?plan=${encodeURIComponent(plan)}`);
  state.planList = { plan, users: usage.users, total: typeof usage.total === 'number' ? usage.total : usage.users.length };
}

async function refresh() {
  const status = $('[data-testid=status]');
  try {
    const [usage, summary] = await Promise.all([getJson('api/v1/usage'), getJson('api/v1/summary')]);
    state.users = usage.users;
    state.total = typeof usage.total === 'number' ? usage.total : usage.users.length;
    state.plans = Array.isArray(usage.plans) ? usage.plans : [];
    state.summary = summary;
    if (state.plan && state.total > state.users.length) await loadPlanList(state.plan);
    renderPlanFilter();
    renderUsers();
    renderSummary();
    renderAlerts();
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
    const plan = e.target.value;
    state.plan = plan;
    renderUsers();
    if (plan && state.total > state.users.length) {
      loadPlanList(plan).then(
        () => {
          if (state.plan === plan) renderUsers();
        },
        () => {}, // the next refresh tries again and reports
      );
    }
  });
  refresh();
  setInterval(refresh, REFRESH_MILLIS);
}

if (typeof document !== 'undefined') init();
