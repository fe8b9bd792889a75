//! What the `#[hub]` and `#[hub_client]` macros register about each hub, for code generators:
//! methods and callbacks with their wire names, parameters, results, stream kinds and doc
//! comments, and every type with its TypeScript form (from [`ts_rs::TS`]).
//!
//! Each `#[hub]` trait submits one [`HubMetadata`] through `inventory`; [`hubs`] lists them all,
//! in any order (sort by name for stable output).

use std::any::TypeId;
use std::collections::HashSet;

use hub_core::hub::{Authorization, ParameterSource};
use ts_rs::{Config, TypeVisitor, TS};

/// One hub: the trait a `#[hub]` attribute was on.
#[derive(Debug)]
pub struct HubMetadata {
    /// The trait's name, e.g. `Chat`.
    pub name: &'static str,
    /// The path the hub is served at, when the attribute gave one (`#[hub(route = "/chat")]`).
    pub route: Option<&'static str>,
    /// The trait's doc comment.
    pub docs: &'static str,
    /// The methods clients invoke, in declaration order.
    pub methods: &'static [MethodMetadata],
    /// What a connection must meet to connect (`#[authorize]` on the trait).
    pub authorization: fn() -> Authorization,
    /// The callbacks the server calls on clients (`#[hub(client = ChatClient)]`); none when the
    /// attribute names no client trait.
    pub client: &'static ClientMetadata,
    /// The directory of the crate that declared the hub (its `CARGO_MANIFEST_DIR` at compile
    /// time). The TypeScript generator reads the sources there to check the serde attributes of
    /// the types it emits.
    pub source_dir: &'static str,
}

/// One hub method.
#[derive(Debug)]
pub struct MethodMetadata {
    /// The Rust name, e.g. `send_message`.
    pub name: &'static str,
    /// The name clients invoke, e.g. `SendMessage` (matched case-insensitively).
    pub wire_name: &'static str,
    /// The camelCase name for TypeScript members, e.g. `sendMessage`.
    pub typescript_name: &'static str,
    /// The method's doc comment.
    pub docs: &'static str,
    /// Every parameter, context ones included (see [`ParameterMetadata::source`]).
    pub parameters: &'static [ParameterMetadata],
    /// What the method answers.
    pub output: OutputMetadata,
    /// Its error type, when it is a [`ClientError`](crate::ClientError) (the generated client
    /// then rejects with a typed error); `None` for untyped errors and infallible methods.
    pub error: fn() -> Option<TypeMetadata>,
    /// Who may call it (`#[authorize]` on the method or the trait).
    pub authorization: fn() -> Authorization,
}

/// One parameter of a method or callback.
#[derive(Debug)]
pub struct ParameterMetadata {
    /// The Rust name.
    pub name: &'static str,
    /// The camelCase name for TypeScript, e.g. `roomName`.
    pub typescript_name: &'static str,
    /// Whether the client sends it as an argument, as an upload stream, or not at all.
    pub source: ParameterSource,
    /// The type the client sees: the argument's type, or an upload stream's item type.
    pub ty: TypeMetadata,
}

/// What a method answers.
#[derive(Debug)]
pub struct OutputMetadata {
    /// `true` for server-to-client streams (clients call them with `stream`).
    pub stream: bool,
    /// The result's type, or a stream's item type (`()` for methods that return nothing).
    pub ty: TypeMetadata,
}

/// A client-callback trait: what the server may call on clients.
#[derive(Debug)]
pub struct ClientMetadata {
    /// The trait's name, e.g. `ChatClient` (empty for untyped clients).
    pub name: &'static str,
    /// The trait's doc comment.
    pub docs: &'static str,
    /// The callbacks, in declaration order.
    pub callbacks: &'static [CallbackMetadata],
}

/// One client callback.
#[derive(Debug)]
pub struct CallbackMetadata {
    /// The Rust name, e.g. `receive_message`.
    pub name: &'static str,
    /// The name the server sends, e.g. `ReceiveMessage`.
    pub wire_name: &'static str,
    /// The camelCase name for TypeScript members, e.g. `receiveMessage`.
    pub typescript_name: &'static str,
    /// The callback's doc comment.
    pub docs: &'static str,
    /// The arguments the client receives.
    pub parameters: &'static [ParameterMetadata],
    /// The type the client answers with, for callbacks that are client results.
    pub result: Option<TypeMetadata>,
}

/// A type as code generators see it: its Rust spelling and its TypeScript form.
#[derive(Clone, Copy)]
pub struct TypeMetadata {
    /// The type as written in the trait, e.g. `Vec<ChatMessage>`.
    pub rust: &'static str,
    /// Its TypeScript form under a ts-rs configuration.
    pub typescript: fn(&Config) -> TypeScriptType,
}

