// Streams one chat completion from a Cocoon gateway through OpenAI's official Node SDK and checks
// what a chat frontend relies on: content deltas, one finish_reason, the usage chunk.
// Usage: node stream-check.mjs <gateway-url> <api-key>
import OpenAI from 'openai';

const [baseURL, apiKey] = process.argv.slice(2);
if (!baseURL || !apiKey) {
  console.error('usage: node stream-check.mjs <gateway-url> <api-key>');
  process.exit(2);
}
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });
const stream = await client.chat.completions.create({
  model: 'synthetic',
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
if (text.split(' ').length !== 10) fail(`expected 10 words, got ${JSON.stringify(text)}`);
if (finishReasons.join() !== 'length') fail(`finish reasons ${finishReasons}`);
if (!usage || usage.completion_tokens !== 10) fail(`usage ${JSON.stringify(usage)}`);
console.log(`node openai check: ok (${usage.completion_tokens} tokens, "${text}")`);
