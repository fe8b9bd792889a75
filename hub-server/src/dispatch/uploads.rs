//! Upload streams: the bounded channel between the reader (the client's StreamItems) and the
//! hub method that reads them.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};

use bytestring::ByteString;
use hub_core::hub::HubError;
use hub_core::protocol::RawValue;
use tokio::sync::mpsc;

/// The first of `stream_ids` that already names an open upload (or that the list names twice):
/// an upload stream id names one stream at a time, and reusing one would silently take the
/// first upload's items.
pub(super) fn stream_id_in_use<'a>(
    open: &HashMap<ByteString, UploadSender>,
    stream_ids: &'a [ByteString],
) -> Option<&'a ByteString> {
    stream_ids
        .iter()
        .enumerate()
        .find(|&(i, id)| open.contains_key(id) || stream_ids[..i].contains(id))
        .map(|(_, id)| id)
}

/// A bounded upload stream: items wait for room; the end (with or without an error) does not.
pub(super) fn upload_channel(capacity: usize) -> (UploadSender, UploadReceiver) {
    let (items, receiver) = mpsc::channel(capacity);
    let failure = Arc::new(Mutex::new(None));
    (
        UploadSender {
            items,
            failure: failure.clone(),
        },
        UploadReceiver {
            items: receiver,
            failure,
        },
    )
}

/// The reader's end of an upload stream. Dropping it ends the stream.
pub(super) struct UploadSender {
    pub(super) items: mpsc::Sender<RawValue>,
    failure: Arc<Mutex<Option<HubError>>>,
}

impl UploadSender {
    /// Ends the stream with `error`, after the items already sent.
    pub(super) fn fail(self, error: HubError) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

/// The method's end of an upload stream.
pub(super) struct UploadReceiver {
    items: mpsc::Receiver<RawValue>,
    failure: Arc<Mutex<Option<HubError>>>,
}

impl futures_util::Stream for UploadReceiver {
    type Item = Result<RawValue, HubError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        match self.items.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(Ok(item))),
            // The sender is gone: the client ended the stream, possibly with an error.
            Poll::Ready(None) => Poll::Ready(
                self.failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .map(Err),
            ),
            Poll::Pending => Poll::Pending,
        }
    }
}
