// k6 run -e API_KEY=sk-… [-e BASE_URL=http://127.0.0.1:8080] [-e PROFILE=ci] [-e SCALE=0.5] [-e DURATION=1m] soak.js
// Built with xk6-sse (see README.md). Rates, stages and thresholds: scenarios/soak.json.
import { complete, load, setup, stream } from "./lib/cocoon.js";

export const options = load(open("./scenarios/soak.json"));

export { complete, setup, stream };
