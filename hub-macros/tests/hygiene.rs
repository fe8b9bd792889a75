//! Generated code names everything by absolute path: it compiles without the prelude and with
//! the crates it uses renamed.

#![no_implicit_prelude]
#![allow(dead_code, missing_docs)]

extern crate hub_server as renamed_hub_server;
extern crate std as renamed_std;

/// Callbacks.
#[renamed_hub_server::hub_client]
pub trait HygieneClient {
    /// A push.
    async fn pushed(&self, text: renamed_std::string::String);
    /// A client result.
    async fn asked(&self, question: renamed_std::string::String) -> bool;
}

/// A hub.
#[renamed_hub_server::hub(route = "/hygiene", client = HygieneClient)]
pub trait Hygiene {
    /// Echo.
    async fn echo(&self, text: renamed_std::string::String) -> renamed_std::string::String;
    /// Fallible.
    async fn fallible(
        &self,
        n: i64,
    ) -> renamed_std::result::Result<i64, renamed_hub_server::HubError>;
    /// With context.
    async fn with_context(&self, cx: renamed_hub_server::Context<HygieneClientProxy>);
    /// A stream.
    async fn numbers(
        &self,
    ) -> impl renamed_hub_server::Stream<Item = u32> + ::core::marker::Send + 'static;
    /// An upload.
    async fn upload(&self, items: renamed_hub_server::UploadStream<u8>) -> usize;
    /// Hook.
    #[hub(on_connected)]
    async fn connected(&self, cx: renamed_hub_server::Context);
    /// Hook.
    #[hub(on_disconnected)]
    async fn disconnected(&self, error: renamed_std::option::Option<renamed_std::string::String>);
}

#[test]
fn generated_code_needs_no_prelude() {
    let metadata = ServeHygiene::<()>::METADATA;
    ::std::assert_eq!(metadata.methods.len(), 5);
    ::std::assert_eq!(metadata.client.callbacks.len(), 2);
}
