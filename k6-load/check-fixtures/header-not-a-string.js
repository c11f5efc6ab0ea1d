// expect: sse.open header 'X-Attempt' is 1, not a string
// A header value that is a number: the stand-ins refuse it where k6 would send whatever it made of it.
import sse from "k6/x/sse";
import { load, setup } from "../lib/cocoon.js";

export const options = load(open("../scenarios/chat-streaming.json"));
options.scenarios.chat.exec = "chat";

export function chat() {
  sse.open("http://127.0.0.1:8080/v1/chat/completions", { method: "POST", headers: { "X-Attempt": 1 }, body: "{}" }, () => {});
}

export { setup };
