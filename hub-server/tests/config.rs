//! Settings that would panic or hang a hub are refused when the server is built, with an error
//! that names the setting.

use std::time::Duration;

use hub_server::{Context, HubConfig, HubError, HubMethods, HubServer, ServerError};

fn hub() -> HubMethods<Context> {
    HubMethods::new().method("Echo", |_, (text,): (String,)| async move {
        Ok::<_, HubError>(text)
    })
}

/// The error `config` gets when the server is built, as text.
fn refusal(config: HubConfig) -> String {
    match HubServer::builder()
        .hub("/hub", hub())
        .config(config)
        .into_service()
    {
        Ok(_) => panic!("the server was built"),
        Err(error) => {
            assert!(matches!(error, ServerError::Config { .. }), "{error:?}");
            error.to_string()
        }
    }
}

#[test]
fn zero_capacities_and_zero_parallelism_are_build_errors_naming_the_field() {
    let cases = [
        (
            "max_parallel_invocations",
            HubConfig::new().max_parallel_invocations(0),
        ),
        (
            "outbound_queue_capacity",
            HubConfig::new().outbound_queue_capacity(0),
        ),
        (
            "stream_buffer_capacity",
            HubConfig::new().stream_buffer_capacity(0),
        ),
        (
            "stateful_reconnect_buffer_size",
            HubConfig::new().stateful_reconnect_buffer_size(0),
        ),
        (
            "websocket_read_buffer_size",
            HubConfig::new().websocket_read_buffer_size(0),
        ),
        ("max_message_size", HubConfig::new().max_message_size(0)),
        (
            "keep_alive_interval",
            HubConfig::new().keep_alive_interval(Duration::ZERO),
        ),
        (
            "long_polling_timeout",
            HubConfig::new().long_polling_timeout(Duration::ZERO),
        ),
        ("protocols", HubConfig::new().protocols([])),
        ("transports", HubConfig::new().transports([])),
    ];
    for (field, config) in cases {
        let text = refusal(config);
        assert!(
            text.starts_with(&format!(
                "the hub at `/hub` cannot be served: HubConfig::{field} "
            )),
            "{text}"
        );
    }
    assert_eq!(
        refusal(HubConfig::new().outbound_queue_capacity(0)),
        "the hub at `/hub` cannot be served: HubConfig::outbound_queue_capacity must be at least 1 \
         (it is 0): no message could ever be queued for a client"
    );
}

#[test]
fn a_hub_with_its_own_settings_is_checked_too() {
    let endpoint =
        hub_server::HubEndpoint::new(hub()).config(HubConfig::new().max_parallel_invocations(0));
    let error = HubServer::builder()
        .hub("/fine", hub())
        .endpoint("/broken", endpoint)
        .into_service()
        .err()
        .map(|error| error.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "the hub at `/broken` cannot be served: HubConfig::max_parallel_invocations must be at \
             least 1 (it is 0): no invocation could ever run"
        )
    );
}

#[tokio::test]
async fn bind_refuses_before_listening() {
    let error = HubServer::builder()
        .hub("/hub", hub())
        .config(HubConfig::new().outbound_queue_capacity(0))
        .bind(("127.0.0.1", 0))
        .await
        .err()
        .map(|error| error.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|text| text.contains("outbound_queue_capacity")),
        "{error:?}"
    );
}

#[test]
fn the_defaults_are_valid() {
    assert_eq!(HubConfig::default().validate(), Ok(()));
}
