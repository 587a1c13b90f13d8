// A minimal proxy-wasm host on Node's V8 (the engine Envoy uses by default),
// for the filter benchmark: it implements the env.proxy_* calls a filter
// needs for whole request streams and answers the filter's start-up callouts.
// Usage: node v8host.mjs input.json  (written by bench/filter/main.go)
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const enc = new TextEncoder();
const dec = new TextDecoder();
let mem, exp, alloc;
// Views of the guest memory, made again only when it grew (a new buffer).
let viewBuf = null, u8View, dvView;
function views() {
  if (viewBuf !== mem.buffer) { viewBuf = mem.buffer; u8View = new Uint8Array(viewBuf); dvView = new DataView(viewBuf); }
}
const u8 = () => { views(); return u8View; };
const dv = () => { views(); return dvView; };
const str = (p, n) => dec.decode(u8().subarray(p >>> 0, (p >>> 0) + (n >>> 0)));

function give(bytes, pp, sp) {
  if (bytes.length === 0) { dv().setUint32(pp >>> 0, 0, true); dv().setUint32(sp >>> 0, 0, true); return; }
  const a = alloc(bytes.length) >>> 0;
  u8().set(bytes, a);
  dv().setUint32(pp >>> 0, a, true);
  dv().setUint32(sp >>> 0, bytes.length, true);
}

// serialize writes a header map in the ABI's layout. Header names and
// values are ASCII in practice: they are copied char by char into one
// scratch buffer (a TextEncoder call and an array per string made the
// host's part of a header read cost more than the filter's own work);
// anything else takes the encoder.
let scratch = new Uint8Array(4096), scratchView = new DataView(scratch.buffer);
function serialize(h) {
  let size = 4;
  for (const [k, v] of h) size += 8 + k.length + v.length + 2;
  if (scratch.length < size) { scratch = new Uint8Array(size * 2); scratchView = new DataView(scratch.buffer); }
  const b = scratch, d = scratchView;
  d.setUint32(0, h.length, true);
  let p = 4;
  for (const [k, v] of h) { d.setUint32(p, k.length, true); d.setUint32(p + 4, v.length, true); p += 8; }
  let high = 0;
  for (const [k, v] of h) {
    for (let i = 0; i < k.length; i++) high |= b[p++] = k.charCodeAt(i);
    b[p++] = 0;
    for (let i = 0; i < v.length; i++) high |= b[p++] = v.charCodeAt(i);
    b[p++] = 0;
  }
  return high > 0x7f ? serializeEncoded(h) : b.subarray(0, size);
}

function serializeEncoded(h) {
  const parts = h.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  let size = 4;
  for (const [k, v] of parts) size += 8 + k.length + v.length + 2;
  const b = new Uint8Array(size);
  const d = new DataView(b.buffer);
  d.setUint32(0, parts.length, true);
  let p = 4;
  for (const [k, v] of parts) { d.setUint32(p, k.length, true); d.setUint32(p + 4, v.length, true); p += 8; }
  for (const [k, v] of parts) { b.set(k, p); p += k.length + 1; b.set(v, p); p += v.length + 1; }
  return b;
}

function deserialize(ptr, n) {
  ptr >>>= 0;
  const d = dv();
  const count = d.getUint32(ptr, true);
  const out = [];
  let sizes = ptr + 4, data = ptr + 4 + 8 * count;
  for (let i = 0; i < count; i++) {
    const ks = d.getUint32(sizes, true), vs = d.getUint32(sizes + 4, true);
    sizes += 8;
    const k = str(data, ks); data += ks + 1;
    const v = str(data, vs); data += vs + 1;
    out.push([k.toLowerCase(), v]);
  }
  return out;
}

let cur = null;
const streams = new Map();
let pluginConfig = new Uint8Array();
const callouts = [];
let nextCallout = 0;
let callResp = null;
const shared = new Map();
let casSeq = 0;
const metricIds = new Map();
const metricVals = [];

function headerMap(t) {
  if (t === 6) return callResp ? callResp.headers : null;
  if (!cur) return null;
  if (t === 0) return cur.reqHeaders;
  if (t === 2) return cur.respHeaders;
  return null;
}

