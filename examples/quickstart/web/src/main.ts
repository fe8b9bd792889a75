// The front end of your own project: src/main.ts of a fresh Vite app
// (`npm create vite@latest web -- --template vanilla-ts`) after `npm install ../greeter-client`.
import { connectGreeter, HttpTransportType, HubError, type Greeting } from "greeter-client";

const app = document.querySelector<HTMLDivElement>("#app")!;
app.innerHTML = `
  <h1>Greeter</h1>
  <p id="status">connecting…</p>
  <form id="form"><input id="text" placeholder="Say hello" /><button>Greet</button></form>
  <p id="error" role="alert"></p>
  <ul id="log"></ul>`;
const status = app.querySelector<HTMLParagraphElement>("#status")!;
const log = app.querySelector<HTMLUListElement>("#log")!;
const errorText = app.querySelector<HTMLParagraphElement>("#error")!;

function show(greeting: Greeting) {
  const item = document.createElement("li");
  item.textContent = `${greeting.from}: ${greeting.text}`;
  log.append(item);
}

async function main() {
  const params = new URLSearchParams(location.search);
  const token = params.get("token") ?? ""; // yours comes from your login
  const forced = params.get("transport") === "longPolling" ? HttpTransportType.LongPolling : undefined;
  const hub = await connectGreeter(location.origin, {
    connection: { accessTokenFactory: () => token, transport: forced },
    client: { greeted: show },
    configure: (builder) => builder.withAutomaticReconnect(),
  });
  status.textContent = `connected via ${hub.connection.transport}`;
  status.dataset.transport = hub.connection.transport ?? "";

  app.querySelector("#form")!.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = app.querySelector<HTMLInputElement>("#text")!;
    try {
      await hub.greet(input.value); // Promise<Greeting>, typed from the Rust trait
      errorText.textContent = "";
      input.value = "";
    } catch (error) {
      errorText.textContent = error instanceof HubError ? error.message : String(error);
    }
  });
}

main().catch((error) => {
  status.textContent = `cannot connect: ${error}`;
  status.dataset.transport = "";
});
