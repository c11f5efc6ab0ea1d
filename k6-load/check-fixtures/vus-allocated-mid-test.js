// expect: scenario chat: preAllocatedVUs 1 is not maxVUs
// k6 would start VUs mid-test and drop arrivals meanwhile, which the JVM driver does not (README.md, k6).
import { complete, load, setup, stream } from "../lib/cocoon.js";

export const options = load(open("../scenarios/chat-streaming.json"));
options.scenarios.chat.preAllocatedVUs = 1;

export { complete, setup, stream };
