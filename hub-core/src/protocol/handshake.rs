//! The handshake that opens every connection.
