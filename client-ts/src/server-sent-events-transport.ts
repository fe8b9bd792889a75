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
    // Only each new chunk is decoded and scanned: the pieces of an unfinished line wait in the splitter.
    const split = createSplitter(/\r\n|\r|\n/);
    let skipLF = false;
    let data: string[] = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const lines = split(value);
        // A "\r" ends a line; a "\n" right after it (at the start of the next chunk) belongs to it,
        // not an empty line. (CR and LF bytes are never part of a multi-byte UTF-8 character.)
        if (skipLF && value[0] === 10) lines.shift();
        if (value.length) skipLF = value.at(-1) === 13;
        for (const line of lines) {
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
