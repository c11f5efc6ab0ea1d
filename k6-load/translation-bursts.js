// k6 run -e API_KEY=sk-… [-e BASE_URL=http://127.0.0.1:8080] [-e PROFILE=ci] [-e SCALE=0.5] [-e DURATION=1m] translation-bursts.js
// Built with xk6-sse (see README.md). Rates, stages and thresholds: scenarios/translation-bursts.json.
import { complete, load, setup, stream } from "./lib/cocoon.js";

export const options = load(open("./scenarios/translation-bursts.json"));

export { complete, setup, stream };
