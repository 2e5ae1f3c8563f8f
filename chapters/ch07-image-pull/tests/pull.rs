//! Chapter 7 against the real registry server: images built from real
//! binaries, pushed over the registry API, pulled by the chapter's binary into
//! a store of the test's own, and run. Every test needs root (unpacking sets
//! owners and creates whiteouts; running needs namespaces).

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::{Env, printed_digest};
use harness::gate::BlobGate;
use harness::images;
use harness::registry::Registry;

fn registry_with_fixtures() -> Registry {
    let registry = Registry::start();
    registry.push_fixtures().expect("fixtures");
    registry
}

/// The story of the chapter: `run` finds no image, says so as Docker does,
/// pulls it, and runs it; the second run uses the store and says nothing about
/// pulling; `pull` again downloads nothing.
#[test]
fn run_pulls_a_missing_image_once_then_uses_the_store() {
    if !harness::require_root("ch07 run pulls once") {
        return;
    }
    let registry = registry_with_fixtures();
    let env = common::env("run-pulls", Some(&registry));

    let first = env
        .minibox(&[
            "run",
            "--quiet",
            "busybox",
            "sh",
            "-c",
            "echo hello from $(cat /etc/minibox-release | head -c 7)",
        ])
        .expect(0);
    assert!(
        first
            .stderr
            .starts_with("Unable to find image 'busybox:latest' locally\n"),
        "{}",
        first.stderr
    );
    assert_eq!(first.stdout, "hello from minibox\n");
    assert_eq!(env.layers().len(), 1, "busybox is one layer");

    let second = env
        .minibox(&["run", "--quiet", "busybox", "echo", "hi"])
        .expect(0);
    assert_eq!(
        (second.stdout.as_str(), second.stderr.as_str()),
        ("hi\n", "")
    );

    let again = env.minibox(&["pull", "busybox"]).expect(0);
    assert!(
        again.stdout.contains(": Already exists\n"),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("Status: Image is up to date for busybox:latest\n"),
        "{}",
        again.stdout
    );
    assert!(again.stdout.ends_with("docker.io/library/busybox:latest\n"));
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}

/// `minibox pull` prints Docker's lines, the store's blobs are exactly the
/// image's (each named by the sha256 of its content), and the unpacked layer
/// is the busybox root, file for file.
#[test]
fn pull_stores_verified_blobs_and_the_unpacked_layer() {
    if !harness::require_root("ch07 pull stores verified content") {
        return;
    }
    let registry = Registry::start();
    let image = images::busybox().unwrap();
    registry.push("library/busybox", "latest", &image);
    let env = common::env("pull", Some(&registry));

    let pull = env.minibox(&["pull", "busybox"]).expect(0);
    let layer_id = &image.layers[0].blob.digest["sha256:".len()..][..12];
    assert_eq!(
        pull.stdout,
        format!(
            "Using default tag: latest\nlatest: Pulling from library/busybox\n{layer_id}: Pulling fs layer\n{layer_id}: Pull complete\nDigest: {}\nStatus: Downloaded newer image for busybox:latest\ndocker.io/library/busybox:latest\n",
            image.manifest.digest
        )
    );
    for blob in env.blobs() {
        let bytes = fs::read(&blob).unwrap();
        let name = blob.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            images::sha256(&bytes),
            format!("sha256:{name}"),
            "a blob is its digest"
        );
    }
    assert_eq!(
        env.blobs().len(),
        3,
        "the manifest, the config and the layer, compressed"
    );
    let layer = env.root().join(format!(
        "layers/{}/fs",
        image.layers[0].diff_id.replace(':', "/")
    ));
    let source = harness::fixtures::busybox_rootfs();
    for file in ["bin/busybox", "etc/passwd", "etc/minibox-release"] {
        let (a, b) = (
            fs::symlink_metadata(layer.join(file)).unwrap(),
            fs::symlink_metadata(source.join(file)).unwrap(),
        );
        assert_eq!(
            (a.mode(), a.len(), a.uid()),
            (b.mode(), b.len(), b.uid()),
            "{file}"
        );
        assert_eq!(
            fs::read(layer.join(file)).unwrap(),
            fs::read(source.join(file)).unwrap()
        );
    }
    assert_eq!(
        fs::read_link(layer.join("bin/sh")).unwrap(),
        fs::read_link(source.join("bin/sh")).unwrap()
    );

    let images = env.minibox(&["images"]).expect(0);
    let lines: Vec<&str> = images.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &row[..3],
        ["busybox", "latest", &image.config.digest[7..19]]
    );
    // SIZE is the layers' regular files, in Docker's units: computed here
    // from the image, because it depends on the host's busybox (the demo
    // transcripts redact it).
    let size: u64 = image.layers.iter().map(images::Layer::unpacked_size).sum();
    assert_eq!(
        row.last().copied(),
        Some(ch07_image_pull::images::human_size(size).as_str()),
        "{}",
        images.stdout
    );
}

