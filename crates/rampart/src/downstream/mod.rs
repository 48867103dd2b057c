//! The client side of requests: one driver per protocol, each turning its bytes or frames
//! into requests for [`crate::session`] and the session's typed responses back into bytes or
//! frames. The drivers decide nothing about a request; they only translate, and keep what
//! belongs to their protocol (HTTP/1.1 keep-alive and pipelining, HTTP/2 streams and flow
//! control).

pub mod h1;
pub mod h2;
