// expect: does not provide an export named 'lod'
import { complete, lod, setup, stream } from "../lib/cocoon.js";

export const options = lod(open("../scenarios/chat-streaming.json"));

export { complete, setup, stream };