/// hello-world has one static program and no shell: it runs, and `ls` is not
/// found in it, with Docker's message and status.
#[test]
fn hello_world_runs_and_has_no_shell() {
    if !harness::require_root("ch07 hello-world") {
        return;
    }
    let registry = registry_with_fixtures();
    let env = common::env("hello", Some(&registry));
    let hello = env
        .minibox(&["run", "--quiet", "hello-world", "/hello"])
        .expect(0);
    assert!(
        hello.stdout.starts_with("\nHello from minibox!")
            || hello.stdout.starts_with("Hello from minibox!"),
        "{}",
        hello.stdout
    );
    let ls = env
        .minibox(&["run", "--quiet", "hello-world", "ls"])
        .expect(127);
    assert_eq!(
        ls.stderr,
        "minibox: exec: \"ls\": executable file not found in $PATH\n"
    );
}

/// A multi-platform index: the pull picks this machine's entry, and
/// `--platform linux/arm64` the other one. Each entry's only file names its
/// platform.
#[test]
fn an_index_resolves_to_the_host_platform_or_the_one_asked_for() {
    if !harness::require_root("ch07 multi-platform") {
        return;
    }
    let registry = Registry::start();
    let (index, platforms) = images::multi_platform();
    registry.push_index("library/multi", "latest", &index, &platforms);
    let other = if images::host_architecture() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };

    for (flag, arch, image) in [
        (None, images::host_architecture(), &platforms[0]),
        (Some(format!("linux/{other}")), other, &platforms[1]),
    ] {
        let env = common::env("multi", Some(&registry));
        let mut args = vec!["pull"];
        if let Some(flag) = &flag {
            args.extend(["--platform", flag]);
        }
        args.push("multi");
        let pull = env.minibox(&args).expect(0);
        assert_eq!(
            printed_digest(&pull.stdout),
            index.digest,
            "Digest: is the index's"
        );
        let layer = env.root().join(format!(
            "layers/{}/fs/platform",
            image.layers[0].diff_id.replace(':', "/")
        ));
        assert_eq!(
            fs::read_to_string(&layer).unwrap(),
            format!("linux/{arch}\n")
        );
        assert_eq!(env.layers().len(), 1, "only the chosen platform's layer");
        let record: serde_json::Value =
            serde_json::from_slice(&fs::read(env.root().join("images.json")).unwrap()).unwrap();
        let record = &record["docker.io/library/multi:latest"];
        assert_eq!(record["manifest"], image.manifest.digest.as_str());
        assert_eq!(record["platform"], format!("linux/{arch}"));
    }
    let env = common::env("multi-none", Some(&registry));
    let none = env
        .minibox(&["pull", "--platform", "linux/s390x", "multi"])
        .expect(1);
    assert!(
        none.stderr
            .contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{}",
        none.stderr
    );
    assert!(env.layers().is_empty() && env.leftovers().is_empty());
}

