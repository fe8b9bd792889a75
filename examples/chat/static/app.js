// The chat page. Everything it says to the server goes through the client generated from the
// Rust hub traits (examples/chat/client): `ChatHub` methods and a `ChatClient` object for the
// callbacks. `?transport=webSockets|serverSentEvents|longPolling` forces a transport.
// Refusals the hub types (`ChatError`, a Rust enum) arrive as `HubMethodError<ChatError>`:
// `isChatError(error)` narrows one, and `error.error.kind` says which it is.
import { createChat, HttpTransportType, HubConnectionState, isChatError } from "chat-client";

const $ = (id) => document.getElementById(id);
const MAX_CHARS = 500;
const TYPING_EVERY_MS = 2000;
const TYPING_SHOWN_MS = 3500;

/** Per room: what we know and show. */
class RoomView {
  constructor(name) {
    this.name = name;
    this.memberCount = 0;
    this.joined = false;
    /** Entries in display order: messages (with ids), private messages and system lines. */
    this.entries = [];
    this.ids = new Set();
    this.members = [];
    /** nickname → timer of their "is typing" notice. */
    this.typing = new Map();
    /** Aborts the RoomActivity stream. */
    this.activity = null;
  }

  add(entry) {
    if (entry.id !== undefined) {
      const key = `${entry.kind}:${entry.id}`;
      if (this.ids.has(key)) return false;
      this.ids.add(key);
    }
    this.entries.push(entry);
    return true;
  }
}

const state = {
  hub: null,
  me: null,
  rooms: new Map(),
  current: null,
  privateTo: null,
  lastTypingSent: 0,
  /** The rooms to join again once a new nickname is accepted (after losing ours on a reconnect). */
  rejoin: null,
};

// ----- errors -----

/** The server's own words: SignalR prefixes a HubException's text with where it happened. */
function errorText(error) {
  const message = error instanceof Error ? error.message : String(error);
  const at = message.indexOf("HubException: ");
  return at >= 0 ? message.slice(at + "HubException: ".length) : message;
}

function showError(error) {
  $("error-text").textContent = errorText(error);
  $("error-banner").hidden = false;
}

function clearError() {
  $("error-banner").hidden = true;
  $("error-text").textContent = "";
}

/** Runs an action, showing its failure in the banner. */
async function attempt(action) {
  try {
    const result = await action();
    clearError();
    return result;
  } catch (error) {
    showError(error);
    return undefined;
  }
}

// ----- typed refusals (ChatError) -----

/** The ChatError a call was refused with, if it is one (`undefined` for any other failure). */
function chatError(error) {
  return isChatError(error) ? error.error : undefined;
}

/** Shows why a nickname was refused, next to the field: typed refusals in their own words. */
function showNicknameError(error) {
  const refusal = chatError(error);
  const field = $("nickname-error");
  field.dataset.kind = refusal?.kind ?? "";
  $("nickname-input").setAttribute("aria-invalid", "true");
  $("nickname-suggestion").hidden = true;
  if (refusal?.kind === "NicknameTaken") {
    field.textContent = `Someone is already called “${refusal.nickname}” (nicknames ignore case).`;
    if (refusal.suggestion) {
      $("nickname-suggestion-text").textContent = `“${refusal.suggestion}” is free:`;
      const use = $("nickname-suggestion-use");
      use.textContent = `Use ${refusal.suggestion}`;
      use.dataset.nickname = refusal.suggestion;
      $("nickname-suggestion").hidden = false;
    }
  } else if (refusal?.kind === "NicknameInvalid") {
    field.textContent = refusal.reason;
  } else {
    field.textContent = errorText(error);
  }
}

function clearNicknameError() {
  $("nickname-error").textContent = "";
  $("nickname-error").dataset.kind = "";
  $("nickname-input").removeAttribute("aria-invalid");
  $("nickname-suggestion").hidden = true;
}

/** Offers to join (or show) a room that exists, in place of creating it. */
function showRoomExists(name) {
  const joined = room(name).joined;
  $("room-exists-text").textContent = `#${name} already exists${joined ? " and you are in it" : ""}.`;
  const button = $("room-exists-join");
  button.textContent = joined ? `Show #${name}` : `Join #${name}`;
  button.dataset.room = name;
  $("room-exists").hidden = false;
}

