// expect: threshold 'ttft{scenario:chats}': no scenario 'chats'
// k6 passes a threshold that no sample reaches: this one would never fail a run.
import { complete, load, setup, stream } from "../lib/cocoon.js";

export const options = load(open("../scenarios/chat-streaming.json"));
options.thresholds["ttft{scenario:chats}"] = ["p(99)<1"];

export { complete, setup, stream };
