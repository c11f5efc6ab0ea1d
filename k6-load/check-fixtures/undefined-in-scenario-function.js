// expect: chat() against a full answer: ReferenceError: DEFAULT_TIMEOUT is not defined
// An identifier private to lib/cocoon.js: it links and its init code runs; only the scenario function meets it.
import { complete, load, setup, stream } from "../lib/cocoon.js";

export const options = load(open("../scenarios/chat-streaming.json"));
options.scenarios.chat.exec = "chat";

export function chat(data) {
  return DEFAULT_TIMEOUT ? stream(data) : complete(data);
}

export { setup };
