//! Writing a hub's part of the package: `index.js` (the hub class, `create…`/`connect…`) and
//! `index.d.ts` (the receiver interface, the wire-name maps, the typed connection, the class),
//! and the naming helpers they share.

use std::fmt::Write as _;

use super::model::{HubModel, Param, TypedError};

/// The guards that narrow caught errors to the hubs' typed errors, once per type: `index.js`.
pub(super) fn write_guards_js<'a>(
    errors: impl IntoIterator<Item = &'a TypedError>,
    out: &mut String,
) {
    for error in errors {
        let _ = writeln!(
            out,
            "\nexport function {}(error) {{\n  return error instanceof HubError && error.type === {};\n}}",
            error.guard(),
            json_string(&error.wire)
        );
    }
}

/// The guards' declarations: `index.d.ts`.
pub(super) fn write_guards_dts<'a>(
    errors: impl IntoIterator<Item = &'a TypedError>,
    out: &mut String,
) {
    for error in errors {
        let _ = writeln!(
            out,
            "\n/** Whether `error` is the `{ts}` a hub method rejected with (its value is `error.error`). */\nexport declare function {}(error: unknown): error is HubMethodError<{ts}>;",
            error.guard(),
            ts = error.ts
        );
    }
}

impl HubModel {
    pub(super) fn write_js(&self, out: &mut String) {
        let class = format!("{}Hub", self.name);
        let _ = writeln!(out, "\n// ----- {} -----\n", self.name);
        let _ = writeln!(
            out,
            "export const {} = {};\n",
            contract_const(self.name),
            json_string(&self.contract)
        );
        if let Some(route) = self.route {
            let _ = writeln!(
                out,
                "export const {} = {};\n",
                route_const(self.name),
                json_string(route)
            );
        }
        let _ = writeln!(out, "export class {class} {{");
        out.push_str("  constructor(connection) {\n    this.connection = connection;\n  }\n");
        for method in &self.methods {
            let names: Vec<&str> = method.params.iter().map(|p| p.name.as_str()).collect();
            let call = if method.stream { "stream" } else { "invoke" };
            let _ = writeln!(
                out,
                "\n  {}({}signal) {{\n    return this.connection.{call}({}, ...withSignal([{}], signal));\n  }}",
                method.ts_name,
                names.iter().map(|n| format!("{n}, ")).collect::<String>(),
                json_string(method.wire),
                names.join(", "),
            );
        }
        out.push_str("\n  register(client) {\n    const registered = [];\n");
        for callback in &self.callbacks {
            let _ = writeln!(
                out,
                "    if (typeof client.{ts} === \"function\") registered.push([{wire}, (...args) => client.{ts}(...args)]);",
                ts = callback.ts_name,
                wire = json_string(callback.wire),
            );
        }
        out.push_str(
            "    for (const [name, handler] of registered) this.connection.on(name, handler);\n    \
             return () => {\n      for (const [name, handler] of registered) this.connection.off(name, handler);\n    };\n  }\n",
        );
        out.push_str("\n  start() {\n    return this.connection.start();\n  }\n\n  stop() {\n    return this.connection.stop();\n  }\n}\n");
        let url = match self.route {
            Some(_) => format!("joinUrl(baseUrl, {})", route_const(self.name)),
            None => "url".to_owned(),
        };
        let param = if self.route.is_some() {
            "baseUrl"
        } else {
            "url"
        };
        let _ = writeln!(
            out,
            "\nexport function create{name}({param}, options = {{}}) {{\n  \
             let builder = new HubConnectionBuilder().withUrl({url}, options.connection ?? {{}}).withContract({contract});\n  \
             if (options.configure) builder = options.configure(builder);\n  \
             const hub = new {class}(builder.build());\n  \
             if (options.client) hub.register(options.client);\n  \
             return hub;\n}}\n\n\
             export async function connect{name}({param}, options = {{}}) {{\n  \
             const hub = create{name}({param}, options);\n  \
             await hub.start();\n  \
             return hub;\n}}",
            name = self.name,
            contract = contract_const(self.name),
        );
    }

