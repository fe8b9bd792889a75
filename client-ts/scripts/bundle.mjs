// Emits dist/index.js and dist/msgpack.js (ES modules; @msgpack/msgpack stays an import).
import { build } from "esbuild";

await build({
  entryPoints: ["src/index.ts", "src/msgpack.ts"],
  outdir: "dist",
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["@msgpack/msgpack"],
  sourcemap: true,
  logLevel: "warning",
});
