// Rule: every supported method shape compiles, and the generated server and proxies plug into the
// runtime API: values, `Result`, void, context parameters anywhere, cancellation, server streams
// (fallible items, fallible start), upload streams, renamed methods, hooks, and typed proxies on
// every target.

use hub_server::{
    hub, hub_client, CallerClients, Cancellation, Context, Groups, HubContext, HubError,
    HubServer, Principal, RequestInfo, SingleClient, Stream, UploadStream,
};

#[derive(serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct Message {
    pub text: String,
    pub tags: Vec<String>,
}

/// Client callbacks.
#[hub_client]
pub trait ChatClient {
    async fn receive(&self, message: Message);
    async fn nothing(&self);
    #[hub(name = "custom")]
    async fn renamed(&self, a: i32, b: Option<String>);
    async fn confirm(&self, question: String) -> bool;
}

/// A hub.
#[hub(route = "/chat", client = ChatClient)]
pub trait Chat {
    async fn value(&self, a: i32) -> i32;
    async fn unit(&self);
    async fn explicit_unit(&self) -> ();
    async fn fallible(&self, text: String) -> Result<Message, HubError>;
    async fn io(&self) -> std::io::Result<u8>;
    async fn contexts(
        &self,
        first: i32,
        cx: Context<ChatClientProxy>,
        clients: CallerClients<ChatClientProxy>,
        groups: Groups,
        hub: HubContext<ChatClientProxy>,
        cancel: Cancellation,
        request: RequestInfo,
        principal: Principal,
        last: String,
    );
    async fn stream(&self) -> impl Stream<Item = u32> + Send + 'static;
    async fn stream_unbounded(&self) -> impl Stream<Item = Result<u32, HubError>> + Send + 'static;
    async fn stream_start(&self) -> Result<impl Stream<Item = u32> + Send + 'static, HubError>;
    async fn upload(&self, a: UploadStream<i32>, label: String, b: UploadStream<Message>) -> usize;
    async fn upload_to_stream(&self, a: UploadStream<i32>) -> impl Stream<Item = i32> + Send + 'static;
    async fn untyped_context(&self, cx: Context) -> Option<String>;
    #[hub(on_connected)]
    async fn connected(&self, cx: Context<ChatClientProxy>) -> Result<(), HubError>;
    #[hub(on_disconnected)]
    async fn disconnected(&self, groups: Groups, error: Option<String>);
}

struct Server;

impl Chat for Server {
    async fn value(&self, a: i32) -> i32 {
        a
    }
    async fn unit(&self) {}
    async fn explicit_unit(&self) -> () {}
    async fn fallible(&self, text: String) -> Result<Message, HubError> {
        Ok(Message { text, tags: Vec::new() })
    }
    async fn io(&self) -> std::io::Result<u8> {
        Ok(1)
    }
    async fn contexts(
        &self,
        _first: i32,
        cx: Context<ChatClientProxy>,
        clients: CallerClients<ChatClientProxy>,
        _groups: Groups,
        hub: HubContext<ChatClientProxy>,
        _cancel: Cancellation,
        _request: RequestInfo,
        _principal: Principal,
        last: String,
    ) {
        let message = Message { text: last, tags: vec!["a".into()] };
        clients.all().receive(&message).await;
        clients.others().nothing().await;
        clients.group("g").renamed(1, None::<String>).await;
        clients.group("g").renamed(1, Some("x")).await;
        clients.user("u").receive(message).await;
        let caller: hub_server::__private::Result<bool, hub_server::ClientResultError> =
            clients.caller().confirm("ok?").await;
        let _ = caller;
        let one: ChatClientProxy<SingleClient> = clients.client("id");
        let _ = one.confirm(String::from("sure?")).await;
        let _ = one.untyped().connection_id();
        hub.clients().all().nothing().await;
        cx.clients().others_in_group("g").nothing().await;
        cx.typed::<hub_server::ClientProxy>().clients().all().send("Untyped", (1,)).await;
    }
    async fn stream(&self) -> impl Stream<Item = u32> + Send + 'static {
        futures_util::stream::iter([1, 2])
    }
    async fn stream_unbounded(&self) -> impl Stream<Item = Result<u32, HubError>> + Send + 'static {
        futures_util::stream::iter([Ok(1)])
    }
    async fn stream_start(&self) -> Result<impl Stream<Item = u32> + Send + 'static, HubError> {
        Ok(futures_util::stream::empty())
    }
    async fn upload(&self, _a: UploadStream<i32>, _label: String, _b: UploadStream<Message>) -> usize {
        2
    }
    async fn upload_to_stream(&self, a: UploadStream<i32>) -> impl Stream<Item = i32> + Send + 'static {
        use futures_util::StreamExt;
        a.filter_map(|item| async move { item.ok() })
    }
    async fn untyped_context(&self, cx: Context) -> Option<String> {
        cx.user_id().map(str::to_owned)
    }
    async fn connected(&self, _cx: Context<ChatClientProxy>) -> Result<(), HubError> {
        Ok(())
    }
    async fn disconnected(&self, _groups: Groups, _error: Option<String>) {}
}

async fn serve() -> Result<(), hub_server::ServerError> {
    let server = HubServer::builder()
        .hub("/chat", ServeChat::new(Server))
        .bind("127.0.0.1:0")
        .await?;
    if let Some(hub) = server.hub_context("/chat") {
        hub.typed::<ChatClientProxy>().clients().all().nothing().await;
    }
    Ok(())
}

fn main() {
    let _ = serve;
    assert_eq!(ServeChat::<Server>::METADATA.methods.len(), 12);
}
