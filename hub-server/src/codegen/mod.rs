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

use ts_rs::Config;

use crate::registry::{self, HubMetadata};

mod contract;
mod emit;
mod lossy;
mod model;
mod runtime_files;
mod serde_check;

pub use contract::contract_hash;
pub(crate) use contract::contract_of;
use emit::json_string;
use model::{Declarations, HubModel, DTS_PRELUDE, HEADER, JS_PRELUDE, RUNTIME_IMPORTS};

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
        let mut typed_errors = std::collections::BTreeSet::new();
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
            typed_errors.extend(hub.methods.iter().filter_map(|method| method.error.clone()));
        }
        if !typed_errors.is_empty() {
            js.push_str("\n// ----- typed errors -----\n");
            dts.push_str("\n// ----- typed errors -----\n");
            emit::write_guards_js(&typed_errors, &mut js);
            emit::write_guards_dts(&typed_errors, &mut dts);
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
        let float_fields = serde_check::check_hubs(&hubs, &declarations)?;
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
