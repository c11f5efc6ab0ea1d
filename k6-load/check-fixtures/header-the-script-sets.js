// expect: chat-streaming flows.chat.request.headers: 'authorization' cannot be set here
// A parameter file naming a header the scripts set themselves: lib/cocoon.js refuses it, as the JVM driver does.
import { complete, load, setup, stream } from "../lib/cocoon.js";

const file = JSON.parse(open("../scenarios/chat-streaming.json"));
file.flows.chat.request.headers = { "X-Client": "bench", authorization: "Bearer someone-else" };
export const options = load(JSON.stringify(file));

export { complete, setup, stream };
