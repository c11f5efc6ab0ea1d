// Streams one chat completion from a Cocoon gateway through OpenAI's official Node SDK and checks
// what a chat frontend relies on: content deltas, one finish_reason, the usage chunk; and, without
// include_usage, that the loop of the SDK's own README (choices[0] of every chunk) runs to the end
// while the usage still arrives, on the finish chunk.
// Usage: node stream-check.mjs <gateway-url> <api-key> <model>
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
if (!baseURL || !apiKey || !model) {
  console.error('usage: node stream-check.mjs <gateway-url> <api-key> <model>');
  process.exit(2);
}
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: 'user', content: 'Hello from Node' }],
  max_tokens: 10,
  stream: true,
  stream_options: { include_usage: true },
});
let text = '';
const finishReasons = [];
let usage = null;
for await (const chunk of stream) {
  for (const choice of chunk.choices) {
    text += choice.delta?.content ?? '';
    if (choice.finish_reason) finishReasons.push(choice.finish_reason);
  }
  if (chunk.usage) usage = chunk.usage;
}
const fail = (why) => { console.error(`node openai check failed: ${why}`); process.exit(1); };
// The demo's model has random weights: it may end (stop) before max_tokens (length).
if (!usage || usage.completion_tokens < 1 || usage.completion_tokens > 10) fail(`usage ${JSON.stringify(usage)}`);
const expected = usage.completion_tokens === 10 ? 'length' : 'stop';
if (finishReasons.join() !== expected) fail(`finish reasons ${finishReasons}, expected ${expected}`);
if (usage.total_tokens !== usage.prompt_tokens + usage.completion_tokens) fail(`usage totals ${JSON.stringify(usage)}`);

const plain = await client.chat.completions.create({
  model,
  messages: [{ role: 'user', content: 'Hello from Node' }],
  max_tokens: 10,
  stream: true,
});
let plainUsage = null;
let plainText = "";
try {
  for await (const chunk of plain) {
    plainText += chunk.choices[0].delta.content || "";
    if (chunk.usage) plainUsage = chunk.usage;
  }
} catch (e) {
  fail(`without include_usage, a chunk had no choices[0]: ${e.message}`);
}
if (!plainUsage || plainUsage.total_cost === undefined) fail(`without include_usage, no usage with its cost: ${JSON.stringify(plainUsage)}`);
console.log(`node openai check: ok (${usage.completion_tokens} tokens, ${JSON.stringify(text)}; usage without include_usage: ${plainUsage.total_cost} nanoTON)`);
