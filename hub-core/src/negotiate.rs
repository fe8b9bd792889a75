//! The negotiate exchange.
