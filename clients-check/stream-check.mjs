// Streams one chat completion from a Cocoon gateway through OpenAI's official Node SDK and checks
// what a chat frontend relies on: content deltas, one finish_reason, the usage chunk.
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
console.log(`node openai check: ok (${usage.completion_tokens} tokens, ${JSON.stringify(text)})`);
