//! Chapter 12's fixture images: `minibox/probe` carries a static program that
//! runs on its own and prints one `NAME: WORD` line per probe, in a fixed
//! order, and `caps` the status lines it is named for; the two
//! `evil-symlinks` images link `/proc`, `/dev`, `/sys` and `/data` out of the
//! root, absolutely and by climbing; and the fixture registry serves all
//! three under the names the chapter's tests pull.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use harness::images::{self, CLIMB, EVIL_SYMLINKS, Layer, MANIFEST};
use harness::registry::Registry;

/// Each entry of a layer: its path, its type, its link target if any, and
/// its bytes.
fn entries(layer: &Layer) -> Vec<(String, tar::EntryType, Option<String>, Vec<u8>)> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&layer.blob.bytes[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned());
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (path, kind, target, bytes)
        })
        .collect()
}

/// The probe program, as the image carries it.
fn probe_program() -> PathBuf {
    harness::fixtures::static_program("probe").unwrap()
}

/// Runs the probe on this machine (not in a container) with `args`: its
/// exit status and its stdout.
fn probe(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(probe_program()).args(args).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

/// The value of `key` in this test's own `/proc/self/status`.
fn own_status(key: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn the_probe_image_is_busybox_and_a_static_probe() {
    let image = images::probe().unwrap();
    let busybox = images::busybox().unwrap();
    assert_eq!(image.layers.len(), 2);
    assert_eq!(image.layers[0].diff_id, busybox.layers[0].diff_id);
    let top = entries(&image.layers[1]);
    let names: Vec<&str> = top.iter().map(|(path, ..)| path.as_str()).collect();
    assert_eq!(names, ["bin/", "bin/probe"]);
    let program = probe_program();
    assert!(harness::fixtures::is_static(&program).unwrap());
    assert_eq!(top[1].3, std::fs::read(&program).unwrap());
    let config: serde_json::Value = serde_json::from_slice(&image.config.bytes).unwrap();
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["probe"]));
}

#[test]
fn probe_caps_prints_the_status_lines_it_is_named_for() {
    let (status, stdout) = probe(&["caps"]);
    assert_eq!(status, Some(0));
    let lines: Vec<(&str, &str)> = stdout
        .lines()
        .map(|l| l.split_once(": ").unwrap_or_else(|| panic!("{l:?}")))
        .collect();
    let keys: Vec<&str> = lines.iter().map(|(key, _)| *key).collect();
    assert_eq!(
        keys,
        [
            "CapInh",
            "CapPrm",
            "CapEff",
            "CapBnd",
            "CapAmb",
            "NoNewPrivs",
            "Seccomp"
        ]
    );
    for (key, value) in &lines[..5] {
        assert!(
            value.len() == 16 && value.chars().all(|c| c.is_ascii_hexdigit()),
            "{key}: {value:?} is not a capability mask"
        );
    }
    // What execve keeps as it is: the bounding set, no_new_privs, seccomp.
    for (key, value) in [lines[3], lines[5], lines[6]] {
        assert_eq!(value, own_status(key), "{key}");
    }
}

#[test]
fn the_probes_answer_in_their_own_order_one_word_each() {
    // Two harmless probes (a descriptor made and closed; a read) named out of
    // order: they answer in the program's order, caps last.
    let (status, stdout) = probe(&["caps", "kcore", "userfaultfd"]);
    assert_eq!(status, Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() > 2, "{stdout}");
    let word = regex::Regex::new(r"^(ok|empty|E[A-Z0-9]+|errno-[0-9]+)$").unwrap();
    for (line, name) in lines.iter().zip(["userfaultfd", "kcore"]) {
        let answer = line.strip_prefix(&format!("{name}: ")).unwrap_or("");
        assert!(word.is_match(answer), "{line:?} is not `{name}: WORD`");
    }
    assert!(lines[2].starts_with("CapInh: "), "{stdout}");

    let (status, stdout) = probe(&["kcore", "no-such-probe"]);
    assert_eq!((status, stdout.as_str()), (Some(2), ""));
}

/// Follows `link` (a symlink's target) as the kernel would from `dir`, by
/// its text alone.
fn follow(dir: &Path, link: &str) -> PathBuf {
    let mut at = if link.starts_with('/') {
        PathBuf::from("/")
    } else {
        dir.to_path_buf()
    };
    for component in Path::new(link).components() {
        match component {
            Component::ParentDir => {
                at.pop();
            }
            Component::Normal(name) => at.push(name),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    at
}

#[test]
fn the_evil_images_link_proc_dev_sys_and_data_out_of_the_root() {
    let abs = images::evil_symlinks_abs().unwrap();
    let rel = images::evil_symlinks_rel().unwrap();
    // A root filesystem as deep as a store in a test's temporary directory.
    let rootfs = Path::new("/tmp/.tmpXXXXXX/store/overlay/0123456789ab/merged");
    for (image, absolute) in [(&abs, true), (&rel, false)] {
        assert_eq!(image.layers.len(), 2, "busybox, then the links");
        let links = entries(&image.layers[1]);
        assert_eq!(links.len(), EVIL_SYMLINKS.len());
        for ((path, kind, target, _), (name, aim)) in links.iter().zip(EVIL_SYMLINKS) {
            assert_eq!((path.as_str(), *kind), (name, tar::EntryType::Symlink));
            let target = target.as_deref().unwrap();
            assert_eq!(target.starts_with('/'), absolute, "{name} -> {target}");
            // Followed from the host, it leaves the root for the host's path.
            assert_eq!(follow(rootfs, target), Path::new(aim), "{name} -> {target}");
        }
    }
    assert!(rootfs.components().count() < CLIMB);
}

#[test]
fn the_fixture_registry_serves_chapter_12s_images() {
    let registry = Registry::start();
    let names = registry.push_fixtures().unwrap();
    let expected = [
        ("minibox/probe", images::probe().unwrap()),
        (
            "minibox/evil-symlinks-abs",
            images::evil_symlinks_abs().unwrap(),
        ),
        (
            "minibox/evil-symlinks-rel",
            images::evil_symlinks_rel().unwrap(),
        ),
    ];
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    for (name, image) in expected {
        assert!(names.contains(&name), "{names:?}");
        let url = registry.url(&format!("/v2/{name}/manifests/latest"));
        let response = agent.get(&url).header("Accept", MANIFEST).call().unwrap();
        let digest = response.headers().get("docker-content-digest").cloned();
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(
            digest.and_then(|d| d.to_str().ok().map(str::to_string)),
            Some(image.manifest.digest),
            "{name}"
        );
    }
}