/// The upper layer's whiteout and opaque marker become overlayfs's (a 0/0
/// character device; `trusted.overlay.opaque=y`), so the container sees the
/// image's final state: /etc/deleted gone, /etc/kept there, /opaque holding
/// only the upper layer's file.
#[test]
fn whiteouts_and_opaque_directories_show_the_merged_view() {
    if !harness::require_root("ch07 whiteouts") {
        return;
    }
    let registry = registry_with_fixtures();
    let env = common::env("whiteouts", Some(&registry));
    let run = env
        .minibox(&[
            "run",
            "--quiet",
            "minibox/layered",
            "sh",
            "-c",
            "cat /etc/kept; ls /opaque; test -e /etc/deleted || echo deleted is gone",
        ])
        .expect(0);
    assert_eq!(
        run.stdout, "kept\nnew\ndeleted is gone\n",
        "stderr: {}",
        run.stderr
    );

    let upper = images::layered().layers[1].diff_id.clone();
    let layer = env
        .root()
        .join(format!("layers/{}/fs", upper.replace(':', "/")));
    let whiteout = fs::symlink_metadata(layer.join("etc/deleted")).unwrap();
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "a 0/0 whiteout"
    );
    assert_eq!(
        common::xattr(&layer.join("opaque"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert!(
        !layer.join("etc/.wh.deleted").exists() && !layer.join("opaque/.wh..wh..opq").exists(),
        "OCI markers are translated, not copied"
    );
}

/// A layer corrupted in the registry's own storage: the pull fails with a
/// digest error and stores nothing, neither the layer nor a blob; once the
/// registry's copy is repaired, the same pull succeeds.
#[test]
fn a_corrupted_blob_fails_the_pull_and_stores_nothing() {
    if !harness::require_root("ch07 corrupted blob") {
        return;
    }
    let registry = Registry::start();
    let image = images::busybox().unwrap();
    registry.push("library/busybox", "latest", &image);
    let hex = &image.layers[0].blob.digest[7..];
    let data = registry.storage().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let good = fs::read(&data).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0xff; // same length: only the digest can tell
    fs::write(&data, &bad).unwrap();

    let env = common::env("corrupt", Some(&registry));
    let pull = env.minibox(&["pull", "busybox"]).expect(1);
    let error = pull.stderr.lines().last().unwrap_or_default();
    assert!(
        error.contains("digest mismatch") && error.contains(&image.layers[0].blob.digest),
        "{}",
        pull.stderr
    );
    assert!(env.layers().is_empty(), "{:?}", env.layers());
    assert!(
        env.blobs().iter().all(|b| !b.ends_with(hex)),
        "no layer blob"
    );
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
    assert!(
        !env.root().join("images.json").exists(),
        "no image recorded"
    );

    fs::write(&data, &good).unwrap();
    env.minibox(&["pull", "busybox"]).expect(0);
    env.minibox(&["run", "--quiet", "--pull", "never", "busybox", "true"])
        .expect(0);
}

/// Each malicious layer tries to write outside its directory; each is
/// rejected with one line, nothing of it is stored, and the marker file
/// outside is untouched.
#[test]
fn malicious_layers_are_rejected_and_touch_nothing_outside() {
    if !harness::require_root("ch07 malicious layers") {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("marker");
    fs::write(&marker, "untouched\n").unwrap();
    // Where the `..` and symlink layers aim: a name of this run's own, so the
    // file cannot exist yet and a leftover of an earlier run cannot make the
    // check below vacuous.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let escaped = std::path::PathBuf::from(format!(
        "/tmp/minibox-escaped-{}-{nanos}",
        std::process::id()
    ));
    assert!(!escaped.exists(), "{} exists already", escaped.display());
    let registry = Registry::start();
    let layers = images::malicious_layers(marker.to_str().unwrap(), escaped.to_str().unwrap());
    for (name, layer) in layers {
        let image = images::image(vec![layer], &["sh"]);
        registry.push(&format!("evil/{name}"), "latest", &image);
        let env = common::env(name, None);
        let reference = format!("{}/evil/{name}", registry.host());
        let pull = env.minibox(&["pull", &reference]).expect(1);
        let last = pull.stderr.lines().last().unwrap_or_default();
        assert!(last.contains("refused"), "{name}: {}", pull.stderr);
        assert_eq!(
            pull.stderr.lines().count(),
            1,
            "{name}: one line: {}",
            pull.stderr
        );
        assert!(
            env.layers().is_empty() && env.leftovers().is_empty(),
            "{name}"
        );
        assert_eq!(
            fs::read_to_string(&marker).unwrap(),
            "untouched\n",
            "{name}"
        );
        assert_eq!(
            fs::metadata(&marker).unwrap().nlink(),
            1,
            "{name}: no hard link to the marker"
        );
        assert!(
            !escaped.exists(),
            "{name}: the layer wrote {} outside its directory",
            escaped.display()
        );
    }
}

/// Two processes pull the same three-layer image at the same time: both
/// succeed, and the store holds each layer once. A gate in front of the
/// registry holds each blob download until both pulls ask for it, so the two
/// really download (and commit) every layer at once, and the test checks that
/// they did.
#[test]
fn two_concurrent_pulls_of_one_image_both_succeed() {
    if !harness::require_root("ch07 concurrent pulls") {
        return;
    }
    let registry = registry_with_fixtures();
    let layers: Vec<String> = images::layered_on_busybox()
        .unwrap()
        .layers
        .iter()
        .map(|l| l.blob.digest.clone())
        .collect();
    for round in 0..3 {
        let gate = BlobGate::start(&registry, 2, std::time::Duration::from_secs(20));
        let env = Env::builder(common::MINIBOX, "ch07", &format!("concurrent-{round}"))
            .mirror_at(&gate.host())
            .build();
        let children: Vec<_> = (0..2)
            .map(|_| {
                env.command(&["pull", "-q", "minibox/layered"])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let run = common::wait(child, &["pull"]).expect(0);
            assert_eq!(
                run.stdout, "docker.io/minibox/layered:latest\n",
                "round {round}"
            );
        }
        let met = gate.met();
        for layer in &layers {
            assert!(
                met.contains(layer),
                "round {round}: the two pulls did not download {layer} at the same time (met: {met:?})"
            );
        }
        assert_eq!(env.layers().len(), 3, "round {round}");
        assert!(
            env.leftovers().is_empty(),
            "round {round}: {:?}",
            env.leftovers()
        );
        env.minibox(&[
            "run",
            "--quiet",
            "--pull",
            "never",
            "minibox/layered",
            "cat",
            "/etc/kept",
        ])
        .expect(0);
    }
}

/// SIGKILL in the middle of a layer's download leaves a `.partial`
/// directory that nothing trusts: the image is not in the store, and the
/// next pull cleans it up and succeeds.
#[test]
fn a_pull_killed_midway_leaves_nothing_a_later_pull_trusts() {
    if !harness::require_root("ch07 SIGKILL mid-pull") {
        return;
    }
    let registry = Registry::start();
    // A plain (uncompressed) tar layer of 48 MiB of noise: slow enough to be
    // caught in the middle, and proof that layers need not be gzipped.
    let mut noise = vec![0u8; 48 << 20];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for chunk in noise.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(noise.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "noise.bin", &noise[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let layer = images::Layer {
        diff_id: images::sha256(&tar),
        blob: images::Blob::new("application/vnd.oci.image.layer.v1.tar", tar),
    };
    let image = images::image(vec![layer], &["sh"]);
    registry.push("big/noise", "latest", &image);
    let reference = format!("{}/big/noise", registry.host());
    let env = common::env("sigkill", None);

    let mut child = env.command(&["pull", &reference]).spawn().unwrap();
    // Wait until the layer is being written, then kill.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let partial = env
            .leftovers()
            .into_iter()
            .find(|p| p.join("fs/noise.bin").exists());
        if let Some(partial) = partial
            && fs::metadata(partial.join("fs/noise.bin"))
                .map(|m| m.len())
                .unwrap_or(0)
                > 0
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before it could be interrupted"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the pull never started writing the layer"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL, by PID: our own child
    child.wait().unwrap();
    assert!(env.layers().is_empty(), "nothing got a final name");
    assert!(
        !env.leftovers().is_empty(),
        "the partial layer is still there (and untrusted)"
    );
    let not_there = env
        .minibox(&["run", "--quiet", "--pull", "never", &reference, "true"])
        .expect(125);
    assert!(
        not_there.stderr.contains("No such image"),
        "{}",
        not_there.stderr
    );

    env.minibox(&["pull", "-q", &reference]).expect(0);
    assert!(
        env.leftovers().is_empty(),
        "the next pull cleaned up: {:?}",
        env.leftovers()
    );
    let layer = env.root().join(format!(
        "layers/{}/fs/noise.bin",
        image.layers[0].diff_id.replace(':', "/")
    ));
    assert_eq!(fs::read(layer).unwrap(), noise);
}

/// References Docker refuses are refused before anything is contacted or
/// created: one line each, status 1 for `pull` and 125 for `run`.
#[test]
fn invalid_references_are_refused_up_front() {
    let env = common::env("invalid", None);
    for reference in [
        "Busybox",
        "busybox:",
        "a//b",
        ":tag",
        "busybox@sha256:123",
        "-x",
    ] {
        let pull = env.minibox(&["pull", reference]);
        let expected = if reference == "-x" { 125 } else { 1 }; // `-x` is an unknown flag
        let pull = pull.expect(expected);
        assert_eq!(
            pull.stderr.lines().count(),
            1,
            "{reference}: {}",
            pull.stderr
        );
        assert!(pull.stderr.starts_with("minibox: "), "{}", pull.stderr);
    }
    let run = env.minibox(&["run", "busybox:", "true"]).expect(125);
    assert_eq!(run.stderr, "minibox: invalid reference format\n");
    let upper = env.minibox(&["pull", "Busybox"]).expect(1);
    assert_eq!(
        upper.stderr,
        "minibox: invalid reference format: repository name (library/Busybox) must be lowercase\n"
    );
    assert!(
        fs::read_dir(env.root()).unwrap().next().is_none(),
        "nothing created in the store"
    );
}

/// A registry that cannot be reached, or a tag it lacks: one line in
/// Docker's words, and nothing left in the store.
#[test]
fn unknown_tags_and_unreachable_registries_fail_with_one_line() {
    if !harness::require_root("ch07 unknown tag") {
        return;
    }
    let registry = registry_with_fixtures();
    let env = common::env("unknown", Some(&registry));
    let run = env
        .minibox(&["run", "--quiet", "busybox:nosuch", "true"])
        .expect(125);
    assert_eq!(
        run.stderr,
        "Unable to find image 'busybox:nosuch' locally\nminibox: manifest for busybox:nosuch not found: manifest unknown: manifest unknown\n"
    );
    // A port nobody listens on (bound, read, released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pull = env
        .minibox(&["pull", &format!("127.0.0.1:{port}/app")])
        .expect(1);
    assert_eq!(pull.stderr.lines().count(), 1, "{}", pull.stderr);
    assert!(
        pull.stderr
            .contains(&format!("cannot reach the registry at 127.0.0.1:{port}")),
        "{}",
        pull.stderr
    );
    assert!(env.layers().is_empty() && env.leftovers().is_empty());
}

/// Layers come gzipped, plain, or compressed with zstd (OCI's `tar+zstd`),
/// here in two zstd frames one after the other, as some compressors write
/// them: the pull tells them apart by their first bytes and unpacks each.
#[test]
fn zstd_layers_in_several_frames_are_unpacked() {
    if !harness::require_root("ch07 zstd layers") {
        return;
    }
    let mut tar = tar::Builder::new(Vec::new());
    let content = "compressed with zstd\n".repeat(100);
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    tar.append_data(&mut header, "zstd.txt", content.as_bytes())
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let (first, second) = tar.split_at(tar.len() / 3);
    let level = ruzstd::encoding::CompressionLevel::Fastest;
    let mut zstd = ruzstd::encoding::compress_to_vec(first, level);
    zstd.extend(ruzstd::encoding::compress_to_vec(second, level));
    let layer = images::Layer {
        diff_id: images::sha256(&tar),
        blob: images::Blob::new("application/vnd.oci.image.layer.v1.tar+zstd", zstd),
    };
    let mut layers = images::busybox().unwrap().layers;
    layers.push(layer);
    let registry = Registry::start();
    registry.push("library/zstd", "latest", &images::image(layers, &["sh"]));
    let env = common::env("zstd", Some(&registry));
    let run = env
        .minibox(&["run", "--quiet", "zstd", "sh", "-c", "wc -c < /zstd.txt"])
        .expect(0);
    assert_eq!(run.stdout.trim(), content.len().to_string());
}

/// Docker Hub answers a blob request with a redirect to its CDN. Here a
/// small front server plays the registry: it passes every request on to the
/// real registry (htpasswd auth, so every request carries `Authorization`),
/// except blob requests, which it redirects to a second server, the "CDN",
/// that records the headers it receives. The pull follows the redirects and
/// never shows the CDN the registry's credentials.
#[test]
fn blob_redirects_are_followed_without_the_registrys_authorization() {
    use std::io::Read;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    if !harness::require_root("ch07 redirects") {
        return;
    }
    let registry = Registry::start_with_basic_auth(&[("alice", "wonderland")]);
    registry.push("team/busybox", "latest", &images::busybox().unwrap());
    let upstream = registry.url("");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();

    use harness::http::{read_request, respond};

    let cdn = TcpListener::bind("127.0.0.1:0").unwrap();
    let cdn_port = cdn.local_addr().unwrap().port();
    let front = TcpListener::bind("127.0.0.1:0").unwrap();
    let front_host = front.local_addr().unwrap().to_string();
    type Headers = Vec<(String, String)>;
    let seen_by_cdn: Arc<Mutex<Vec<Headers>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let cdn_thread = {
        let (agent, upstream, seen, stop) = (
            agent.clone(),
            upstream.clone(),
            seen_by_cdn.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            for stream in cdn.incoming() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let stream = stream.unwrap();
                let Some((_, path, headers)) = read_request(&stream) else {
                    continue;
                };
                seen.lock().unwrap().push(headers);
                // The CDN has the bytes: fetch them from the registry as the test.
                let mut response = agent
                    .get(format!("{upstream}{}", path.trim_start_matches("/cdn")))
                    .header(
                        "Authorization",
                        harness::registry_auth::basic("alice", "wonderland"),
                    )
                    .call()
                    .unwrap();
                let mut body = Vec::new();
                response
                    .body_mut()
                    .as_reader()
                    .read_to_end(&mut body)
                    .unwrap();
                respond(
                    stream,
                    200,
                    &[("Content-Type".into(), "application/octet-stream".into())],
                    &body,
                );
            }
        })
    };
    let front_thread = {
        let (agent, upstream, stop) = (agent.clone(), upstream.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in front.incoming() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let stream = stream.unwrap();
                let Some((_, path, headers)) = read_request(&stream) else {
                    continue;
                };
                if path.contains("/blobs/") {
                    let location = format!("http://127.0.0.1:{cdn_port}/cdn{path}");
                    respond(stream, 307, &[("Location".into(), location)], b"");
                    continue;
                }
                let mut request = agent.get(format!("{upstream}{path}"));
                for (k, v) in &headers {
                    if k == "authorization" || k == "accept" {
                        request = request.header(k, v);
                    }
                }
                let mut response = request.call().unwrap();
                let status = response.status().as_u16();
                let kept: Vec<(String, String)> =
                    ["content-type", "docker-content-digest", "www-authenticate"]
                        .iter()
                        .filter_map(|k| {
                            Some((
                                k.to_string(),
                                response.headers().get(*k)?.to_str().ok()?.to_string(),
                            ))
                        })
                        .collect();
                let mut body = Vec::new();
                response
                    .body_mut()
                    .as_reader()
                    .read_to_end(&mut body)
                    .unwrap();
                respond(stream, status, &kept, &body);
            }
        })
    };

    let env = common::env("redirects", None);
    let docker = env.config().unwrap().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths": {{"{front_host}": {{"auth": "YWxpY2U6d29uZGVybGFuZA=="}}}}}}"#),
    )
    .unwrap();
    env.minibox(&["pull", &format!("{front_host}/team/busybox")])
        .expect(0);
    env.minibox(&[
        "run",
        "--quiet",
        "--pull",
        "never",
        &format!("{front_host}/team/busybox"),
        "true",
    ])
    .expect(0);

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = std::net::TcpStream::connect(("127.0.0.1", cdn_port));
    let _ = std::net::TcpStream::connect(&front_host);
    cdn_thread.join().unwrap();
    front_thread.join().unwrap();
    let seen = seen_by_cdn.lock().unwrap();
    assert_eq!(seen.len(), 2, "the config and the layer came from the CDN");
    for headers in seen.iter() {
        assert!(
            headers.iter().all(|(k, _)| k != "authorization"),
            "the CDN saw {headers:?}"
        );
    }
}

