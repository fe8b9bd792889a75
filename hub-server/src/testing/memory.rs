//! The in-memory transport between a test client and its hub.

use bytes::Bytes;

use hub_core::protocol::Protocol;

use tokio::sync::mpsc;

use crate::transport::{TransportError, TransportSink, TransportSource, TrySend};

/// The hub's end of a test client's receiving direction.
pub(super) struct MemorySource(pub(super) mpsc::Receiver<Bytes>);

impl TransportSource for MemorySource {
    async fn next(&mut self) -> Option<Result<Bytes, TransportError>> {
        self.0.recv().await.map(Ok)
    }
}

/// The hub's end of a test client's sending direction.
pub(super) struct MemorySink(pub(super) Option<mpsc::Sender<Bytes>>);

impl TransportSink for MemorySink {
    fn set_protocol(&mut self, _protocol: Protocol) {}

    async fn send(&mut self, frame: Bytes) -> Result<(), TransportError> {
        match &self.0 {
            Some(sender) => sender
                .send(frame)
                .await
                .map_err(|_| TransportError("the test client is gone".to_owned())),
            None => Err(TransportError("the transport is closed".to_owned())),
        }
    }

    fn try_send(&mut self, frame: Bytes) -> TrySend {
        match &self.0 {
            Some(sender) => match sender.try_send(frame) {
                Ok(()) => TrySend::Sent,
                Err(mpsc::error::TrySendError::Full(frame)) => TrySend::Busy(frame),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    TrySend::Failed(TransportError("the test client is gone".to_owned()))
                }
            },
            None => TrySend::Failed(TransportError("the transport is closed".to_owned())),
        }
    }

    async fn close(&mut self, _internal_error: bool) {
        self.0 = None;
    }
}
