// Checks every k6 script in this directory without k6 (it cannot be installed in CI), so that a
// script k6 would refuse, or one that throws mid-run, fails CI instead of shipping. Each script is
// linked and run as an ES module against stand-ins for k6's modules, once per way it is run (no
// profile, each profile of the parameter files it opens, a tiny SCALE, a short DURATION):
// - imports name k6 modules and exports k6 has (k6 and xk6-sse as pinned in README.md), or files;
// - its init code runs (an identifier it never defined is a ReferenceError there);
// - it exports `options`, the functions its scenarios name in `exec`, and otherwise only functions
//   whose names are not a slip from k6's (setup, teardown, default, handleSummary): k6 ignores a
//   misspelt export without a word;
// - the scenarios are ones k6 would accept, pre-allocating all their VUs (README.md, k6), and the
//   thresholds name metrics that exist and scenarios that exist (k6 passes a threshold with no
//   samples, so a typo there would never fail a run);
// - setup and every scenario's function run through canned answers (a full stream, an in-band
//   error, 429, 500, a refused connection, a reset, garbage, a timeout), each branch reading only
//   what k6 and xk6-sse define: a misspelt identifier or field in a branch that seldom runs fails.
// Then each script in check-fixtures/ must fail, with the text its first line names: a check
// that lets everything through fails too.
// Run: node --experimental-vm-modules k6-load/check-scripts.mjs
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

const here = dirname(fileURLToPath(import.meta.url));
if (!vm.SourceTextModule) {
  console.error("check-scripts: run node with --experimental-vm-modules");
  process.exit(2);
}

// Names k6 itself reads from a script's exports.
const LIFECYCLE = new Set(["options", "setup", "teardown", "default", "handleSummary"]);
// k6's own metrics and xk6-sse's, which thresholds may name besides the script's.
const BUILTIN_METRICS = new Set(["vus", "vus_max", "iterations", "iteration_duration", "dropped_iterations",
  "data_received", "data_sent", "checks", "http_reqs", "http_req_duration", "http_req_blocked",
  "http_req_connecting", "http_req_tls_handshaking", "http_req_sending", "http_req_waiting",
  "http_req_receiving", "http_req_failed", "sse_event"]);
// What a ramping-arrival-rate scenario may hold (k6's lib/executor/ramping_arrival_rate.go).
const SCENARIO_FIELDS = new Set(["executor", "exec", "startRate", "timeUnit", "preAllocatedVUs", "maxVUs",
  "stages", "gracefulStop", "startTime", "env", "tags"]);
// k6 reads durations in options with Go's time.ParseDuration.
const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

class CheckError extends Error {}

function check(condition, message) {
  if (!condition) throw new CheckError(message);
}

/** An object whose reads of fields it lacks throw: a misspelt field of a k6 object fails, not reads undefined. */
function strict(what, fields) {
  return new Proxy(fields, {
    get(target, key) {
      if (typeof key === "symbol" || key in target) return target[key];
      throw new CheckError(`${what} has no '${String(key)}'`);
    },
  });
}

function isCount(n) {
  return Number.isInteger(n) && n >= 0;
}

/**
 * One way a request may go: `http` is what k6/http answers (status 0 with k6's error_code: no
 * answer), `sse` what xk6-sse does: its status, then events, each a data string (`null`: a
 * keep-alive comment), `{ error }` (the connection failed) or `{ wait }` (milliseconds pass).
 */