/// Most images on Docker Hub are not OCI documents but Docker's own: a
/// manifest list of schema 2 manifests, a `container.image.v1` config, and
/// `rootfs.diff.tar.gzip` layers. Same shapes, other media types: the pull
/// resolves the list to this machine's entry and runs it.
#[test]
fn docker_format_images_and_manifest_lists_pull_like_oci_ones() {
    if !harness::require_root("ch07 docker format") {
        return;
    }
    let registry = Registry::start();
    let busybox = images::as_docker(&images::busybox().unwrap());
    registry.push("library/dockerbox", "latest", &busybox);
    let (list, platforms) = images::docker_multi_platform();
    registry.push_index("library/dockermulti", "latest", &list, &platforms);
    let env = common::env("docker-format", Some(&registry));

    let run = env
        .minibox(&["run", "--quiet", "dockerbox", "cat", "/etc/minibox-release"])
        .expect(0);
    assert!(!run.stdout.is_empty(), "{}", run.stderr);
    let pull = env.minibox(&["pull", "dockermulti"]).expect(0);
    assert_eq!(
        printed_digest(&pull.stdout),
        list.digest,
        "the list's digest"
    );
    let layer = env.root().join(format!(
        "layers/{}/fs/platform",
        platforms[0].layers[0].diff_id.replace(':', "/")
    ));
    assert_eq!(
        fs::read_to_string(layer).unwrap(),
        format!("linux/{}\n", images::host_architecture())
    );
}

