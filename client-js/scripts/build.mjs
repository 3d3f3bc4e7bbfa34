// Builds the client: Node and browser ES modules, their CommonJS twins in dist/cjs (a
// "type": "commonjs" scope), the minified browser IIFE, and .d.ts types for both.
// Usage: node scripts/build.mjs [outDir] [--no-copy] [--no-types]
import * as esbuild from "esbuild";
import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const staticDir = resolve(root, "../realtime/static");

const nodePlatform = {
  name: "node-platform",
  setup(b) {
    b.onResolve({ filter: /\/platform(\.js)?$/ }, () => ({ path: join(root, "src/platform-node.ts") }));
  },
};

export async function build(outDir = join(root, "dist"), { types = true } = {}) {
  mkdirSync(outDir, { recursive: true });
  const common = { bundle: true, logLevel: "warning", legalComments: "none", absWorkingDir: root };
  await Promise.all([
    esbuild.build({
      ...common,
      entryPoints: [join(root, "src/index.ts")],
      outfile: join(outDir, "index.mjs"),
      format: "esm",
      platform: "node",
      target: "node18",
      sourcemap: true,
      plugins: [nodePlatform],
    }),
    esbuild.build({
      ...common,
      entryPoints: [join(root, "src/index.ts")],
      outfile: join(outDir, "index.browser.mjs"),
      format: "esm",
      platform: "browser",
      target: "es2015",
      minify: true,
      sourcemap: true,
    }),
    esbuild.build({
      ...common,
      entryPoints: [join(root, "src/index.ts")],
      outfile: join(outDir, "cjs", "index.js"),
      format: "cjs",
      platform: "node",
      target: "node18",
      plugins: [nodePlatform],
    }),
    esbuild.build({
      ...common,
      entryPoints: [join(root, "src/index.ts")],
      outfile: join(outDir, "cjs", "index.browser.js"),
      format: "cjs",
      platform: "browser",
      target: "es2015",
      minify: true,
    }),
    esbuild.build({
      ...common,
      entryPoints: [join(root, "src/browser.ts")],
      outfile: join(outDir, "browser", "client.js"),
      format: "iife",
      platform: "browser",
      target: "es2015",
      minify: true,
      sourcemap: true,
    }),
  ]);
  // Source paths independent of the output directory, so builds are byte-for-byte reproducible.
  for (const f of ["index.mjs", "index.browser.mjs", "browser/client.js"]) {
    const mapFile = join(outDir, f + ".map");
    const map = JSON.parse(readFileSync(mapFile, "utf8"));
    map.sources = map.sources.map((s) => "client-js/" + relative(root, resolve(dirname(join(outDir, f)), s)).split("\\").join("/"));
    writeFileSync(mapFile, JSON.stringify(map));
  }
  writeFileSync(join(outDir, "cjs", "package.json"), '{ "type": "commonjs" }\n');
  if (types) {
    rmSync(join(outDir, "types"), { recursive: true, force: true });
    execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.json"), "--outDir", join(outDir, "types")], {
      stdio: "inherit",
    });
    // the same declarations, read as CommonJS under the require condition
    rmSync(join(outDir, "cjs", "types"), { recursive: true, force: true });
    cpSync(join(outDir, "types"), join(outDir, "cjs", "types"), { recursive: true });
  }
  return { browserBundle: join(outDir, "browser", "client.js") };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const outDir = args.find((a) => !a.startsWith("--"));
  const { browserBundle } = await build(outDir ? resolve(outDir) : undefined, { types: !args.includes("--no-types") });
  if (!args.includes("--no-copy")) {
    mkdirSync(staticDir, { recursive: true });
    copyFileSync(browserBundle, join(staticDir, "client.js"));
    copyFileSync(browserBundle + ".map", join(staticDir, "client.js.map"));
    console.log("copied browser bundle to realtime/static/client.js");
  }
}
