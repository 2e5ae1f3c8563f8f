//! # Chapter 11: building images — a Dockerfile becomes layers, a cache, a tag, and a push
//!
//! (Being written.)
//!
//! ## Layout
//!
//! - [`context`]: the build context: `.dockerignore`, what a `COPY` source
//!   names and where it lands, and the fingerprint the cache keys on.
//! - [`dockerfile`]: the Dockerfile parser: instructions, directives, line
//!   continuations, variables, Docker's errors with the line number.
//! - [`layer`]: a directory of changes (a `RUN`'s upper directory) becomes an
//!   OCI layer: a deterministic tar with whiteouts, gzip-compressed, digested.
//! - [`layout`]: `save` and `load`: images in the OCI image layout, as a tar.
//! - [`push`]: the registry's upload protocol.

pub mod build;
pub mod cache;
pub mod cli;
pub mod context;
pub mod copy;
pub mod dockerfile;
pub mod filesystem;
pub mod image;
pub mod layer;
pub mod layout;
pub mod push;
pub mod run;
pub mod steps;
