//! TypeScript clients generated from the hub traits: an npm package (`package.json`, `index.js`,
//! `index.d.ts`) with, for each `#[hub]`, a typed hub class (`ChatHub`: camelCase methods,
//! typed parameters and results, streams as async iterables, an optional `AbortSignal` on every
//! call), a receiver interface for its `#[hub_client]` trait (`ChatClient`), typed plain runtime
//! calls (`ChatConnection`: `connection.invoke("SendMessage", …)` checked against the Rust
//! signature), the DTO types (from ts-rs, so they follow serde's attributes), doc comments as
//! TSDoc, and the hub's route baked in (`connectChat(baseUrl)`).
//!
//! A type that uses a serde attribute whose wire shape ts-rs cannot see (`serialize_with`,
//! `deserialize_with`, `into`, `from`, `try_from`, `remote`, `transparent` on a struct with named
//! fields) fails generation with [`CodegenError::UnsupportedSerde`], naming the field and the fix
//! (`#[ts(type = "…")]` or `#[ts(as = "…")]`), rather than getting a wrong TypeScript type. The
//! check reads the sources of the crate that declared each hub; types from other crates are
//! trusted as ts-rs describes them.
//!
//! The package carries its runtime: the `@hubs/client` build this crate was released with sits in
//! its `runtime/` folder, so `npm install <dir or tarball>` needs nothing else, works from any
//! location, and the runtime always matches the server that generated the package. The package
//! re-exports the runtime's API (`HubConnectionBuilder`, `HttpTransportType`, `LogLevel`, errors, …)
//! and its MessagePack protocol as `<package>/msgpack`.
//! [`TypeScriptPackage::runtime_dependency`] depends on a published `@hubs/client` instead.
//!
//! Shapes whose TypeScript type would be wrong for some values — 64- and 128-bit integers above
//! 2^53, floats whose NaN and infinities JSON sends as `null`, `Option<Option<T>>` — are reported
//! as warnings naming the place and the fix ([`Generated::warnings`]; printed by
//! [`TypeScriptPackage::run_from_args`]), or refused with [`TypeScriptPackage::strict`].
//!
//! Run it from your server binary, which links every hub it serves:
//!
//! ```no_run
//! use hub_server::codegen::TypeScriptPackage;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `my-server --emit-ts web/chat-client` writes the package and exits.
//! if TypeScriptPackage::new("chat-client").run_from_args()? {
//!     return Ok(());
//! }
//! // … serve as usual
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hub_core::hub::ParameterSource;
use ts_rs::Config;

use crate::registry::{self, HubMetadata, ParameterMetadata, TypeMetadata};

mod lossy;
mod runtime_files;
mod serde_check;

/// The npm name of the client runtime.
const RUNTIME: &str = "@hubs/client";

/// The runtime's version that generated packages carry.
pub const RUNTIME_VERSION: &str = runtime_files::VERSION;

/// Why a package could not be generated.
#[derive(Debug)]
pub enum CodegenError {
    /// No `#[hub]` trait is linked into this program (or none was selected).
    NoHubs,
    /// Two hubs or types would get the same TypeScript name.
    NameClash(String),
    /// Writing the files failed.
    Io(PathBuf, std::io::Error),
    /// `--emit-ts` was given without a directory.
    MissingDirectory,
    /// A type would be described wrongly: it uses a serde attribute whose wire shape ts-rs cannot
    /// see (`serialize_with`, `into`, …). Each line names the type or field, its file, and the fix.
    UnsupportedSerde(Vec<String>),
    /// [`TypeScriptPackage::strict`] is on and some types are lossy (see
    /// [`Generated::warnings`]); each line names the place and the fix.
    Lossy(Vec<String>),
    /// [`TypeScriptPackage::verify`]: the directory differs from what the generator writes; each
    /// line names a file.
    Stale(PathBuf, Vec<String>),
}