function hideRoomExists() {
  $("room-exists").hidden = true;
}

// ----- rendering -----

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

function room(name) {
  let view = state.rooms.get(name);
  if (!view) {
    view = new RoomView(name);
    state.rooms.set(name, view);
  }
  return view;
}

function renderRooms() {
  const list = $("rooms");
  list.replaceChildren();
  for (const view of [...state.rooms.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const item = document.createElement("li");
    item.dataset.room = view.name;
    item.classList.toggle("joined", view.joined);
    item.classList.toggle("current", view.name === state.current);
    item.title = view.joined ? `Show #${view.name}` : `Join #${view.name}`;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `#${view.name}`;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(view.memberCount);
    count.title = "people in the room";
    item.append(name, count);
    item.addEventListener("click", () => (view.joined ? select(view.name) : join(view.name)));
    list.append(item);
  }
}

function entryElement(entry) {
  const item = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = timeFormat.format(new Date(entry.at));
  if (entry.kind === "system") {
    item.className = "message system";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = entry.text;
    item.append(time, document.createElement("span"), text);
    return item;
  }
  item.className = "message";
  item.dataset.id = String(entry.id);
  const from = document.createElement("span");
  from.className = "from";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = entry.text;
  if (entry.kind === "private") {
    item.classList.add("private");
    from.textContent = entry.from === state.me ? `you → ${entry.to}` : `${entry.from} → you`;
    from.title = "private message";
  } else {
    from.textContent = entry.from;
  }
  if (entry.from === state.me) item.classList.add("mine");
  item.append(time, from, text);
  return item;
}

function renderMessages() {
  const list = $("messages");
  const view = state.current && state.rooms.get(state.current);
  const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
  list.replaceChildren(...(view ? view.entries.map(entryElement) : []));
  if (stick) list.scrollTop = list.scrollHeight;
}

function appendEntry(view, entry) {
  if (!view.add(entry)) return;
  if (view.name === state.current) {
    const list = $("messages");
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
    list.append(entryElement(entry));
    if (stick) list.scrollTop = list.scrollHeight;
  }
}

function renderMembers() {
  const list = $("members");
  const view = state.current && state.rooms.get(state.current);
  list.replaceChildren();
  for (const nickname of view ? view.members : []) {
    const item = document.createElement("li");
    item.dataset.nickname = nickname;
    item.textContent = nickname;
    if (nickname === state.me) {
      item.classList.add("me");
      item.textContent = `${nickname} (you)`;
    } else {
      item.title = `Write to ${nickname} privately`;
      item.addEventListener("click", () => setPrivateTo(nickname));
    }
    list.append(item);
  }
}

function renderTyping() {
  const view = state.current && state.rooms.get(state.current);
  const names = view ? [...view.typing.keys()] : [];
  $("typing").textContent =
    names.length === 0 ? "" :
    names.length === 1 ? `${names[0]} is typing…` :
    `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
}

function renderHeader() {
  const view = state.current && state.rooms.get(state.current);
  $("room-title").textContent = view ? `#${view.name}` : "No room — pick one on the left";
  $("leave-room").hidden = !view;
  const canWrite = Boolean(state.me && (view || state.privateTo));
  $("message-input").disabled = !canWrite;
  $("send").disabled = !canWrite;
}

function renderAll() {
  renderRooms();
  renderHeader();
  renderMessages();
  renderMembers();
  renderTyping();
}

function setPrivateTo(nickname) {
  state.privateTo = nickname;
  $("pm-to").textContent = nickname ?? "";
  $("pm-chip").hidden = !nickname;
  renderHeader();
  $("message-input").focus();
}

function updateCounter() {
  const length = [...$("message-input").value].length;
  const counter = $("counter");
  counter.textContent = `${length}/${MAX_CHARS}`;
  counter.classList.toggle("over", length > MAX_CHARS);
}

// ----- what the server calls (the generated ChatClient interface) -----

/** @type {import("chat-client").ChatClient} */
const callbacks = {
  receiveMessage(message) {
    appendEntry(room(message.room), { kind: "message", ...message, at: message.sentAt });
    const view = room(message.room);
    if (view.typing.has(message.from)) {
      clearTimeout(view.typing.get(message.from));
      view.typing.delete(message.from);
      renderTyping();
    }
  },
  receivePrivate(message) {
    // Private messages show in the room you are looking at.
    const view = state.current ? room(state.current) : null;
    if (view) appendEntry(view, { kind: "private", ...message, at: message.sentAt });
    else showError(`${message.from} wrote to you privately: ${message.text}`);
  },
  presenceChanged(presence) {
    const view = room(presence.room);
    view.members = presence.members;
    view.memberCount = presence.members.length;
    if (presence.room === state.current) renderMembers();
    renderRooms();
  },
  userTyping(roomName, nickname) {
    const view = room(roomName);
    clearTimeout(view.typing.get(nickname));
    view.typing.set(nickname, setTimeout(() => {
      view.typing.delete(nickname);
      renderTyping();
    }, TYPING_SHOWN_MS));
    renderTyping();
  },
  roomsChanged(rooms) {
    for (const info of rooms) room(info.name).memberCount = info.memberCount;
    renderRooms();
  },
};

// ----- what the page asks the server (the generated ChatHub class) -----

async function join(name) {
  const joined = await attempt(() => state.hub.joinRoom(name));
  if (!joined) return;
  const view = room(name);
  view.joined = true;
  view.members = joined.presence.members;
  view.memberCount = view.members.length;
  // History first, then anything that arrived while the join was on its way.
  const early = view.entries;
  view.entries = [];
  view.ids.clear();
  for (const message of joined.history) view.add({ kind: "message", ...message, at: message.sentAt });
  for (const entry of early) view.add(entry);
  watchActivity(view);
  select(name);
}

/** Shows joins and leaves from the room's activity stream until the room is left. */
async function watchActivity(view) {
  view.activity?.abort();
  const controller = new AbortController();
  view.activity = controller;
  try {
    for await (const event of state.hub.roomActivity(view.name, controller.signal)) {
      if (event.kind === "joined") {
        appendEntry(view, { kind: "system", text: `${event.nickname} joined`, at: event.at });
      } else if (event.kind === "left") {
        const why = event.reason ? ` (${event.reason})` : "";
        appendEntry(view, { kind: "system", text: `${event.nickname} left${why}`, at: event.at });
      }
      // Messages and typing come through the callbacks above.
    }
  } catch (error) {
    if (!controller.signal.aborted && state.hub.connection.state === HubConnectionState.Connected) {
      showError(error);
    }
  }
}

async function leave(name) {
  const view = room(name);
  view.activity?.abort();
  view.activity = null;
  const left = await attempt(async () => (await state.hub.leaveRoom(name), true));
  if (!left) return;
  view.joined = false;
  view.entries = [];
  view.ids.clear();
  view.members = [];
  if (state.current === name) {
    const next = [...state.rooms.values()].find((other) => other.joined);
    state.current = next ? next.name : null;
  }
  renderAll();
}

function select(name) {
  state.current = name;
  renderAll();
  $("message-input").focus();
}

async function send() {
  const input = $("message-input");
  let text = input.value;
  let to = state.privateTo;
  const command = /^\/msg\s+(\S+)\s([\s\S]*)$/.exec(text);
  if (command) [, to, text] = command;
  const sent = to
    ? await attempt(() => state.hub.sendPrivate(to, text))
    : await attempt(() => state.hub.sendMessage(state.current, text));
  if (!sent) return;
  input.value = "";
  updateCounter();
  // The others drop our typing notice when the message arrives; the next keystroke sends anew.
  state.lastTypingSent = 0;
  if (to) {
    const view = state.current ? room(state.current) : null;
    if (view) appendEntry(view, { kind: "private", ...sent, at: sent.sentAt });
  } else {
    appendEntry(room(sent.room), { kind: "message", ...sent, at: sent.sentAt });
  }
}

function typed() {
  updateCounter();
  const now = Date.now();
  if (!state.current || state.privateTo || now - state.lastTypingSent < TYPING_EVERY_MS) return;
  state.lastTypingSent = now;
  state.hub.typing(state.current).catch(() => {});
}

// ----- connection -----

const TRANSPORTS = {
  webSockets: HttpTransportType.WebSockets,
  serverSentEvents: HttpTransportType.ServerSentEvents,
  longPolling: HttpTransportType.LongPolling,
};

function setStatus(kind, text) {
  const status = $("status");
  status.dataset.state = kind;
  status.textContent = text;
}

/** Takes the nickname and joins the rooms we were in (after a reconnect, the server forgot us). */
async function enter(nickname, rooms) {
  const session = await state.hub.setNickname(nickname);
  state.me = session.nickname;
  $("me").textContent = session.nickname;
  $("transport").textContent = `via ${session.transport}`;
  $("transport").dataset.transport = session.transport;
  // What the client says it uses; the browser tests check that both sides agree.
  $("transport").dataset.clientTransport = state.hub.connection.transport ?? "";
  for (const info of session.rooms) room(info.name).memberCount = info.memberCount;
  renderAll();
  for (const name of rooms) await join(name);
}

async function main() {
  const requested = new URLSearchParams(location.search).get("transport");
  const connection = {};
  if (requested) {
    if (!(requested in TRANSPORTS)) {
      showError(`unknown transport "${requested}": use ${Object.keys(TRANSPORTS).join(", ")}`);
    } else {
      connection.transport = TRANSPORTS[requested];
    }
  }
  state.hub = createChat(location.origin, {
    client: callbacks,
    connection,
    configure: (builder) => builder.withAutomaticReconnect(),
  });
  const hubConnection = state.hub.connection;
  hubConnection.onreconnecting(() => setStatus("reconnecting", "reconnecting…"));
  hubConnection.onreconnected(async () => {
    setStatus("connected", "connected");
    const rooms = [...state.rooms.values()].filter((view) => view.joined).map((view) => view.name);
    for (const view of state.rooms.values()) {
      view.joined = false;
      view.activity?.abort();
    }
    if (!state.me) return;
    try {
      await enter(state.me, rooms);
      clearError();
    } catch (error) {
      if (chatError(error)?.kind !== "NicknameTaken") return showError(error);
      // Someone took our nickname while we were away: pick one again (with the suggestion).
      state.me = null;
      state.rejoin = rooms;
      $("me").textContent = "";
      $("nickname-input").value = error.error.nickname;
      showNicknameError(error);
      $("nickname-dialog").hidden = false;
      renderAll();
    }
  });
  hubConnection.onclose((error) => {
    setStatus("disconnected", "disconnected");
    showError(error ? `disconnected: ${errorText(error)}` : "disconnected; reload the page to come back");
  });

  $("error-close").addEventListener("click", clearError);
  $("nickname-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const nickname = $("nickname-input").value.trim();
    clearNicknameError();
    try {
      await enter(nickname, state.rejoin ?? ["general"]);
      state.rejoin = null;
      $("nickname-dialog").hidden = true;
      document.body.dataset.ready = "true";
    } catch (error) {
      showNicknameError(error);
    }
  });
  $("nickname-suggestion-use").addEventListener("click", (event) => {
    const input = $("nickname-input");
    input.value = event.currentTarget.dataset.nickname;
    clearNicknameError();
    input.focus();
  });
  $("new-room-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("new-room-input");
    hideRoomExists();
    let created;
    try {
      created = await state.hub.createRoom(input.value);
      clearError();
    } catch (error) {
      const refusal = chatError(error);
      if (refusal?.kind === "RoomExists") showRoomExists(refusal.room);
      else showError(error);
      return;
    }
    input.value = "";
    room(created.name);
    await join(created.name);
  });
  $("new-room-input").addEventListener("input", hideRoomExists);
  $("room-exists-join").addEventListener("click", async (event) => {
    const name = event.currentTarget.dataset.room;
    hideRoomExists();
    $("new-room-input").value = "";
    if (room(name).joined) select(name);
    else await join(name);
  });
  $("leave-room").addEventListener("click", () => state.current && leave(state.current));
  $("pm-cancel").addEventListener("click", () => setPrivateTo(null));
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  $("message-input").addEventListener("input", typed);
  $("message-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      send();
    }
  });
  renderAll();

  try {
    await state.hub.start();
    setStatus("connected", "connected");
  } catch (error) {
    setStatus("disconnected", "not connected");
    showError(`cannot connect: ${errorText(error)}`);
  }
}

main();