const CASES = [
  { name: "a full answer",
    http: { status: 200, body: JSON.stringify({ choices: [{ message: { content: "hi" } }], usage: { completion_tokens: 2 } }) },
    sse: { status: 200, events: [null, chunk("hi"), chunk("there"), JSON.stringify({ choices: [], usage: { completion_tokens: 2 } }), "[DONE]"] } },
  { name: "an in-band error", http: { status: 200, body: "not json" },
    sse: { status: 200, events: [chunk("hi"), JSON.stringify({ error: { code: "engine_failed", message: "x" } })] } },
  { name: "an in-band error without a code", http: { status: 200, body: "{" },
    sse: { status: 200, events: [JSON.stringify({ error: { message: "x" } })] } },
  { name: "a stream cut short", http: { status: 200, body: "{}" }, sse: { status: 200, events: [chunk("hi")] } },
  { name: "garbage", http: { status: 200, body: "[" }, sse: { status: 200, events: ["{not json", "[DONE]"] } },
  { name: "429", http: { status: 429, body: "{}" }, sse: { status: 429, events: [] } },
  { name: "500", http: { status: 500, body: "oops" }, sse: { status: 500, events: [] } },
  // xk6-sse emits a failed connection's error before the callback has registered its handlers.
  { name: "a refused connection", http: { status: 0, errorCode: 1212, body: null }, sse: { status: 0, events: [] } },
  { name: "a reset mid-answer", http: { status: 0, errorCode: 1000, body: null },
    sse: { status: 200, events: [chunk("hi"), { error: "connection reset by peer" }] } },
  { name: "a timeout", http: { status: 0, errorCode: 1050, body: null },
    sse: { status: 200, events: [null, { wait: 3_600_000 }, null, chunk("late")] } },
];

function chunk(content) {
  return JSON.stringify({ choices: [{ delta: { content } }] });
}

/** k6/http's Response, with the fields k6 documents. */
function httpResponse(c) {
  return strict("k6/http Response", {
    status: c.status, body: c.body, headers: {}, error: c.status === 0 ? "request failed" : "",
    error_code: c.errorCode || 0, url: "", proto: "HTTP/1.1", status_text: "", timings: {}, cookies: {},
    remote_ip: "", remote_port: 0, request: {}, tls_version: "", tls_cipher_suite: "", ocsp: {},
    json(selector) {
      if (selector !== undefined) throw new CheckError("the stand-in for k6/http's json() takes no selector");
      return JSON.parse(this.body);
    },
    html() {
      throw new CheckError("the stand-in for k6/http has no html()");
    },
  });
}

