//! # Chapter 14: the OCI runtime interface — podman, Docker and containerd drive minibox
//!
//! Docker, podman and containerd never create a container themselves: they
//! write a *bundle* (a root filesystem and a `config.json` in the OCI runtime
//! specification's format) and call a runtime binary with runc's command
//! line. This chapter makes minibox one of those runtimes (`minibox-runc`),
//! from the concepts of chapters 1 to 13.
