// expect: scenario translate: runs 'complete', which the script does not export as a function
import { load, setup, stream } from "../lib/cocoon.js";

export const options = load(open("../scenarios/translation-bursts.json"));

export { setup, stream };
