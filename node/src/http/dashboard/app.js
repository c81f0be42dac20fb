// The jobd dashboard: a client of the node's HTTP tree, as curl is. It
// reads /ctl and /jobs/ (JSON), follows a job's log, and writes ctl verbs;
// the node checks every request as it checks curl's. No framework: the
// page must work from the binary alone, on a machine with no internet.
'use strict';

const ROW = 28;            // px per job row, as .row's height in style.css
const FIRST_PAGE = 200;    // jobs asked for first, so a row shows at once
const PAGE = 5000;         // jobs per request after that
const LOG_KEEP = 64 << 10; // characters of a log kept on the page
const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem('jobd-token') || '';
let jobs = [];        // every job, as the last complete listing gave it
let shown = [];       // the jobs that pass the filters, in name order
let selected = null;  // the job in the side panel
let following = null; // aborts the side panel's log stream
let listEvery = 5000; // ms between listings: more with many jobs

class HttpError extends Error {
  constructor(status, reason) { super(reason); this.status = status; }
}

// One request to the tree. Refusals throw with the node's one-line reason.
async function call(method, path, { body, json, signal } = {}) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (json) headers.Accept = 'application/json';
  const r = await fetch(path, { method, headers, body, signal, cache: 'no-store' });
  if (r.ok) return r;
  const reason = (await r.text()).trim() || r.statusText;
  if (r.status === 401) askToken(reason);
  throw new HttpError(r.status, reason);
}

const jobPath = (name, file = '') => '/jobs/' + encodeURIComponent(name) + '/' + file;

function note(text, error = false) {
  const n = $('note');
  n.textContent = text;
  n.className = error ? 'error' : '';
}

function askToken(why) {
  $('login-why').textContent = why;
  $('login').hidden = false;
  $('token').focus();
}

function keyValues(text) {
  const kv = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0) kv[line.slice(0, i)] = line.slice(i + 1);
  }
  return kv;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

// A run that ended any way but exit 0. Not yet run, pending or running
// is not a failure.
function failed(status) {
  return !!status && !['-', 'exit 0', 'pending', 'running'].includes(status);
}

// --- the cluster --------------------------------------------------------

async function loadCluster() {
  const box = $('cluster');
  try {
    const kv = keyValues(await (await call('GET', '/ctl')).text());
    box.textContent = '';
    box.dataset.leader = kv.leader;
    box.dataset.node = kv.id;
    // Each peer's clock against this node's, and how long since it was heard.
    const byPeer = (v) => Object.fromEntries((v || '-').split(',').filter((p) => p.includes('=')).map((p) => p.split('=')));
    const clock = byPeer(kv['peer-clock-ms']);
    const heard = byPeer(kv['peer-heard-ms']);
    const members = el('span');
    members.append('members ');
    // What this node can tell of each peer: the leader hears from every
    // follower, a follower only from the leader (followers do not talk to
    // each other, so another follower's silence here says nothing).
    const leaderHere = kv.leader === kv.id;
    for (const id of kv.members.split(',')) {
      const here = id === kv.id;
      const judged = !here && (leaderHere || id === kv.leader);
      // Quiet for over 5 s (or never heard): this node cannot reach it.
      const quiet = judged && !(Number(heard[id]) < 5000);
      const cls = 'member' + (id === kv.leader ? ' leader' : '') + (here ? ' here' : '') + (quiet ? ' quiet' : '');
      const m = el('span', id, cls);
      m.dataset.id = id;
      let about = (id === kv.leader ? 'leader' : 'follower') + (here ? ', this node' : '');
      if (judged) {
        if (clock[id] !== undefined) about += `; clock ${clock[id] >= 0 ? '+' : ''}${clock[id]} ms against this node's`;
        about += heard[id] === undefined ? '; never heard from' : `; heard ${(heard[id] / 1000).toFixed(1)} s ago`;
        const off = clock[id] === undefined ? '?' : `${clock[id] >= 0 ? '+' : ''}${clock[id]} ms`;
        m.append(el('small', quiet ? ' unreachable' : ' ' + off));
      } else if (!here) {
        about += '; a follower hears only from the leader: the leader\'s dashboard shows this member';
      }
      m.title = about;
      members.append(m, ' ');
    }
    const item = (label, value) => { const s = el('span'); s.append(label + ' ', el('b', value)); return s; };
    box.append(
      item('node', kv.id),
      item('leader', kv.leader === 'none' ? 'none (electing)' : kv.leader),
      item('term', kv.term),
      members,
      item('applied', kv.applied + ' / ' + kv.commit),
      item('clock skew', kv['clock-skew-ms'] + ' ms'),
      item('running', kv['runs-running']),
      item('queued', kv['runs-queued']),
    );
    if (kv.learners !== '-') box.append(item('learners', kv.learners));
  } catch (e) {
    box.textContent = '';
    box.append(el('span', 'this node does not answer: ' + e.message, 'down'));
    delete box.dataset.leader;
  }
}

