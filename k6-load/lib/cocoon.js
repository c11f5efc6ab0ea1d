// Shared by the four k6 scripts. Each script opens its scenario's parameter file (the one the JVM
// driver also reads) and hands it to load(); this module turns it into k6 options, one
// ramping-arrival-rate scenario per flow, and defines the metrics the thresholds name.
//
// Environment: BASE_URL (default http://127.0.0.1:8080; a trailing /v1, the OpenAI SDKs' form, means
// the same, as in `cocoon load --url`), API_KEY (required), MODEL (default: the
// first of GET /v1/models), PROFILE (a block under "profiles", e.g. ci), SCALE (multiplies rates
// and max_vus), DURATION (stretches the stages to this total, e.g. 2m).

import http from "k6/http";
import exec from "k6/execution";
import sse from "k6/x/sse";
import { Counter, Rate, Trend } from "k6/metrics";

// Same names, types and meanings as org.cocoonjvm.load.Metric.
const ttft = new Trend("ttft", true);
const itl = new Trend("itl", true);
const e2e = new Trend("e2e", true);
const tokens = new Counter("tokens");
const requests = new Counter("requests");
const completed = new Counter("completed");
const aborted = new Counter("aborted");
const rejected = new Counter("rejected");
const errors = new Counter("errors");
const errorRate = new Rate("error_rate");

const BASE_URL = (__ENV.BASE_URL || "http://127.0.0.1:8080").replace(/\/+$/, "").replace(/\/v1$/, "");
const API_KEY = __ENV.API_KEY || "";
// Rates are given to k6 per hundred time units so that scaled, fractional rates stay exact.
const RATE_PRECISION = 100;
// Defaults shared with org.cocoonjvm.load.Scenario.
const DEFAULT_TIMEOUT = "20s";
const DEFAULT_GRACEFUL_STOP = "30s";
// Headers the scripts set themselves, as org.cocoonjvm.load.RequestSpec.RESERVED: k6 sets a request's
// headers one by one from an object, so a file's "authorization" beside the script's "Authorization"
// would win or lose by map order.
const RESERVED_HEADERS = ["authorization", "content-type", "content-length", "content-encoding", "transfer-encoding", "host",
  "connection"];

let flows = {};
let maxRequests = Infinity;

function seconds(duration, where) {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  re.lastIndex = 0;
  while (re.lastIndex < duration.length) {
    const m = re.exec(duration);
    if (!m) throw new Error(`${where}: '${duration}' is not a k6 duration`);
    total += Number(m[1]) * unit[m[2]];
  }
  return total;
}

function flowSeconds(flow) {
  return flow.stages.reduce((sum, s) => sum + seconds(s.duration, "stage"), 0);
}

/** Refuses what the JVM driver refuses in a flow's request headers, in its words. */
function checkHeaders(headers, where) {
  for (const [name, value] of Object.entries(headers || {})) {
    if (RESERVED_HEADERS.includes(name.toLowerCase())) {
      throw new Error(`${where}: '${name}' cannot be set here; both tools set it themselves `
        + "(the key from --key or API_KEY, the JSON body's type and length, the target's host and connection)");
    }
    if (typeof value !== "string") throw new Error(`${where}: '${name}' must be a string, got ${JSON.stringify(value)}`);
  }
}