    pub(super) fn write_dts(&self, out: &mut String) {
        let class = format!("{}Hub", self.name);
        let methods_map = format!("{}Methods", self.name);
        let callbacks_map = format!("{}Callbacks", self.name);
        let connection = format!("{}Connection", self.name);
        let _ = writeln!(out, "\n// ----- {} -----\n", self.name);

        // The receiver interface.
        let _ = writeln!(
            out,
            "{}export interface {} {{",
            tsdoc(
                &format!(
                    "What the `{}` hub calls on its clients: implement it and pass it to `register` (or `connect{}`'s `client`). Callbacks that return a value answer the server (client results).",
                    self.name, self.name
                ),
                ""
            ),
            self.client_name
        );
        for callback in &self.callbacks {
            let _ = writeln!(
                out,
                "{}  {}({}): {r} | Promise<{r}>;",
                tsdoc(callback.docs, "  "),
                callback.ts_name,
                signature(&callback.params),
                r = callback.result,
            );
        }
        out.push_str("}\n\n");

        // The wire-name maps for typed plain calls.
        let _ = writeln!(
            out,
            "/** The `{}` hub's methods by wire name, for `{connection}`. */\nexport interface {methods_map} {{",
            self.name
        );
        for method in &self.methods {
            let _ = writeln!(
                out,
                "  {}: {{ args: [{}]; result: {}; stream: {} }};",
                json_string(method.wire),
                signature(&method.params),
                method.result,
                method.stream
            );
        }
        out.push_str("}\n\n");
        let _ = writeln!(
            out,
            "/** The `{}` hub's client callbacks by wire name, for `{connection}`. */\nexport interface {callbacks_map} {{",
            self.name
        );
        for callback in &self.callbacks {
            let _ = writeln!(
                out,
                "  {}: {{ args: [{}]; result: {} }};",
                json_string(callback.wire),
                signature(&callback.params),
                callback.result
            );
        }
        out.push_str("}\n\n");
        let _ = writeln!(
            out,
            "/** A connection to the `{}` hub whose plain `invoke`/`send`/`stream`/`on` calls are type-checked. */\nexport type {connection} = TypedConnection<{methods_map}, {callbacks_map}>;\n",
            self.name
        );

        let _ = writeln!(
            out,
            "/** The `{}` hub's contract hash: the client presents it when it connects, and the server can refuse a client generated from other traits (`connection.serverContract` is the server's). */\nexport declare const {}: {};\n",
            self.name,
            contract_const(self.name),
            json_string(&self.contract)
        );
        if let Some(route) = self.route {
            let _ = writeln!(
                out,
                "/** The path the `{}` hub is served at. */\nexport declare const {}: {};\n",
                self.name,
                route_const(self.name),
                json_string(route)
            );
        }

        // The hub class.
        let _ = writeln!(
            out,
            "{}export declare class {class} {{",
            tsdoc(self.docs, "")
        );
        let _ = writeln!(
            out,
            "  constructor(connection: HubConnection);\n  /** The connection, with type-checked plain calls. */\n  readonly connection: {connection};"
        );
        for method in &self.methods {
            let params = signature(&method.params);
            let sep = if params.is_empty() { "" } else { ", " };
            let result = if method.stream {
                format!("HubStream<{}>", method.result)
            } else {
                format!("Promise<{}>", method.result)
            };
            let _ = writeln!(
                out,
                "{}  {}({params}{sep}signal?: AbortSignal): {result};",
                tsdoc(&method.docs, "  "),
                method.ts_name,
            );
        }
        let _ = writeln!(
            out,
            "  /** Registers the callbacks `client` implements; returns a function that unregisters them. */\n  register(client: Partial<{}>): () => void;\n  /** Starts the connection. */\n  start(): Promise<void>;\n  /** Stops the connection. */\n  stop(): Promise<void>;\n}}\n",
            self.client_name
        );
        let (param, what) = match self.route {
            Some(route) => (
                "baseUrl",
                format!("the server at `baseUrl` (the hub is at `{route}` under it)"),
            ),
            None => ("url", "the hub at `url`".to_owned()),
        };
        let _ = writeln!(
            out,
            "/** Builds a connection to {what}, without starting it. */\nexport declare function create{name}({param}: string, options?: ConnectOptions<Partial<{client}>>): {class};\n\n\
             /** Connects to {what}: builds, registers `options.client`, starts. */\nexport declare function connect{name}({param}: string, options?: ConnectOptions<Partial<{client}>>): Promise<{class}>;",
            name = self.name,
            client = self.client_name,
        );
    }
}

/// `room: string, text: string`.
pub(super) fn signature(params: &[Param]) -> String {
    params
        .iter()
        .map(|param| format!("{}: {}", param.name, param.ts))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Chat` → `chatContract`.
pub(super) fn contract_const(hub: &str) -> String {
    format!("{}Contract", camel_case(hub))
}

/// `Chat` → `chatRoute`.
pub(super) fn route_const(hub: &str) -> String {
    format!("{}Route", camel_case(hub))
}

/// `Chat` → `chat`: a hub's name as the start of a TypeScript value name.
pub(super) fn camel_case(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(super) fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// A TSDoc comment for `docs` (nothing when empty), each line indented by `indent`.
pub(super) fn tsdoc(docs: &str, indent: &str) -> String {
    if docs.trim().is_empty() {
        return String::new();
    }
    let mut out = format!("{indent}/**\n");
    for line in docs.lines() {
        let line = line.replace("*/", "*\\/");
        if line.is_empty() {
            let _ = writeln!(out, "{indent} *");
        } else {
            let _ = writeln!(out, "{indent} * {line}");
        }
    }
    let _ = writeln!(out, "{indent} */");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names_start_value_names() {
        assert_eq!(camel_case("Chat"), "chat");
        assert_eq!(camel_case("ChatRoom"), "chatRoom");
        assert_eq!(route_const("Chat"), "chatRoute");
    }

    #[test]
    fn tsdoc_escapes_and_indents() {
        assert_eq!(tsdoc("", "  "), "");
        assert_eq!(
            tsdoc("a */ b\n\nc", ""),
            "/**\n * a *\\/ b\n *\n * c\n */\n"
        );
    }
}
