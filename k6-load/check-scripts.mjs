// Parses and links every k6 script in this directory as an ES module, without running it, so a
// syntax error or a misspelt import fails CI instead of shipping. k6's own modules are stood in
// for by empty modules that export the names k6 documents; a local import must resolve to a file
// and export what is imported. Run: node --experimental-vm-modules k6-load/check-scripts.mjs
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

const here = dirname(fileURLToPath(import.meta.url));
if (!vm.SourceTextModule) {
  console.error("check-scripts: run node with --experimental-vm-modules");
  process.exit(2);
}

// The k6 modules the scripts may import, and what each exports (see k6's JavaScript API docs).
const K6_MODULES = {
  k6: ["check", "fail", "group", "sleep", "randomSeed"],
  "k6/http": ["default"],
  "k6/execution": ["default"],
  "k6/metrics": ["Counter", "Gauge", "Rate", "Trend"],
  "k6/x/sse": ["default"],
};

const context = vm.createContext({});
const cache = new Map();

function k6Module(specifier) {
  const names = K6_MODULES[specifier];
  if (!names) throw new Error(`unknown k6 module '${specifier}' (known: ${Object.keys(K6_MODULES).join(", ")})`);
  return new vm.SyntheticModule(names, () => {}, { identifier: specifier, context });
}

function fileModule(path) {
  if (!cache.has(path)) {
    cache.set(path, new vm.SourceTextModule(readFileSync(path, "utf8"), { identifier: path, context }));
  }
  return cache.get(path);
}

async function link(specifier, referencing) {
  if (specifier === "k6" || specifier.startsWith("k6/")) return k6Module(specifier);
  if (specifier.startsWith("./") || specifier.startsWith("../")) {
    return fileModule(resolve(dirname(referencing.identifier), specifier));
  }
  throw new Error(`${referencing.identifier}: k6 cannot import '${specifier}' (only k6 modules and relative files)`);
}

const scripts = readdirSync(here).filter((f) => f.endsWith(".js")).map((f) => join(here, f));
let failures = 0;
for (const script of scripts) {
  try {
    const module = fileModule(script);
    await module.link(link);
    console.log(`ok   ${script}`);
  } catch (e) {
    failures++;
    console.error(`FAIL ${script}: ${e.name}: ${e.message}`);
  }
}
if (scripts.length === 0) {
  console.error(`check-scripts: no k6 scripts in ${here}`);
  process.exit(1);
}
process.exit(failures === 0 ? 0 : 1);
