//! Errors rampart generates itself: the catalogue, how they are rendered for the client, and
//! the typed responses that carry them.

pub mod catalogue;
pub mod challenge;
pub mod pages;
pub mod rejection;
pub mod render;

pub use catalogue::EdgeError;
pub use rejection::{Audience, CustomResponse, Rejection, origin_error_page, rejection_response};
pub use render::{Format, Problem, names_html, negotiate, render};
