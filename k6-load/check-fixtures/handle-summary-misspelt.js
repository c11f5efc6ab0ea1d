// expect: exports 'handleSumary': 'handleSummary' misspelt?
// k6 would never call it, and print its own summary instead.
import { complete, load, setup, stream } from "../lib/cocoon.js";

export const options = load(open("../scenarios/chat-streaming.json"));

export function handleSumary(data) {
  return { "summary.json": JSON.stringify(data) };
}

export { complete, setup, stream };
