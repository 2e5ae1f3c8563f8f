//! # Chapter 7: image pull — the OCI distribution protocol and a verified store
//!
//! `docker run busybox` works on a machine that has never seen busybox: Docker
//! says `Unable to find image 'busybox:latest' locally`, downloads it, and runs
//! it. This chapter builds that download. An image on a registry is a tree of
//! documents named by their sha256 digests: a manifest (or, for a
//! multi-platform image, an index of manifests), a config, and layers, each a
//! tar archive. minibox asks the registry for them over HTTP, logs in the way
//! the registry asks (a bearer token from Docker Hub's token server, or a user
//! name and password), checks every byte against its digest, and unpacks each
//! layer into a directory of its own in a content-addressed store. Those
//! directories are exactly chapter 6's layers: the recipe stacks them with
//! overlayfs as before.
//!
//! What changes over chapter 6: `run` takes an image reference (`busybox`,
//! `localhost:5000/team/app:v1`, `busybox@sha256:…`) instead of `--layer`
//! directories, and pulls it when the store lacks it; `pull`, `images`,
//! `login` and `logout` are new.
//!
//! Kernel interfaces: none new for the container; the store uses `rename(2)`
//! for atomic updates, `flock(2)` for its index, `mknod(2)` and
//! `setxattr(2)` for overlayfs's whiteouts and opaque directories. The protocol:
//! the OCI distribution spec and image spec, and Docker's token
//! authentication.
//!
//! ## Layout
//!
//! - [`cli`]: the command line: `run IMAGE COMMAND...`, `pull`, `images`,
//!   `login`, `logout`, `diff`.
//! - [`reference`]: image references, parsed and normalized as Docker does.
//! - [`oci`]: the image format: descriptors, manifests, indexes, configs.
//! - [`platform`]: choosing this machine's image from a multi-platform index.
//! - [`digest`]: sha256 digests, checked while bytes stream.
//! - [`auth`]: challenges, tokens and credentials (files and helper programs).
//! - [`tls`]: whom HTTPS trusts: the system's store and Docker's certs.d.
//! - [`retry`]: trying again after a dropped connection, a stall or a 5xx.
//! - [`registry`]: the concept: the registry's HTTP API, spoken by hand.
//! - [`store`]: the content-addressed store: blobs, unpacked layers, the index.
//! - [`extract`]: unpacking a layer safely, whiteouts translated for overlayfs.
//! - [`pull`]: a pull, start to finish, layers in parallel.
//! - [`progress`]: what a pull shows, in Docker's words.
//! - [`image`]: finding the image a container is made from: in the store, or
//!   pulled.
//! - [`images`]: `minibox images`, Docker's table.
//! - [`run`]: the recipe, and the other commands.

pub mod auth;
pub mod cli;
pub mod digest;
pub mod extract;
pub mod image;
pub mod images;
pub mod oci;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod retry;
pub mod run;
pub mod store;
pub mod tls;