// --- the job list -------------------------------------------------------

let listing = false;

// Every job, a page at a time: the first page is drawn as soon as it
// comes, the rest replace it once complete.
async function loadJobs() {
  if (listing) return;
  listing = true;
  const began = performance.now();
  try {
    const all = [];
    let after = null;
    do {
      const limit = all.length ? PAGE : FIRST_PAGE;
      const q = '?limit=' + limit + (after ? '&after=' + encodeURIComponent(after) : '');
      const r = await call('GET', '/jobs/' + q, { json: true });
      all.push(...await r.json());
      after = r.headers.get('X-Jobd-After');
      if (after && jobs.length === 0) { jobs = all.slice(); refilter(true); }
    } while (after);
    jobs = all;
    refilter(false);
    if (!performance.getEntriesByName('jobd-every-row').length) performance.mark('jobd-every-row');
    // A listing of 10,000 jobs costs the node real work: ask no more
    // often than ten times what one took.
    listEvery = Math.max(5000, 10 * (performance.now() - began));
  } catch (e) {
    note('listing jobs: ' + e.message, true);
  } finally {
    listing = false;
  }
}

function refilter(partial) {
  const f = $('filter').value.trim();
  const st = $('state').value;
  shown = jobs.filter((j) => (!f || j.name.includes(f)) &&
    (!st || (st === 'failed' ? failed(j['last-status']) : j.state === st)));
  const nfailed = jobs.reduce((n, j) => n + (failed(j['last-status']) ? 1 : 0), 0);
  $('count').textContent = `${shown.length} of ${jobs.length}${partial ? '+' : ''} jobs, ${nfailed} failed`;
  $('rows').style.height = shown.length * ROW + 'px';
  draw();
}

// Only the rows in view (and a few either side) exist in the page.
function draw() {
  const vp = $('viewport');
  const from = Math.max(0, Math.floor(vp.scrollTop / ROW) - 10);
  const to = Math.min(shown.length, from + Math.ceil(vp.clientHeight / ROW) + 20);
  const frag = document.createDocumentFragment();
  for (let i = from; i < to; i++) frag.append(row(shown[i], i));
  $('rows').replaceChildren(frag);
  // Navigation to first job row, for `bench -- http` (and anyone's devtools).
  if (to > from && !performance.getEntriesByName('jobd-first-row').length) performance.mark('jobd-first-row');
}

function row(j, i) {
  const status = j['last-status'] || '-';
  const cls = 'row' + (failed(status) ? ' failed' : '') + (j.name === selected ? ' selected' : '');
  const d = el('div', undefined, cls);
  d.style.top = i * ROW + 'px';
  d.dataset.name = j.name;
  d.dataset.state = j.state;
  for (const v of [j.name, j.state, j.schedule, j.next, status, j.failures]) {
    const s = el('span', v ?? '-');
    s.title = v ?? '';
    d.append(s);
  }
  return d;
}

// --- one job ------------------------------------------------------------

// The job in the panel is in the address (#job=NAME), to share or reload.
function select(name) {
  selected = name;
  history.replaceState(null, '', '#job=' + encodeURIComponent(name));
  draw();
  $('job').hidden = false;
  $('job-name').textContent = name;
  $('job-cmd').textContent = '';
  $('job-ctl').textContent = '';
  $('job-runs').tBodies[0].textContent = '';
  loadJob();
  followLog(name);
}

function unselect() {
  selected = null;
  history.replaceState(null, '', location.pathname);
  if (following) following.abort();
  $('job').hidden = true;
  draw();
}