/** Reads a parameter file's text and returns k6 options; call it from a script's init code. */
export function load(text) {
  if (!API_KEY) throw new Error("set API_KEY (./cocoon demo prints it in its ready line)");
  const file = JSON.parse(text);
  let profile = {};
  if (__ENV.PROFILE) {
    profile = (file.profiles || {})[__ENV.PROFILE];
    if (!profile) throw new Error(`${file.name}: no profile '${__ENV.PROFILE}'`);
  }
  const scale = Number(__ENV.SCALE || profile.scale || 1);
  if (!(scale > 0)) throw new Error(`SCALE must be positive, got ${__ENV.SCALE}`);
  const total = __ENV.DURATION || profile.duration;
  const longest = Math.max(...Object.values(file.flows).map(flowSeconds));
  const stretch = total ? seconds(total, "DURATION") / longest : 1;
  maxRequests = profile.max_requests || file.max_requests;
  flows = file.flows;

  const scenarios = {};
  for (const [name, flow] of Object.entries(file.flows)) {
    checkHeaders(flow.request.headers, `${file.name} flows.${name}.request.headers`);
    const maxVUs = Math.max(1, Math.ceil(flow.max_vus * scale));
    const unitMs = seconds(flow.time_unit || "1s", "time_unit") * 1000;
    scenarios[name] = {
      executor: "ramping-arrival-rate",
      exec: flow.request.stream === false ? "complete" : "stream",
      startRate: Math.round((flow.start_rate || 0) * scale * RATE_PRECISION),
      timeUnit: `${unitMs * RATE_PRECISION}ms`,
      // All of them up front: a VU k6 has to start mid-test costs its arrival (dropped_iterations),
      // where the JVM driver, which opens a request per arrival, drops only at max_vus open.
      preAllocatedVUs: maxVUs,
      maxVUs,
      stages: flow.stages.map((s) => ({
        duration: `${Math.round(seconds(s.duration, "stage") * stretch * 1000)}ms`,
        target: Math.round(s.target * scale * RATE_PRECISION),
      })),
      gracefulStop: file.graceful_stop || DEFAULT_GRACEFUL_STOP,
    };
  }
  // A profile's thresholds replace the file's for the metrics it names.
  const thresholds = Object.assign({}, file.thresholds, profile.thresholds || {});
  return { scenarios, thresholds, summaryTrendStats: ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"] };
}

export function setup() {
  if (__ENV.MODEL) return { model: __ENV.MODEL };
  const res = http.get(`${BASE_URL}/v1/models`, { headers: { Authorization: `Bearer ${API_KEY}` } });
  if (res.status !== 200) throw new Error(`GET /v1/models answered ${res.status}: ${res.body}`);
  const data = res.json().data;
  if (!data || data.length === 0) throw new Error(`${BASE_URL} serves no model yet`);
  return { model: data[0].id };
}

function overBudget() {
  // Every run is bounded in requests too: past max_requests, iterations do nothing.
  return exec.instance.iterationsCompleted + exec.instance.iterationsInterrupted >= maxRequests;
}

function body(flow, model) {
  const r = flow.request;
  // The flow's Nth request asks the (N mod size)th prompt, as in the JVM driver: iterationInTest
  // counts this scenario's iterations across every VU.
  const prompt = r.prompts ? r.prompts[exec.scenario.iterationInTest % r.prompts.length] : r.prompt;
  const b = {
    model,
    messages: [{ role: "user", content: prompt }],
    max_tokens: r.max_tokens,
    stream: r.stream !== false,
    service_tier: r.service_tier || "default",
  };
  if (b.stream) b.stream_options = { include_usage: true };
  return JSON.stringify(b);
}

function headers(flow) {
  return Object.assign({}, flow.request.headers, { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" });
}

function failed(kind) {
  errors.add(1, { kind });
  errorRate.add(true);
}

/** One streamed chat completion; time to first token is the first data event (comments are not events). */
export function stream(data) {
  if (overBudget()) return;
  const flow = flows[exec.scenario.name];
  const started = Date.now();
  const timeoutMs = seconds(flow.timeout || DEFAULT_TIMEOUT, "timeout") * 1000;
  const abortMs = flow.abort_after ? seconds(flow.abort_after, "abort_after") * 1000 : Infinity;
  let first = -1;
  let last = -1;
  let contents = 0;
  let usage = -1;
  let done = false;
  let problem = null;
  let cut = false;
  let timedOut = false;
  const res = sse.open(`${BASE_URL}/v1/chat/completions`, { method: "POST", headers: headers(flow), body: body(flow, data.model) },
    (client) => {
      client.on("event", (event) => {
        const now = Date.now();
        // sse.open takes no timeout and blocks the VU, so both bounds are checked here, keep-alive
        // comments included: a stream silent on the wire is not cut (k6-load/README.md). The abort
        // comes first: the file keeps abort_after shorter than timeout.
        if (now - started >= abortMs) {
          cut = true;
          client.close();
          return;
        }
        if (now - started > timeoutMs) {
          timedOut = true;
          client.close();
          return;
        }
        if (!event.data) return;
        if (first < 0) {
          first = now - started;
          ttft.add(first);
        }
        if (event.data === "[DONE]") {
          done = true;
          return;
        }
        let chunk;
        try {
          chunk = JSON.parse(event.data);
        } catch (e) {
          problem = "bad_json";
          return;
        }
        if (chunk.error) {
          problem = `in_band_${chunk.error.code || chunk.error.type || "unknown"}`;
          return;
        }
        if (chunk.usage) usage = chunk.usage.completion_tokens;
        const choice = chunk.choices && chunk.choices[0];
        const content = choice && choice.delta && choice.delta.content;
        if (content) {
          if (last >= 0) itl.add(now - last);
          last = now;
          contents++;
          if (flow.abort_after_tokens > 0 && contents >= flow.abort_after_tokens) {
            cut = true;
            client.close();
          }
        }
      });
      client.on("error", () => {
        if (!cut && !timedOut && !problem) problem = "transport";
        // xk6-sse stops reading after an error but keeps the stream open: without this, a reset
        // mid-stream held the VU until gracefulStop, and its error was pushed too late to count.
        client.close();
      });
    });
  requests.add(1);
  tokens.add(usage >= 0 ? usage : contents);
  if (cut) {
    aborted.add(1);
    errorRate.add(false);
  } else if (timedOut) {
    failed("timeout");
  } else if (res && res.status === 429) {
    rejected.add(1);
    errorRate.add(false);
  } else if (!res || res.status !== 200) {
    // Status 0: no response at all (refused, reset), which the JVM driver calls transport too.
    failed(res && res.status !== 0 ? `http_${res.status}` : "transport");
  } else if (problem) {
    failed(problem);
  } else if (!done) {
    failed("no_done");
  } else {
    completed.add(1);
    e2e.add(Date.now() - started);
    errorRate.add(false);
  }
}

/** One non-streamed chat completion (translations): its time to first token is the whole response. */
export function complete(data) {
  if (overBudget()) return;
  const flow = flows[exec.scenario.name];
  const started = Date.now();
  const res = http.post(`${BASE_URL}/v1/chat/completions`, body(flow, data.model), { headers: headers(flow), timeout: flow.timeout || DEFAULT_TIMEOUT });
  const elapsed = Date.now() - started;
  requests.add(1);
  if (res.status === 429) {
    rejected.add(1);
    errorRate.add(false);
    return;
  }
  if (res.status !== 200) {
    // 1050 is k6's error_code for a request past its timeout (lib/netext/httpext/error_codes.go).
    failed(res.status !== 0 ? `http_${res.status}` : res.error_code === 1050 ? "timeout" : "transport");
    return;
  }
  let usage;
  try {
    usage = res.json().usage;
  } catch (e) {
    failed("bad_json");
    return;
  }
  ttft.add(elapsed);
  e2e.add(elapsed);
  tokens.add(usage ? usage.completion_tokens : 0);
  completed.add(1);
  errorRate.add(false);
}
