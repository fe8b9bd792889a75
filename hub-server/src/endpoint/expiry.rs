//! Closing a connection when the authentication it was opened with expires.

use std::sync::Arc;
use std::time::Duration;

use hub_core::protocol::Close;

use crate::connection::Connection;

/// Closes `connection` when its principal's authentication expires, as ASP.NET Core's
/// `CloseOnAuthenticationExpiration` does: a Close message without error that allows the client
/// to reconnect (and authenticate afresh). A refresh that moves the expiry moves the deadline.
pub(crate) async fn close_on_expiry(connection: Arc<Connection>) {
    loop {
        // Listening before reading: a refresh in between is not missed.
        let mut replaced = std::pin::pin!(connection.identity.replaced());
        replaced.as_mut().enable();
        let expires_at = connection.identity.principal().expires_at;
        let expired = async {
            match expires_at {
                Some(at) => {
                    let left = at
                        .duration_since(std::time::SystemTime::now())
                        .unwrap_or(Duration::ZERO);
                    tokio::time::sleep(left).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = connection.closing().cancelled() => return,
            () = replaced => {}
            () = expired => {
                tracing::debug!("closing a connection whose authentication expired");
                connection.end(
                    Close {
                        error: None,
                        allow_reconnect: true,
                    },
                    None,
                );
                return;
            }
        }
    }
}
