// expect: no 'options' export
// k6 would run this with no scenarios: one iteration of a default function it does not have.
import { complete, load, setup, stream } from "../lib/cocoon.js";

export const option = load(open("../scenarios/chat-streaming.json"));

export { complete, setup, stream };
