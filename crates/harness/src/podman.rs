//! podman as a peer in tests: `podman run --rm` of an image from a test
//! registry, with everything of podman's (storage, state, mounts) the
//! test's own, so that nothing of the host's is touched.

use std::path::Path;
use std::process::{Command, Output};

/// Whether podman is installed here.
pub fn installed() -> bool {
    Path::new("/usr/bin/podman").exists()
}

/// `podman run --rm IMAGE ARGS...` of `image` pulled from a test registry
/// (plain HTTP; `pull_flags` such as `--creds USER:PASSWORD`), with
/// storage of its own below `dir`, in a mount namespace of its own with a
/// tmpfs on `/run` (its mounts and state vanish with it), without cgroups
/// or a network (crun, which without cgroups accepts this project's hybrid
/// layout). The limits are given because these machines' root lacks
/// `CAP_SYS_RESOURCE`, and podman would raise them.
pub fn run(dir: &Path, image: &str, pull_flags: &[&str], args: &[&str]) -> Output {
    let root = dir.join("podman");
    let podman = format!(
        "podman --root {root}/root --runroot {root}/run --storage-driver overlay \
         --runtime crun --cgroup-manager cgroupfs --events-backend none",
        root = root.display()
    );
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs tmpfs /run \
         && {podman} pull -q --tls-verify=false {pull} {image} >/dev/null \
         && exec {podman} run --rm --pull never --cgroups disabled --network none \
         --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 {image} {args}",
        pull = pull_flags.join(" "),
        args = args.join(" ")
    );
    Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env("HOME", dir)
        .output()
        .expect("unshare and podman")
}