const env = {
  proxy_log: () => 0,
  proxy_send_local_response: (status) => { if (cur) cur.local = status; return 0; },
  proxy_get_shared_data: (kp, kn, rp, rs, rc) => {
    const e = shared.get(str(kp, kn));
    if (!e) return 1;
    give(e.data, rp, rs);
    dv().setUint32(rc >>> 0, e.cas, true);
    return 0;
  },
  proxy_set_shared_data: (kp, kn, vp, vn, cas) => {
    const key = str(kp, kn);
    const e = shared.get(key);
    if (e && cas !== 0 && cas !== e.cas) return 8;
    shared.set(key, { data: u8().slice(vp >>> 0, (vp >>> 0) + (vn >>> 0)), cas: ++casSeq });
    return 0;
  },
  proxy_register_shared_queue: () => 12,
  proxy_resolve_shared_queue: () => 12,
  proxy_dequeue_shared_queue: () => 7,
  proxy_enqueue_shared_queue: () => 12,
  proxy_get_header_map_value: (t, kp, kn, rp, rs) => {
    const m = headerMap(t);
    if (!m) return 1;
    const key = str(kp, kn).toLowerCase();
    for (const [k, v] of m) if (k === key) { give(enc.encode(v), rp, rs); return 0; }
    return 1;
  },
  proxy_add_header_map_value: () => 0,
  proxy_replace_header_map_value: () => 0,
  proxy_remove_header_map_value: () => 0,
  proxy_get_header_map_pairs: (t, rp, rs) => { give(serialize(headerMap(t) || []), rp, rs); return 0; },
  proxy_set_header_map_pairs: () => 0,
  proxy_get_buffer_bytes: (t, start, max, rp, rs) => {
    let buf;
    if (t === 0) buf = cur && cur.reqBody;
    else if (t === 4) buf = callResp && callResp.body;
    else if (t === 7) buf = pluginConfig;
    if (!buf || buf.length === 0) return 1;
    if (start >= buf.length) return 2;
    give(buf.subarray(start, Math.min(buf.length, start + max)), rp, rs);
    return 0;
  },
  proxy_set_buffer_bytes: () => 0,
  proxy_continue_stream: () => { if (cur) cur.resumed = true; return 0; },
  proxy_close_stream: () => 0,
  proxy_http_call: (up, un, hp, hn, bp, bn, tp, tn, to, rid) => {
    const id = ++nextCallout;
    callouts.push({ id, headers: deserialize(hp, hn) });
    dv().setUint32(rid >>> 0, id, true);
    return 0;
  },
  proxy_call_foreign_function: () => 12,
  proxy_set_tick_period_milliseconds: () => 0,
  proxy_set_effective_context: (id) => { cur = streams.get(id) || null; return 0; },
  proxy_done: () => 0,
  proxy_define_metric: (t, np, nn, rid) => {
    const name = str(np, nn);
    let id = metricIds.get(name);
    if (id === undefined) { id = metricVals.length; metricIds.set(name, id); metricVals.push(0n); }
    dv().setUint32(rid >>> 0, id, true);
    return 0;
  },
  proxy_increment_metric: (id, off) => { metricVals[id] += BigInt(off); return 0; },
  proxy_record_metric: (id, v) => { metricVals[id] = BigInt(v); return 0; },
  proxy_get_metric: (id, rp) => { dv().setBigUint64(rp >>> 0, BigInt.asUintN(64, metricVals[id] || 0n), true); return 0; },
  proxy_get_property: () => 1,
  proxy_set_property: () => 0,
};

async function start(wasmPath, config, answers) {
  const wasi = new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true });
  const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), { wasi_snapshot_preview1: wasi.wasiImport, env });
  exp = instance.exports;
  // As Envoy: malloc when the module exports it.
  alloc = exp.malloc || exp.proxy_on_memory_allocate;
  mem = exp.memory;
  wasi.initialize(instance);
  exp.proxy_on_context_create(1, 0);
  exp.proxy_on_vm_start(1, 0);
  pluginConfig = enc.encode(config);
  if (!exp.proxy_on_configure(1, pluginConfig.length)) throw new Error('plugin refused its configuration');
  while (callouts.length) {
    const c = callouts.shift();
    const path = (c.headers.find(([k]) => k === ':path') || [])[1] || '';
    const body = Buffer.from(path.startsWith('/internal/v1/federation-list') ? answers.list : answers.policy, 'base64');
    callResp = { headers: [[':status', '200']], body };
    cur = null;
    exp.proxy_on_http_call_response(1, c.id, 1, body.length, 0);
    callResp = null;
  }
}

let nextID = 2;
function request(sc, body) {
  const id = nextID++;
  const s = { reqHeaders: sc.headers, reqBody: null, local: 0, resumed: false };
  streams.set(id, s);
  cur = s;
  exp.proxy_on_context_create(id, 1);
  cur = s;
  let a = exp.proxy_on_request_headers(id, sc.headers.length, body ? 0 : 1);
  if (body && !s.local) { s.reqBody = body; cur = s; a = exp.proxy_on_request_body(id, body.length, 1); }
  if (s.local || (a !== 0 && !s.resumed)) throw new Error(`request not passed (status ${s.local})`);
  cur = s;
  exp.proxy_on_log(id);
  exp.proxy_on_delete(id);
  streams.delete(id);
}

await start(input.wasm, input.config, input.answers || {});
const out = {};
for (const sc of input.scenarios || []) {
  const body = sc.body ? Buffer.from(sc.body, 'base64') : null;
  // Unique scenarios: "{n}" in path and body differs per request (see main.go).
  let seq = 0;
  const one = () => {
    if (!sc.unique) return request(sc, body);
    const num = String(++seq);
    const headers = sc.headers.map(([k, v]) => [k, v.replaceAll('{n}', num)]);
    return request({ ...sc, headers }, body ? Buffer.from(body.toString('latin1').replaceAll('{n}', num), 'latin1') : null);
  };
  for (let i = 0; i < 2000; i++) one();
  // The best of five rounds: V8 tiers code up while it runs, and the
  // machine is shared.
  const n = input.iterations;
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) one();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  out[sc.name] = best;
}
// Mixes: the first segment warms up, each further one is a measured round
// (requests the VM has not seen); each request is timed, and the best
// round's mean and 99th percentile are kept.
for (const m of input.mixes || []) {
  const segs = m.segments.map((seg) => seg.map((r) => ({ headers: r.headers, body: r.body ? Buffer.from(r.body, 'base64') : null })));
  for (const r of segs[0]) request(r, r.body);
  let mean = Infinity, p99 = Infinity;
  for (const seg of segs.slice(1)) {
    const ds = new Float64Array(seg.length);
    let total = 0;
    for (let i = 0; i < seg.length; i++) {
      const t0 = process.hrtime.bigint();
      request(seg[i], seg[i].body);
      ds[i] = Number(process.hrtime.bigint() - t0);
      total += ds[i];
    }
    ds.sort();
    mean = Math.min(mean, total / seg.length);
    p99 = Math.min(p99, ds[Math.floor(seg.length * 99 / 100)]);
  }
  out['mix:' + m.name] = { mean, p99 };
}
process.stdout.write(JSON.stringify(out));
