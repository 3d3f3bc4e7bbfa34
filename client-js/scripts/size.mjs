// Prints minified and gzipped sizes of our browser bundle and of the official socket.io.min.js.
import { readFileSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BUDGET = 10 * 1024;

function measure(label, file) {
  const buf = readFileSync(file);
  const gz = gzipSync(buf, { level: 9 }).length;
  console.log(`${label.padEnd(28)} ${String(buf.length).padStart(7)} B minified  ${String(gz).padStart(6)} B gzipped (${(gz / 1024).toFixed(2)} KB)`);
  return gz;
}

const ours = join(root, "dist/browser/client.js");
if (!existsSync(ours)) {
  console.error("dist/browser/client.js missing: run `npm run build` first");
  process.exit(1);
}
const gz = measure("realtime client.js", ours);
try {
  const req = createRequire(join(root, "package.json"));
  const official = join(dirname(req.resolve("socket.io-client/package.json")), "dist/socket.io.min.js");
  measure("socket.io-client min.js", official);
} catch (e) {
  console.log("socket.io-client not installed; skipping comparison");
}
if (gz >= BUDGET) {
  console.error(`over budget: ${gz} B >= ${BUDGET} B gzipped`);
  process.exit(1);
}
console.log(`within budget (< ${BUDGET} B gzipped)`);