impl std::fmt::Display for CodegenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodegenError::NoHubs => f.write_str(
                "no #[hub] trait is linked into this program; generate from the binary that serves the hubs",
            ),
            CodegenError::NameClash(text) => f.write_str(text),
            CodegenError::Io(path, error) => write!(f, "cannot write {}: {error}", path.display()),
            CodegenError::MissingDirectory => {
                f.write_str("--emit-ts needs a directory: `--emit-ts path/to/package`")
            }
            CodegenError::UnsupportedSerde(problems) => {
                f.write_str("the TypeScript of these types would not match what serde sends:")?;
                for problem in problems {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
            CodegenError::Lossy(problems) => {
                f.write_str("these TypeScript types would be wrong for some values (strict generation):")?;
                for problem in problems {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
            CodegenError::Stale(dir, files) => {
                write!(
                    f,
                    "{} is not what the generator writes today; regenerate it (`--emit-ts {}`):",
                    dir.display(),
                    dir.display()
                )?;
                for file in files {
                    write!(f, "\n  - {file}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CodegenError {}

/// One generated file, its path relative to the package directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// e.g. `index.d.ts` or `runtime/index.js` (always with `/`).
    pub path: String,
    /// The file's content.
    pub contents: String,
}

/// A generated package: its files and what the generator warns about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The files, paths relative to the package directory.
    pub files: Vec<GeneratedFile>,
    /// Types whose TypeScript is wrong for some values (64/128-bit integers, floats,
    /// `Option<Option<T>>`), each naming the place and the fix. Empty when every type is exact.
    pub warnings: Vec<String>,
}

/// Where the generated package gets its runtime from.
#[derive(Debug, Clone)]
enum Runtime {
    /// The copy in the package's `runtime/` folder.
    Bundled,
    /// The `@hubs/client` npm package, with this dependency spec.
    Dependency(String),
}

/// The TypeScript package for a set of hubs.
#[derive(Debug, Clone)]
pub struct TypeScriptPackage {
    name: String,
    version: String,
    runtime: Runtime,
    strict: bool,
    hubs: Option<Vec<&'static HubMetadata>>,
}

impl TypeScriptPackage {
    /// A package named `name` (the npm name) for every hub registered in this program.
    pub fn new(name: impl Into<String>) -> Self {
        TypeScriptPackage {
            name: name.into(),
            version: "0.1.0".to_owned(),
            runtime: Runtime::Bundled,
            strict: false,
            hubs: None,
        }
    }

    /// The package's version (default `0.1.0`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Depend on the `@hubs/client` npm package (`spec`: a version range, `file:…`, a tarball)
    /// instead of carrying the runtime in `runtime/`. Then the installed runtime, not this crate,
    /// decides the client's version: keep it equal to [`RUNTIME_VERSION`].
    pub fn runtime_dependency(mut self, spec: impl Into<String>) -> Self {
        self.runtime = Runtime::Dependency(spec.into());
        self
    }

    /// Refuse to generate ([`CodegenError::Lossy`]) instead of warning when a type would be wrong
    /// for some values (see [`Generated::warnings`]).
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Only these hubs (by trait name) instead of every registered one.
    pub fn only(mut self, names: &[&str]) -> Self {
        self.hubs = Some(
            registry::hubs()
                .into_iter()
                .filter(|hub| names.contains(&hub.name))
                .collect(),
        );
        self
    }

    /// If the program was started with `--emit-ts <dir>`, writes the package there, prints its
    /// warnings to standard error (this is the command line's entry point) and returns `true`
    /// (the program should then exit); otherwise returns `false`.
    pub fn run_from_args(&self) -> Result<bool, CodegenError> {
        let mut args = std::env::args_os().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--emit-ts" {
                let dir = args.next().ok_or(CodegenError::MissingDirectory)?;
                let warnings = self.write(Path::new(&dir))?;
                // The command line's own output: a user running `--emit-ts` reads it there.
                #[allow(clippy::print_stderr)]
                for warning in &warnings {
                    eprintln!("warning: {warning}");
                }
                tracing::info!(dir = %Path::new(&dir).display(), "wrote the TypeScript client");
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Writes the package into `dir` (created if missing; a `runtime/` folder left there by an
    /// earlier generation is replaced) and returns its warnings (also logged with `tracing`).
    pub fn write(&self, dir: &Path) -> Result<Vec<String>, CodegenError> {
        let generated = self.generate()?;
        let runtime = dir.join("runtime");
        if runtime.is_dir() {
            std::fs::remove_dir_all(&runtime).map_err(|error| CodegenError::Io(runtime, error))?;
        }
        for file in generated.files {
            let path = dir.join(&file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|error| CodegenError::Io(parent.to_owned(), error))?;
            }
            std::fs::write(&path, file.contents).map_err(|error| CodegenError::Io(path, error))?;
        }
        for warning in &generated.warnings {
            tracing::warn!("{warning}");
        }
        Ok(generated.warnings)
    }

    /// Checks that `dir` holds exactly what [`write`](Self::write) would write there: a test that
    /// keeps a committed package current (as tonic checks its generated code).
    pub fn verify(&self, dir: &Path) -> Result<(), CodegenError> {
        let generated = self.generate()?;
        let mut stale = Vec::new();
        let mut expected = std::collections::BTreeSet::new();
        for file in &generated.files {
            expected.insert(file.path.clone());
            match std::fs::read_to_string(dir.join(&file.path)) {
                Ok(committed) if committed == file.contents => {}
                Ok(_) => stale.push(format!("{} differs", file.path)),
                Err(_) => stale.push(format!("{} is missing", file.path)),
            }
        }
        let mut pending = vec![(dir.to_owned(), String::new())];
        while let Some((folder, prefix)) = pending.pop() {
            let entries = std::fs::read_dir(&folder)
                .map_err(|error| CodegenError::Io(folder.clone(), error))?;
            for entry in entries.flatten() {
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if entry.path().is_dir() {
                    if name != "node_modules" {
                        pending.push((entry.path(), format!("{name}/")));
                    }
                } else if !expected.contains(&name) {
                    stale.push(format!("{name} is not generated any more"));
                }
            }
        }
        if stale.is_empty() {
            Ok(())
        } else {
            stale.sort();
            Err(CodegenError::Stale(dir.to_owned(), stale))
        }
    }

    /// The package's files (see [`generate`](Self::generate) for its warnings too).
    pub fn files(&self) -> Result<Vec<GeneratedFile>, CodegenError> {
        Ok(self.generate()?.files)
    }

    /// The package's files and warnings.
    pub fn generate(&self) -> Result<Generated, CodegenError> {
        let hubs = match &self.hubs {
            Some(hubs) => hubs.clone(),
            None => registry::hubs(),
        };
        if hubs.is_empty() {
            return Err(CodegenError::NoHubs);
        }
        let config = Config::new().with_large_int(lossy::LARGE_INT);
        let mut declarations = Declarations::default();
        let import = match &self.runtime {
            Runtime::Bundled => "./runtime/index.js",
            Runtime::Dependency(_) => RUNTIME,
        };
        let mut js = String::new();
        let mut dts = String::new();
        js.push_str(HEADER);
        dts.push_str(HEADER);
        js.push_str(&JS_PRELUDE.replace("{runtime}", import));
        dts.push_str(&DTS_PRELUDE.replace("{runtime}", import));
        let mut warnings = Vec::new();
        let mut seen = BTreeMap::new();
        for hub in &hubs {
            if let Some(previous) = seen.insert(hub.name, hub.route) {
                return Err(CodegenError::NameClash(format!(
                    "two hubs are named `{}` (routes {:?} and {:?}); rename one trait",
                    hub.name, previous, hub.route
                )));
            }
            let hub = HubModel::new(hub, &config, &mut declarations)?;
            warnings.extend(hub.lossy_shapes());
            hub.write_js(&mut js);
            hub.write_dts(&mut dts);
        }
        if let Some(clash) = declarations
            .by_name
            .keys()
            .find(|name| RUNTIME_IMPORTS.contains(&name.as_str()))
        {
            return Err(CodegenError::NameClash(format!(
                "a type is named `{clash}`, which the generated client imports from the runtime; rename it or give it `#[ts(rename = \"...\")]`"
            )));
        }
        let float_fields = check_serde_shapes(&hubs, &declarations)?;
        let mut types = String::from("\n// ----- types -----\n\n");
        for (name, declaration) in &declarations.by_name {
            warnings.extend(
                lossy::find(name, &declaration.declaration, true)
                    .iter()
                    .map(ToString::to_string),
            );
            if let Some(docs) = &declaration.docs {
                types.push_str(docs);
                if !docs.ends_with('\n') {
                    types.push('\n');
                }
            }
            let _ = writeln!(types, "export {}\n", declaration.declaration);
        }
        dts.push_str(&types);
        warnings.extend(float_fields);
        warnings.dedup();
        if self.strict && !warnings.is_empty() {
            return Err(CodegenError::Lossy(warnings));
        }
        let mut files = vec![
            GeneratedFile {
                path: "package.json".to_owned(),
                contents: self.package_json(),
            },
            GeneratedFile {
                path: "index.js".to_owned(),
                contents: lossy::clean(&js),
            },
            GeneratedFile {
                path: "index.d.ts".to_owned(),
                contents: lossy::clean(&dts),
            },
        ];
        let msgpack = match &self.runtime {
            Runtime::Bundled => "./runtime/msgpack.js".to_owned(),
            Runtime::Dependency(_) => format!("{RUNTIME}/msgpack"),
        };
        for path in ["msgpack.js", "msgpack.d.ts"] {
            files.push(GeneratedFile {
                path: path.to_owned(),
                contents: format!(
                    "{HEADER}// The MessagePack hub protocol: `.withHubProtocol(new MessagePackHubProtocol())` in `configure`.\nexport * from {};\n",
                    json_string(&msgpack)
                ),
            });
        }
        if let Runtime::Bundled = self.runtime {
            files.extend(
                runtime_files::FILES
                    .iter()
                    .map(|(name, contents)| GeneratedFile {
                        path: format!("runtime/{name}"),
                        contents: (*contents).to_owned(),
                    }),
            );
        }
        Ok(Generated { files, warnings })
    }

    fn package_json(&self) -> String {
        let json = serde_json::json!({
            "name": self.name,
            "version": self.version,
            "description": "Typed client for the hubs, generated from their Rust traits by hub-server. Do not edit.",
            "type": "module",
            "main": "./index.js",
            "types": "./index.d.ts",
            "exports": {
                ".": { "types": "./index.d.ts", "import": "./index.js" },
                "./msgpack": { "types": "./msgpack.d.ts", "import": "./msgpack.js" },
            },
            "sideEffects": false,
        });
        let json = match (&self.runtime, json) {
            (Runtime::Dependency(spec), serde_json::Value::Object(mut fields)) => {
                fields.insert(
                    "dependencies".to_owned(),
                    serde_json::json!({ RUNTIME: spec }),
                );
                serde_json::Value::Object(fields)
            }
            (Runtime::Bundled, serde_json::Value::Object(mut fields)) => {
                fields.insert(
                    "hubsRuntime".to_owned(),
                    serde_json::Value::String(RUNTIME_VERSION.to_owned()),
                );
                serde_json::Value::Object(fields)
            }
            (_, json) => json,
        };
        let mut text = serde_json::to_string_pretty(&json).unwrap_or_default();
        text.push('\n');
        text
    }
}

const HEADER: &str =
    "// Generated by hub-server from the Rust hub traits. Do not edit: regenerate instead.\n";

/// What the generated declarations import from the runtime: no user type may take these names.
const RUNTIME_IMPORTS: &[&str] = &[
    "ConnectionOptions",
    "HubConnection",
    "HubConnectionBuilder",
    "HubStream",
];

const JS_PRELUDE: &str = r#"import { HubConnectionBuilder } from "{runtime}";
export * from "{runtime}";

/** The arguments of a call, with the AbortSignal last when there is one. */
function withSignal(args, signal) {
  return signal === undefined ? args : [...args, signal];
}

function joinUrl(base, route) {
  return base.replace(/\/+$/, "") + route;
}
"#;

const DTS_PRELUDE: &str = r#"import type { ConnectionOptions, HubConnection, HubConnectionBuilder, HubStream } from "{runtime}";
export * from "{runtime}";

/** A hub method as the typed connection sees it. */
export interface MethodShape {
  args: unknown[];
  result: unknown;
  stream: boolean;
}

/** A client callback as the typed connection sees it. */
export interface CallbackShape {
  args: unknown[];
  result: unknown;
}

type UnaryMethods<M> = { [K in keyof M]: M[K] extends { stream: false } ? K : never }[keyof M] & string;
type StreamMethods<M> = { [K in keyof M]: M[K] extends { stream: true } ? K : never }[keyof M] & string;

/**
 * A HubConnection whose plain calls are checked against a hub's Rust signatures: method names,
 * argument counts and types, results, and callback handlers.
 */
export interface TypedConnection<
  M extends { [K in keyof M]: MethodShape },
  C extends { [K in keyof C]: CallbackShape },
> extends Omit<HubConnection, "invoke" | "send" | "stream" | "on" | "off"> {
  invoke<K extends UnaryMethods<M>>(method: K, ...args: M[K]["args"] | [...M[K]["args"], AbortSignal]): Promise<M[K]["result"]>;
  send<K extends UnaryMethods<M>>(method: K, ...args: M[K]["args"]): Promise<void>;
  stream<K extends StreamMethods<M>>(method: K, ...args: M[K]["args"] | [...M[K]["args"], AbortSignal]): HubStream<M[K]["result"]>;
  on<K extends keyof C & string>(method: K, handler: (...args: C[K]["args"]) => C[K]["result"] | Promise<C[K]["result"]>): void;
  off<K extends keyof C & string>(method: K, handler?: (...args: C[K]["args"]) => C[K]["result"] | Promise<C[K]["result"]>): void;
}

/** How `connect…` builds its connection. */
export interface ConnectOptions<Client> {
  /** Callbacks to register before the connection starts (so no early push is missed). */
  client?: Client;
  /** Transport options: `transport`, `accessTokenFactory`, `headers`, `WebSocket` (Node 20), … */
  connection?: ConnectionOptions;
  /** Adjusts the builder: transports, protocol, reconnect, logging. */
  configure?: (builder: HubConnectionBuilder) => HubConnectionBuilder;
}
"#;

/// User types by TypeScript name, each declared once.
#[derive(Default)]
struct Declarations {
    by_name: BTreeMap<String, registry::TypeScriptDeclaration>,
}

impl Declarations {
    /// The TypeScript name of `ty`, recording the declarations it needs.
    fn name_of(&mut self, ty: &TypeMetadata, config: &Config) -> Result<String, CodegenError> {
        let typescript = (ty.typescript)(config);
        for declaration in typescript.declarations {
            match self.by_name.get(&declaration.name) {
                Some(existing) if existing.declaration != declaration.declaration => {
                    return Err(CodegenError::NameClash(format!(
                        "two different types are named `{}` in TypeScript; rename one or give it `#[ts(rename = \"...\")]`",
                        declaration.name
                    )));
                }
                Some(_) => {}
                None => {
                    self.by_name.insert(declaration.name.clone(), declaration);
                }
            }
        }
        Ok(typescript.name)
    }
}

/// A parameter as the client passes it.
struct Param {
    name: String,
    ts: String,
}

struct Method {
    ts_name: &'static str,
    wire: &'static str,
    docs: &'static str,
    params: Vec<Param>,
    result: String,
    stream: bool,
}

struct Callback {
    ts_name: &'static str,
    wire: &'static str,
    docs: &'static str,
    params: Vec<Param>,
    result: String,
}

/// One hub, its types resolved.
struct HubModel {
    name: &'static str,
    /// Parameters, results and callbacks whose TypeScript is wrong for some values.
    lossy: Vec<String>,
    docs: &'static str,
    route: Option<&'static str>,
    client_name: String,
    methods: Vec<Method>,
    callbacks: Vec<Callback>,
}

impl HubModel {
    fn new(
        hub: &'static HubMetadata,
        config: &Config,
        declarations: &mut Declarations,
    ) -> Result<Self, CodegenError> {
        let params = |parameters: &[ParameterMetadata],
                      declarations: &mut Declarations|
         -> Result<Vec<Param>, CodegenError> {
            parameters
                .iter()
                .filter(|param| param.source != ParameterSource::Context)
                .map(|param| {
                    let ts = declarations.name_of(&param.ty, config)?;
                    Ok(Param {
                        name: parameter_name(param.typescript_name),
                        ts: match param.source {
                            ParameterSource::Upload => format!("AsyncIterable<{ts}>"),
                            _ => ts,
                        },
                    })
                })
                .collect()
        };
        let mut lossy = Vec::new();
        let mut note = |place: String, ts: &str, rust: &str, sent_to_client: bool| {
            lossy.extend(
                lossy::find(&place, ts, false)
                    .iter()
                    .map(ToString::to_string),
            );
            if sent_to_client {
                lossy.extend(lossy::float_sent(&place, rust));
            }
        };
        let mut methods = Vec::new();
        for method in hub.methods {
            if HUB_CLASS_MEMBERS.contains(&method.typescript_name) {
                return Err(CodegenError::NameClash(format!(
                    "the `{}` hub's method `{}` would hide `{}Hub.{}` in TypeScript; rename the Rust method and keep its wire name with `#[hub(name = \"{}\")]`",
                    hub.name, method.name, hub.name, method.typescript_name, method.wire_name
                )));
            }
            let result = declarations.name_of(&method.output.ty, config)?;
            let method_params = params(method.parameters, declarations)?;
            for param in &method_params {
                note(
                    format!("{}.{}({})", hub.name, method.name, param.name),
                    &param.ts,
                    "",
                    false,
                );
            }
            note(
                format!("{}.{} → result", hub.name, method.name),
                &result,
                method.output.ty.rust,
                true,
            );
            methods.push(Method {
                ts_name: method.typescript_name,
                wire: method.wire_name,
                docs: method.docs,
                params: method_params,
                result: if method.output.ty.rust == "()" && !method.output.stream {
                    "void".to_owned()
                } else {
                    result
                },
                stream: method.output.stream,
            });
        }
        let mut callbacks = Vec::new();
        for callback in hub.client.callbacks {
            let callback_params = params(callback.parameters, declarations)?;
            for (param, meta) in callback_params.iter().zip(
                callback
                    .parameters
                    .iter()
                    .filter(|param| param.source != ParameterSource::Context),
            ) {
                note(
                    format!("{}.{}({})", hub.client.name, callback.name, param.name),
                    &param.ts,
                    meta.ty.rust,
                    true,
                );
            }
            callbacks.push(Callback {
                ts_name: callback.typescript_name,
                wire: callback.wire_name,
                docs: callback.docs,
                params: callback_params,
                result: match &callback.result {
                    Some(ty) => declarations.name_of(ty, config)?,
                    None => "void".to_owned(),
                },
            });
        }
        let client_name = if hub.client.name.is_empty() {
            format!("{}Client", hub.name)
        } else {
            hub.client.name.to_owned()
        };
        Ok(HubModel {
            name: hub.name,
            lossy,
            docs: hub.docs,
            route: hub.route,
            client_name,
            methods,
            callbacks,
        })
    }

    /// Where this hub's own signatures are lossy (its DTOs are checked with the declarations).
    fn lossy_shapes(&self) -> Vec<String> {
        self.lossy.clone()
    }

    fn write_js(&self, out: &mut String) {
        let class = format!("{}Hub", self.name);
        let _ = writeln!(out, "\n// ----- {} -----\n", self.name);
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
             let builder = new HubConnectionBuilder().withUrl({url}, options.connection ?? {{}});\n  \
             if (options.configure) builder = options.configure(builder);\n  \
             const hub = new {class}(builder.build());\n  \
             if (options.client) hub.register(options.client);\n  \
             return hub;\n}}\n\n\
             export async function connect{name}({param}, options = {{}}) {{\n  \
             const hub = create{name}({param}, options);\n  \
             await hub.start();\n  \
             return hub;\n}}",
            name = self.name,
        );
    }

    fn write_dts(&self, out: &mut String) {
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
                tsdoc(method.docs, "  "),
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

/// Members the generated hub class has besides the hub's methods.
const HUB_CLASS_MEMBERS: &[&str] = &["connection", "constructor", "register", "start", "stop"];

/// Words JavaScript reserves that are fine as Rust names.
const RESERVED: &[&str] = &[
    "arguments",
    "case",
    "catch",
    "class",
    "debugger",
    "default",
    "delete",
    "eval",
    "export",
    "extends",
    "finally",
    "function",
    "import",
    "instanceof",
    "interface",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "switch",
    "this",
    "throw",
    "try",
    "typeof",
    "var",
    "void",
    "with",
    "yield",
];

/// Refuses types whose serde attributes ts-rs cannot follow (see [`serde_check`]), reading the
/// sources of the crates that declared the hubs; returns the float fields found there (warnings).
fn check_serde_shapes(
    hubs: &[&'static HubMetadata],
    declarations: &Declarations,
) -> Result<Vec<String>, CodegenError> {
    let names: std::collections::BTreeSet<String> = declarations.by_name.keys().cloned().collect();
    let dirs: std::collections::BTreeSet<&str> = hubs.iter().map(|hub| hub.source_dir).collect();
    let (floats, problems): (Vec<_>, Vec<_>) = dirs
        .into_iter()
        .flat_map(|dir| serde_check::check_dir(Path::new(dir), &names))
        .partition(serde_check::SerdeProblem::is_float);
    if problems.is_empty() {
        Ok(floats.iter().map(ToString::to_string).collect())
    } else {
        Err(CodegenError::UnsupportedSerde(
            problems.iter().map(ToString::to_string).collect(),
        ))
    }
}

/// A parameter name that is legal in JavaScript: reserved words get a trailing `_`.
fn parameter_name(name: &str) -> String {
    if RESERVED.contains(&name) {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

/// `room: string, text: string`.
fn signature(params: &[Param]) -> String {
    params
        .iter()
        .map(|param| format!("{}: {}", param.name, param.ts))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Chat` → `chatRoute`.
fn route_const(hub: &str) -> String {
    format!("{}Route", camel_case(hub))
}

/// `Chat` → `chat`: a hub's name as the start of a TypeScript value name.
fn camel_case(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// A TSDoc comment for `docs` (nothing when empty), each line indented by `indent`.
fn tsdoc(docs: &str, indent: &str) -> String {
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