async function loadJob() {
  const name = selected;
  if (!name) return;
  try {
    const [ctl, cmd, runs] = await Promise.all(['ctl', 'cmd', 'runs'].map(
      async (f) => (await call('GET', jobPath(name, f))).text()));
    if (name !== selected) return;
    const kv = keyValues(ctl);
    $('job-cmd').textContent = cmd;
    const dl = $('job-ctl');
    dl.textContent = '';
    for (const [k, v] of Object.entries(kv)) dl.append(el('dt', k), el('dd', v));
    const body = $('job-runs').tBodies[0];
    body.textContent = '';
    // RUNID SCHEDULED TRIGGER NODE START END STATUS..., newest first.
    for (const line of runs.trim().split('\n').filter(Boolean).slice(-20).reverse()) {
      const f = line.split(' ');
      const status = f.slice(6).join(' ');
      const tr = el('tr', undefined, failed(status) ? 'failed' : '');
      for (const [i, v] of [...f.slice(0, 6), status].entries()) {
        // Times as the time of day; the whole stamp on hover.
        const stamp = [1, 4, 5].includes(i) && v.includes('T');
        const td = el('td', stamp ? v.slice(11, 23) : v);
        if (stamp) td.title = v;
        tr.append(td);
      }
      body.append(tr);
    }
    // The list's row follows the panel, without waiting for a listing.
    const j = jobs.find((x) => x.name === name);
    if (j) { Object.assign(j, kv); draw(); }
  } catch (e) {
    if (e.status === 404 && name === selected) {
      note(`job ${name} no longer exists`);
      jobs = jobs.filter((x) => x.name !== name);
      unselect();
      refilter(false);
    } else {
      note(`reading job ${name}: ${e.message}`, true);
    }
  }
}

// The log's last 64 KiB, then every line as it is appended (?follow=1).
async function followLog(name) {
  if (following) following.abort();
  const ctrl = following = new AbortController();
  const pre = $('job-log');
  pre.textContent = '';
  $('log-state').textContent = '(following)';
  try {
    const r = await call('GET', jobPath(name, 'log') + '?tail=' + LOG_KEEP + '&follow=1', { signal: ctrl.signal });
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      let t = pre.textContent + value;
      if (t.length > LOG_KEEP) t = t.slice(t.indexOf('\n', t.length - LOG_KEEP) + 1);
      pre.textContent = t;
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
    if (following === ctrl) $('log-state').textContent = '(ended)';
  } catch (e) {
    if (e.name === 'AbortError') return;
    $('log-state').textContent = '(stopped: ' + e.message + ')';
    // The node restarted or the stream was cut: follow again shortly.
    setTimeout(() => { if (selected === name && following === ctrl) followLog(name); }, 2000);
  }
}

async function act(verb) {
  const name = selected;
  if (!name || !confirm(`${verb} job ${name}?`)) return;
  try {
    if (verb === 'delete') {
      await call('DELETE', jobPath(name).slice(0, -1));
      jobs = jobs.filter((x) => x.name !== name);
      unselect();
      refilter(false);
    } else {
      await call('POST', jobPath(name, 'ctl'), { body: verb });
      loadJob();
    }
    note(`${verb} ${name}: done`);
  } catch (e) {
    note(`${verb} ${name}: ${e.message}`, true);
  }
}

// --- wiring -------------------------------------------------------------

function every(ms, f) {
  const tick = async () => {
    if (!document.hidden) await f();
    setTimeout(tick, typeof ms === 'function' ? ms() : ms);
  };
  tick();
}

document.addEventListener('DOMContentLoaded', () => {
  $('viewport').addEventListener('scroll', draw, { passive: true });
  window.addEventListener('resize', draw);
  $('filter').addEventListener('input', () => refilter(false));
  $('state').addEventListener('change', () => refilter(false));
  $('rows').addEventListener('click', (e) => {
    const r = e.target.closest('.row');
    if (r) select(r.dataset.name);
  });
  $('close').addEventListener('click', unselect);
  for (const b of document.querySelectorAll('#job button[data-verb]')) {
    b.addEventListener('click', () => act(b.dataset.verb));
  }
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    token = $('token').value;
    sessionStorage.setItem('jobd-token', token);
    $('login').hidden = true;
    loadCluster();
    loadJobs();
  });
  const linked = /^#job=(.+)$/.exec(location.hash);
  try {
    if (linked) select(decodeURIComponent(linked[1]));
  } catch (e) {
    note('the address names no job: ' + e.message, true);
  }
  every(2000, loadCluster);
  every(() => listEvery, loadJobs);
  every(2000, loadJob);
});