/** The k6 modules a script may import, each export a stand-in driven by `world`. */
function k6Modules(world) {
  const metric = (type) => class {
    constructor(name, isTime) {
      check(typeof name === "string" && /^[\p{L}\p{N}._ !?/&#()<>%-]{1,128}$/u.test(name), `bad ${type} name '${name}'`);
      check(!world.initDone, `new ${type}('${name}') outside init code: k6 refuses it`);
      const known = world.metrics.get(name);
      check(!known || known === type, `metric '${name}' defined as ${known} and ${type}`);
      world.metrics.set(name, type);
      this.name = name;
      this.isTime = Boolean(isTime);
    }

    add(value, tags) {
      check((typeof value === "number" && !Number.isNaN(value)) || typeof value === "boolean",
        `${type} '${this.name}' given ${value}: k6 wants a number or a boolean`);
      check(tags === undefined || (typeof tags === "object" && Object.values(tags).every((t) => typeof t === "string")),
        `${type} '${this.name}' given tags that are not strings: ${JSON.stringify(tags)}`);
      return true;
    }
  };
  const execution = strict("k6/execution", {
    instance: strict("exec.instance", { iterationsCompleted: 0, iterationsInterrupted: 0, vusActive: 1, vusInitialized: 1,
      currentTestRunDuration: 0 }),
    scenario: strict("exec.scenario", {
      get name() {
        return world.scenario;
      },
      get iterationInTest() {
        return world.iteration;
      },
      executor: "ramping-arrival-rate", startTime: 0, progress: 0, iterationInInstance: 0,
    }),
    vu: strict("exec.vu", { idInInstance: 1, idInTest: 1, iterationInInstance: 0, iterationInScenario: 0, tags: {}, metrics: {} }),
    test: strict("exec.test", { abort() {}, options: {} }),
  });
  const http = strict("k6/http", {
    get: (url, params) => world.request("GET", url, params),
    post: (url, body, params) => world.request("POST", url, params),
    request: (method, url, body, params) => world.request(method, url, params),
  });
  const sse = strict("k6/x/sse", { open: (url, params, callback) => world.stream(url, params, callback) });
  const noop = () => {};
  return {
    k6: { check: () => true, fail: (m) => { throw new Error(m); }, group: (n, f) => f(), sleep: noop, randomSeed: noop },
    "k6/http": { default: http },
    "k6/execution": { default: execution },
    "k6/metrics": { Counter: metric("Counter"), Gauge: metric("Gauge"), Rate: metric("Rate"), Trend: metric("Trend") },
    "k6/x/sse": { default: sse },
  };
}

/** k6 sends header values as strings; anything else a parameter file put there is a mistake. */
function checkHeaders(params, what) {
  for (const [name, value] of Object.entries((params && params.headers) || {})) {
    check(typeof value === "string", `${what} header '${name}' is ${JSON.stringify(value)}, not a string`);
  }
}

/** The answers a run gets: GET /v1/models lists one model; a scenario's requests get `world.case`. */
function newWorld() {
  const world = {
    metrics: new Map(), opened: [], initDone: false, scenario: null, case: null, iteration: 0, clock: { now: 1_000_000 },
    request(method, url, params) {
      check(typeof url === "string", `http ${method} without a URL`);
      checkHeaders(params, `http ${method}`);
      check(world.initDone, "a request in init code: k6 refuses it");
      if (world.scenario === null) {
        return httpResponse({ status: 200, body: JSON.stringify({ data: [{ id: "synthetic" }] }) });
      }
      const timeout = params && params.timeout;
      check(timeout === undefined || GO_DURATION.test(timeout), `http timeout '${timeout}' is not a duration k6 reads`);
      world.clock.now += 5;
      return httpResponse(world.case.http);
    },
    stream(url, params, callback) {
      check(world.initDone, "sse.open in init code: xk6-sse refuses it");
      check(typeof callback === "function", "sse.open without a callback");
      for (const k of Object.keys(params || {})) {
        check(["method", "headers", "body", "tags", "jar", "timeout"].includes(k), `sse.open has no param '${k}' (xk6-sse v0.1.12)`);
      }
      checkHeaders(params, "sse.open");
      const handlers = {};
      let closed = false;
      const client = strict("sse client", {
        on(name, handler) {
          check(["open", "event", "error"].includes(name), `xk6-sse emits no '${name}'`);
          handlers[name] = handler;
        },
        close() {
          closed = true;
        },
      });
      callback(client);
      const c = world.case.sse;
      if (c.status === 200 && handlers.open) handlers.open();
      for (const e of c.events) {
        if (closed) break;
        world.clock.now += 3;
        if (e !== null && typeof e === "object" && "wait" in e) {
          world.clock.now += e.wait;
        } else if (e !== null && typeof e === "object") {
          if (handlers.error) handlers.error(strict("sse error", { error: () => e.error }));
          break;
        } else if (handlers.event) {
          handlers.event(strict("sse event", { id: "", name: "", comment: e === null ? "keep-alive" : "", data: e === null ? "" : e }));
        }
      }
      return strict("sse response", { url, status: c.status, headers: {}, error: c.status === 0 ? "request failed" : "" });
    },
  };
  return world;
}

/** Links and runs a script's init code in a fresh context; returns its module namespace. */
async function instantiate(script, env, world) {
  const context = vm.createContext({ __ENV: { ...env }, console: { log() {}, info() {}, warn() {}, error() {}, debug() {} } });
  context.__VU = 0;
  context.__ITER = 0;
  context.open = (path, mode) => {
    check(!world.initDone, "open() outside init code: k6 refuses it");
    const file = resolve(dirname(script), path);
    check(existsSync(file), `open('${path}'): no such file ${file}`);
    world.opened.push(file);
    return readFileSync(file, mode === "b" ? undefined : "utf8");
  };
  vm.runInContext("(clock) => { Date.now = () => clock.now; }", context)(world.clock);
  const stand = k6Modules(world);
  const cache = new Map();
  const fileModule = (path) => {
    if (!cache.has(path)) {
      check(existsSync(path), `no such file ${path}`);
      cache.set(path, new vm.SourceTextModule(readFileSync(path, "utf8"), { identifier: path, context }));
    }
    return cache.get(path);
  };
  const module = fileModule(script);
  await module.link((specifier, referencing) => {
    if (specifier === "k6" || specifier.startsWith("k6/")) {
      const exports = stand[specifier];
      check(exports, `unknown k6 module '${specifier}' (known: ${Object.keys(stand).join(", ")})`);
      return new vm.SyntheticModule(Object.keys(exports), function () {
        for (const [name, value] of Object.entries(exports)) this.setExport(name, value);
      }, { identifier: specifier, context });
    }
    if (specifier.startsWith("./") || specifier.startsWith("../")) {
      return fileModule(resolve(dirname(referencing.identifier), specifier));
    }
    throw new CheckError(`${referencing.identifier}: k6 cannot import '${specifier}' (only k6 modules and relative files)`);
  });
  await module.evaluate();
  world.initDone = true;
  return module.namespace;
}

function checkScenarios(exports) {
  const options = exports.options;
  check(options && typeof options === "object", "no 'options' export: k6 would run one iteration of a default function");
  const scenarios = options.scenarios;
  check(scenarios && Object.keys(scenarios).length > 0, "options.scenarios is empty");
  for (const [name, s] of Object.entries(scenarios)) {
    const where = `scenario ${name}`;
    check(/^[0-9A-Za-z_-]+$/.test(name), `${where}: k6 allows letters, digits, '_' and '-' in a name`);
    for (const k of Object.keys(s)) check(SCENARIO_FIELDS.has(k), `${where}: k6 knows no field '${k}'`);
    check(s.executor === "ramping-arrival-rate", `${where}: executor '${s.executor}' (the scripts build ramping-arrival-rate)`);
    check(typeof exports[s.exec || "default"] === "function", `${where}: runs '${s.exec || "default"}', which the script does not export as a function`);
    check(isCount(s.startRate), `${where}: startRate ${s.startRate} is not a whole number of arrivals`);
    check(GO_DURATION.test(s.timeUnit) && !/^0+(\.0+)?[a-zµ]+$/.test(s.timeUnit), `${where}: timeUnit '${s.timeUnit}'`);
    check(isCount(s.maxVUs) && s.maxVUs >= 1, `${where}: maxVUs ${s.maxVUs}`);
    check(s.preAllocatedVUs === s.maxVUs,
      `${where}: preAllocatedVUs ${s.preAllocatedVUs} is not maxVUs ${s.maxVUs}: VUs started mid-test drop arrivals`);
    check(Array.isArray(s.stages) && s.stages.length > 0, `${where}: no stages`);
    for (const st of s.stages) {
      check(GO_DURATION.test(st.duration), `${where}: stage duration '${st.duration}'`);
      check(isCount(st.target), `${where}: stage target ${st.target} is not a whole number`);
    }
    check(s.gracefulStop === undefined || GO_DURATION.test(s.gracefulStop), `${where}: gracefulStop '${s.gracefulStop}'`);
  }
}

/** Whether `a` is `b` in another case, or one or two letters off (inserted, dropped or changed). */
function typo(a, b) {
  if (a.toLowerCase() === b.toLowerCase()) return true;
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length] <= 2;
}

function checkThresholds(options, world) {
  for (const [key, expressions] of Object.entries(options.thresholds || {})) {
    const m = /^([^{]+)(?:\{(.*)\})?$/.exec(key);
    check(m, `threshold '${key}' is not metric{tag:value}`);
    check(world.metrics.has(m[1]) || BUILTIN_METRICS.has(m[1]), `threshold '${key}': no metric '${m[1]}'`);
    if (m[2]) {
      for (const filter of m[2].split(",")) {
        const [tag, value] = filter.split(":").map((t) => t.trim());
        check(tag !== "scenario" || value in options.scenarios, `threshold '${key}': no scenario '${value}'`);
      }
    }
    check(Array.isArray(expressions) && expressions.every((e) => typeof e === "string" || (e && typeof e.threshold === "string")),
      `threshold '${key}': not a list of expressions`);
  }
}

function drive(exports, world) {
  world.scenario = null;
  const data = exports.setup ? JSON.parse(JSON.stringify(exports.setup() ?? null)) : undefined;
  for (const [name, s] of Object.entries(exports.options.scenarios)) {
    for (const c of CASES) {
      world.scenario = name;
      world.case = c;
      // Each call is the scenario's next iteration, so a flow's prompts are taken in turn as in a run.
      world.iteration++;
      try {
        exports[s.exec || "default"](data);
      } catch (e) {
        throw new CheckError(`scenario ${name}, ${s.exec || "default"}() against ${c.name}: ${e.name}: ${e.message}`);
      }
    }
  }
  if (typeof exports.teardown === "function") exports.teardown(data);
}

/** Every check on one script run one way; throws the first failure. */
async function checkRun(script, env) {
  const world = newWorld();
  const exports = await instantiate(script, env, world);
  checkScenarios(exports);
  // The scripts export every scenario function lib/cocoon.js has, so that a flow switched between
  // streamed and not needs no edit; anything else k6 does not read would be ignored without a word.
  for (const name of Object.keys(exports).filter((n) => !LIFECYCLE.has(n))) {
    check(typeof exports[name] === "function", `exports '${name}', which k6 never reads (k6 reads ${[...LIFECYCLE].join(", ")} and scenario functions)`);
    const meant = [...LIFECYCLE].find((k) => typo(name, k));
    check(!meant, `exports '${name}': '${meant}' misspelt? k6 would never call it`);
  }
  for (const name of ["setup", "teardown", "handleSummary", "default"]) {
    check(exports[name] === undefined || typeof exports[name] === "function", `'${name}' is exported but is not a function`);
  }
  checkThresholds(exports.options, world);
  drive(exports, world);
  return world;
}

/** The script run every way CI or a user runs it; returns the first failure, or null. */
async function checkScript(script) {
  const runs = [];
  try {
    const first = await checkRun(script, { API_KEY: "sk-check" });
    for (const file of first.opened.filter((f) => f.endsWith(".json"))) {
      for (const profile of Object.keys(JSON.parse(readFileSync(file, "utf8")).profiles || {})) runs.push({ PROFILE: profile });
    }
    runs.push({ SCALE: "0.01" }, { DURATION: "1s" }, { MODEL: "m" });
    for (const env of runs) {
      try {
        await checkRun(script, { API_KEY: "sk-check", ...env });
      } catch (e) {
        return `[${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")}] ${describe(e)}`;
      }
    }
    return null;
  } catch (e) {
    return describe(e);
  }
}

function describe(e) {
  return e instanceof CheckError ? e.message : `${e.name}: ${e.message}`;
}

function jsFiles(dir) {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".js")).sort().map((f) => join(dir, f)) : [];
}

let failures = 0;
const scripts = jsFiles(here);
if (scripts.length === 0) {
  console.error(`check-scripts: no k6 scripts in ${here}`);
  process.exit(1);
}
for (const script of scripts) {
  const failure = await checkScript(script);
  if (failure) {
    failures++;
    console.error(`FAIL ${script}: ${failure}`);
  } else {
    console.log(`ok   ${script}`);
  }
}
const fixtures = jsFiles(join(here, "check-fixtures"));
if (fixtures.length === 0) {
  console.error(`check-scripts: no fixtures in ${join(here, "check-fixtures")}`);
  process.exit(1);
}
for (const fixture of fixtures) {
  const expected = /^\/\/ expect: (.+)$/m.exec(readFileSync(fixture, "utf8").split("\n")[0]);
  const failure = await checkScript(fixture);
  if (!expected || !failure || !failure.includes(expected[1])) {
    failures++;
    console.error(`FAIL self-test ${fixture}: expected a failure with '${expected ? expected[1] : "(no '// expect: ' line)"}', got ${failure || "none"}`);
  } else {
    console.log(`ok   self-test ${fixture} fails: ${failure}`);
  }
}
process.exit(failures === 0 ? 0 : 1);
