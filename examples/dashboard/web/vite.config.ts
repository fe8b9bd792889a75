// Vite builds the page into dist/, which the Rust server (examples/dashboard/main.rs) serves.
// `npm run dev` serves it with hot reload instead and forwards the API, the stats view and the
// hub (WebSockets included) to a dashboard server on DASHBOARD_URL (default
// http://127.0.0.1:5001).
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

const server = process.env.DASHBOARD_URL ?? "http://127.0.0.1:5001";

export default defineConfig({
  plugins: [vue()],
  build: { target: "es2022", sourcemap: false },
  server: {
    // The generated client is ../client (a file: dependency): let the dev server read it.
    fs: { allow: [".."] },
    proxy: {
      "/api": server,
      "/stats": server,
      "/dashboard": { target: server, ws: true },
    },
  },
});
