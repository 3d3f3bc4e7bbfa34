// Rebuilds the browser bundle into a temporary directory and fails if the committed
// realtime/static/client.js (or its source map) differs from it.
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build, staticDir } from "./build.mjs";

const tmp = mkdtempSync(join(tmpdir(), "realtime-client-"));
try {
  const { browserBundle } = await build(tmp, { types: false });
  let stale = false;
  for (const [built, shipped] of [
    [browserBundle, join(staticDir, "client.js")],
    [browserBundle + ".map", join(staticDir, "client.js.map")],
  ]) {
    if (!existsSync(shipped) || !readFileSync(built).equals(readFileSync(shipped))) {
      console.error(`stale: ${shipped} differs from a fresh build; run \`npm run build\` in client-js and commit`);
      stale = true;
    }
  }
  if (stale) process.exitCode = 1;
  else console.log("realtime/static/client.js is up to date");
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
