//! # Chapter 11: building images — a Dockerfile becomes layers, a cache, a tag, and a push
//!
//! An image is what chapter 7 pulled, written the other way round: each
//! `RUN` is a chapter 10 container whose writable layer becomes a layer,
//! each `COPY` a change to an overlay of the image so far, every step has a
//! cache key, and `push` sends the result to a registry.
//!
//! ## Layout
//!
//! - [`build`]: the recipe, stage by stage, step by step.
//! - [`dockerfile`]: the Dockerfile parser: instructions, directives, line
//!   continuations, variables, Docker's errors with the line number.
//! - [`context`]: the build context: `.dockerignore`, what a `COPY` source
//!   names and where it lands, and the fingerprint the cache keys on.
//! - [`cache`]: each step's key, and finding it again.
//! - [`steps`]: a `RUN` as a container; a step's changes stored as a layer.
//! - [`filesystem`], [`copy`]: `COPY` and `ADD` through an overlay, in a
//!   child's own mount namespace, inside the root.
//! - [`layer`]: a directory of changes (a `RUN`'s upper directory) becomes an
//!   OCI layer: a deterministic tar with whiteouts, gzip-compressed, digested.
//! - [`image`]: the image a stage makes, and its commit.
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