impl std::fmt::Debug for TypeMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeMetadata")
            .field("rust", &self.rust)
            .finish_non_exhaustive()
    }
}

/// A type in TypeScript: how to name it, and the declarations of the named types it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeScriptType {
    /// How a signature refers to the type, e.g. `Array<ChatMessage> | null`.
    pub name: String,
    /// The declarations of the user types it names, itself included, each once.
    pub declarations: Vec<TypeScriptDeclaration>,
}

/// A TypeScript declaration of a user type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeScriptDeclaration {
    /// The type's TypeScript name.
    pub name: String,
    /// The declaration, e.g. `type ChatMessage = { room: string, text: string, };`.
    pub declaration: String,
    /// The type's doc comment.
    pub docs: Option<String>,
}

/// A type that has a TypeScript form, so it can cross a hub's wire in generated clients.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no TypeScript type, so a hub cannot describe it to generated clients",
    label = "this type crosses the hub's wire",
    note = "derive it next to `Serialize`/`Deserialize`: `#[derive(ts_rs::TS)]` (add `ts-rs` to your dependencies)"
)]
pub trait TypeScript: 'static {
    /// The type's TypeScript form.
    fn typescript(config: &Config) -> TypeScriptType;
}

impl<T: TS + 'static> TypeScript for T {
    fn typescript(config: &Config) -> TypeScriptType {
        let mut collector = Declarations {
            config,
            seen: HashSet::new(),
            declarations: Vec::new(),
        };
        collector.visit::<T>();
        T::visit_dependencies(&mut collector);
        T::visit_generics(&mut collector);
        TypeScriptType {
            name: T::name(config),
            declarations: collector.declarations,
        }
    }
}

/// The TypeScript form of `T`; generated metadata points at this.
pub fn typescript_type<T: TypeScript>(config: &Config) -> TypeScriptType {
    T::typescript(config)
}

/// Collects the declarations of user types (the ones ts-rs would export to a file).
struct Declarations<'a> {
    config: &'a Config,
    seen: HashSet<TypeId>,
    declarations: Vec<TypeScriptDeclaration>,
}

impl TypeVisitor for Declarations<'_> {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if T::output_path().is_none() || !self.seen.insert(TypeId::of::<T>()) {
            return;
        }
        self.declarations.push(TypeScriptDeclaration {
            name: T::ident(self.config),
            declaration: T::decl(self.config),
            docs: T::docs(),
        });
        T::visit_dependencies(self);
    }
}

/// Tells whether a method's error type is a [`ClientError`](crate::ClientError), for its
/// metadata: `(&ErrorTypeProbe::<E>::new()).error_type()` with [`TypedErrorType`] and
/// [`UntypedErrorType`] in scope gives `Some` for one (which must then have a TypeScript type)
/// and `None` for anything else (autoref specialisation, as `ErrorProbe`).
pub struct ErrorTypeProbe<E>(std::marker::PhantomData<fn() -> E>);

impl<E> ErrorTypeProbe<E> {
    /// A probe of `E`.
    pub const fn new() -> Self {
        ErrorTypeProbe(std::marker::PhantomData)
    }
}

impl<E> Default for ErrorTypeProbe<E> {
    fn default() -> Self {
        ErrorTypeProbe::new()
    }
}

/// A [`ClientError`](crate::ClientError)'s metadata (see [`ErrorTypeProbe`]).
pub trait TypedErrorType {
    /// The error type.
    type Error;
    /// The error type's TypeScript form.
    fn error_type(&self) -> Option<TypeMetadata>
    where
        Self::Error: TypeScript;
}

impl<E: crate::ClientError> TypedErrorType for ErrorTypeProbe<E> {
    type Error = E;
    fn error_type(&self) -> Option<TypeMetadata>
    where
        E: TypeScript,
    {
        Some(TypeMetadata {
            rust: std::any::type_name::<E>(),
            typescript: typescript_type::<E>,
        })
    }
}

/// Any other error type's metadata: none (see [`ErrorTypeProbe`]).
pub trait UntypedErrorType {
    /// `None`.
    fn error_type(&self) -> Option<TypeMetadata>;
}

impl<E> UntypedErrorType for &ErrorTypeProbe<E> {
    fn error_type(&self) -> Option<TypeMetadata> {
        None
    }
}

/// One hub's entry in the program-wide registry (what `#[hub]` submits through `inventory`).
#[derive(Debug)]
pub struct HubRegistration(pub &'static HubMetadata);

inventory::collect!(HubRegistration);

/// Every hub registered in this program by `#[hub]`, sorted by name.
pub fn hubs() -> Vec<&'static HubMetadata> {
    let mut hubs: Vec<_> = inventory::iter::<HubRegistration>
        .into_iter()
        .map(|registration| registration.0)
        .collect();
    hubs.sort_by_key(|hub| hub.name);
    hubs
}
