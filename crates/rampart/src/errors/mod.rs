//! Errors rampart generates itself: the catalogue, and how they are rendered for the client.

pub mod catalogue;
pub mod pages;
pub mod render;

pub use catalogue::EdgeError;
pub use render::{Format, Problem, negotiate, render};
