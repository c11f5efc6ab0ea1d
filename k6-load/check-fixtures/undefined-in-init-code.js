// expect: ReferenceError: scenarioFile is not defined
import { complete, load, setup, stream } from "../lib/cocoon.js";

export const options = load(open(scenarioFile));

export { complete, setup, stream };
