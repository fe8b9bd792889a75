import { isRefreshRequired } from "./authentication-refresh.js";
import { ignore, TimeoutError } from "./errors.js";
import { httpFailure, request, withQuery } from "./http-client.js";
import { HttpTransport } from "./http-transport.js";
import type { TransferFormat } from "./protocol.js";

/** Long polling: GET polls (the first returns at once), POST sends, DELETE on stop. */
export class LongPollingTransport extends HttpTransport {
  #binary!: boolean; // set by connect()

  async connect(url: string, format: TransferFormat) {
    this.url = url;
    this.#binary = format === "Binary";
    const first = await this.#poll();
    if (first.status !== 200) throw httpFailure(first, "Long polling");
    this.#loop();
  }

  #poll() {
    const extra: Record<string, string> = this.#binary ? { Accept: "application/octet-stream" } : {};
    // Polls have their own 100 s timeout (the server answers within 90 s); one that times out is retried.
    return request(this.cx, "GET", withQuery(this.url, "_=" + Date.now()), undefined, this.abort.signal, extra, 100_000);
  }

  async #loop() {
    // A 409 asking for a refresh gets one; a second in a row (no successful poll between) fails.
    let refreshed = false;
    try {
      while (!this.closed) {
        const response = await this.#poll().catch((error) => {
          if (error instanceof TimeoutError) return;
          throw error;
        });
        if (!response) continue;
        if (!refreshed && this.cx.refresh && (await isRefreshRequired(response))) {
          refreshed = true;
          try {
            await this.cx.refresh();
          } catch (error) {
            return this.close(error as Error);
          }
          continue;
        }
        refreshed = false;
        if (response.status === 204) return this.close();
        if (response.status !== 200) return this.close(httpFailure(response, "Long polling"));
        const body =
          this.#binary ? new Uint8Array(await response.arrayBuffer()) : await response.text();
        if (body.length) this.onreceive?.(body);
      }
    } catch (error) {
      this.close(error as Error);
    }
  }

  async stop() {
    if (this.closed) return;
    this.abort.abort();
    // The server may be gone already; JS ignores DELETE errors too.
    await request(this.cx, "DELETE", this.url).catch(ignore);
    this.close();
  }
}
