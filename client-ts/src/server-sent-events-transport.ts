import { TransportError } from "./errors.js";
import { httpFailure, request } from "./http-client.js";
import { HttpTransport } from "./http-transport.js";
import { createSplitter, type TransferFormat } from "./protocol.js";

/** Server-Sent Events read with `fetch` (works in browsers and Node ≥ 18), sends as POSTs. */
export class ServerSentEventsTransport extends HttpTransport {
  async connect(url: string, format: TransferFormat) {
    if (format !== "Text") throw new TransportError("Server-Sent Events support only the Text format.");
    this.url = url;
    const response = await request(this.cx, "GET", url, undefined, this.abort.signal, {
      Accept: "text/event-stream",
    }, 0);
    if (!response.ok || !response.body) throw httpFailure(response, "Server-Sent Events");
    this.#read(response.body.getReader());
  }

  async #read(reader: ReadableStreamDefaultReader<Uint8Array>) {
    const decoder = new TextDecoder();
    // Only each new chunk is scanned: the pieces of an unfinished line wait in the splitter.
    const split = createSplitter(/\r\n|\r|\n/);
    let skipLF = false;
    let data: string[] = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        let text = decoder.decode(value, { stream: true });
        if (!text) continue;
        // A "\r" ends a line; a "\n" right after it (maybe in the next chunk) belongs to it.
        if (skipLF && text[0] === "\n") text = text.slice(1);
        skipLF = text.endsWith("\r");
        for (const line of split(text)) {
          if (line === "") {
            if (data.length) this.onreceive?.(data.join("\n"));
            data = [];
          } else if (line.startsWith("data:")) {
            data.push(line.slice(line[5] === " " ? 6 : 5));
          }
        }
      }
      this.close();
    } catch (error) {
      this.close(error as Error);
    }
  }
}