/// Without root, `pull` says in one line why it needs root and creates
/// nothing, while `images` (which only reads) shows an empty table for a
/// store that does not exist yet. The test drops to `nobody` with setpriv(1).
#[test]
fn without_root_pull_refuses_in_one_line_and_images_only_reads() {
    if !harness::require_root("ch07 without root") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // nobody may look inside, as in /var/lib; the store itself does not exist.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let store = dir.path().join("store");
    let as_nobody = |args: &[&str]| {
        let output = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                common::MINIBOX,
            ])
            .args(args)
            .env("MINIBOX_ROOT", &store)
            .env_remove("MINIBOX_REGISTRY_MIRROR")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("setpriv (util-linux)");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr),
        )
    };
    let (status, stdout, stderr) = as_nobody(&["pull", "busybox"]);
    assert_eq!(status, Some(1), "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with("minibox: pulling an image needs root"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
    let (status, stdout, _) = as_nobody(&["images"]);
    assert_eq!(status, Some(0));
    assert_eq!(
        stdout.split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert!(!store.exists(), "nothing was created");
}

/// What a layer says about each file arrives on disk: modification times,
/// extended attributes (PAX `SCHILY.xattr.*` records, as GNU tar and Docker
/// write them: file capabilities travel this way), owners and modes, hard
/// links (one inode, two names) and FIFOs.
#[test]
fn metadata_xattrs_hard_links_and_fifos_are_unpacked() {
    if !harness::require_root("ch07 metadata") {
        return;
    }
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(1234);
        header.set_gid(5678);
        header.set_mtime(1_234_567_890);
        header
    }
    // One PAX record: "LEN key=value\n", where LEN counts itself too.
    fn pax_record(key: &str, value: &str) -> Vec<u8> {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        format!("{len}{body}").into_bytes()
    }
    let mut tar = tar::Builder::new(Vec::new());
    let pax = pax_record("SCHILY.xattr.user.minibox", "hello");
    let mut extension = header(tar::EntryType::XHeader, 0o644, pax.len() as u64);
    extension.set_cksum();
    tar.append_data(&mut extension, "PaxHeaders/data", &pax[..])
        .unwrap();
    let mut file = header(tar::EntryType::Regular, 0o4750, 5);
    file.set_cksum();
    tar.append_data(&mut file, "data", &b"data\n"[..]).unwrap();
    let mut link = header(tar::EntryType::Link, 0o644, 0);
    link.set_link_name("data").unwrap();
    link.set_cksum();
    tar.append_data(&mut link, "also-data", std::io::empty())
        .unwrap();
    let mut fifo = header(tar::EntryType::Fifo, 0o600, 0);
    fifo.set_cksum();
    tar.append_data(&mut fifo, "pipe", std::io::empty())
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let layer = images::Layer {
        diff_id: images::sha256(&tar),
        blob: images::Blob::new(images::LAYER_GZIP, gz.finish().unwrap()),
    };
    let diff_id = layer.diff_id.clone();
    let registry = Registry::start();
    registry.push("meta/data", "latest", &images::image(vec![layer], &["sh"]));
    let env = common::env("metadata", None);
    env.minibox(&["pull", &format!("{}/meta/data", registry.host())])
        .expect(0);

    let dir = env
        .root()
        .join(format!("layers/{}/fs", diff_id.replace(':', "/")));
    let data = fs::symlink_metadata(dir.join("data")).unwrap();
    assert_eq!(
        data.mode() & 0o7777,
        0o4750,
        "set-user-ID survives the chown"
    );
    assert_eq!((data.uid(), data.gid()), (1234, 5678));
    assert_eq!(data.mtime(), 1_234_567_890);
    assert_eq!(data.nlink(), 2, "data and also-data are one file");
    assert_eq!(
        fs::symlink_metadata(dir.join("also-data")).unwrap().ino(),
        data.ino()
    );
    assert!(
        fs::symlink_metadata(dir.join("pipe"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let output = std::process::Command::new("getfattr")
        .args(["--only-values", "-n", "user.minibox"])
        .arg(dir.join("data"))
        .output();
    let value = match output {
        Ok(o) if o.status.success() => o.stdout,
        _ => {
            use std::os::unix::ffi::OsStrExt;
            let path = std::ffi::CString::new(dir.join("data").as_os_str().as_bytes()).unwrap();
            let mut value = [0u8; 16];
            // SAFETY: NUL-terminated strings; the kernel writes at most value.len() bytes.
            let n = unsafe {
                libc::lgetxattr(
                    path.as_ptr(),
                    c"user.minibox".as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            assert!(n >= 0, "the extended attribute user.minibox is missing");
            value[..n as usize].to_vec()
        }
    };
    assert_eq!(value, b"hello");
}
