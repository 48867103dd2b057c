//! rampart-cache: the sans-IO core of rampart's edge cache.
//!
//! - [`control`]: `Cache-Control` response directives (RFC 9111 §5.2).
//! - [`freshness`]: whether a response may be stored and for how long (RFC 9111 §3, §4.2),
//!   with Cloudflare's default edge TTLs where the origin says nothing; its age (§4.2.3).
//! - [`conditional`]: 304 and 412 for stored responses, and If-Range (RFC 9110 §13).
//! - [`range`]: 206, `multipart/byteranges` and 416 (RFC 9110 §14).
//! - [`encoding`]: Accept-Encoding, what is compressible, and zstd, brotli and gzip.
//! - [`key`]: the extensions cached by default, and cache keys (query, headers, cookies).
//! - [`object`]: a stored response and its freshness.
//! - [`codec`]: a stored object as checked bytes, for the disk tier.
//! - [`store`]: the memory tier: sharded, bounded in bytes, CLOCK eviction, Vary variants,
//!   purge by any predicate.
//!
//! Nothing here reads a clock, a socket or a file: the caller passes the time and the fields
//! (the disk tier's files are the server's).
//!
//! ```
//! use rampart_cache::{control::ResponseDirectives, freshness, store::Store, object::{Object, Meta}};
//! use std::time::{Duration, SystemTime};
//!
//! let d = ResponseDirectives::parse([&b"public, max-age=60"[..]]);
//! let now = SystemTime::now();
//! let r = freshness::Response {
//!     status: 200, directives: &d, date: Some(now), expires: None,
//!     has_validator: false, set_cookie: false, vary_star: false,
//! };
//! let lifetime = freshness::lifetime(&r, false, Default::default(), now).unwrap();
//! assert_eq!(lifetime, Duration::from_secs(60));
//!
//! let store = Store::new(64 << 20);
//! let object = Object {
//!     status: 200, fields: Default::default(), body: "hello".into(),
//!     meta: Meta { response_time: Some(now), lifetime, ..Default::default() },
//!     encoded: Default::default(),
//! };
//! store.insert("z\nhttps://a.test/x.css", object, |_| None);
//! assert!(store.get("z\nhttps://a.test/x.css", |_| None).is_some());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod conditional;
pub mod control;
pub mod encoding;
pub mod freshness;
#[doc(hidden)]
pub mod fuzzing;
pub mod key;
pub mod object;
pub mod range;
pub mod store;
