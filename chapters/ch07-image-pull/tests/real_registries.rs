//! What a learner meets outside the fixtures: layers written by Kaniko, Bazel,
//! Nix, `git archive` or a Mac, registries that stall, drop connections and
//! rate-limit, registries behind a company CA, credential helpers, long and
//! repetitive images. Each test builds the image (or the registry's
//! misbehaviour) itself, pushes it to the real registry on 127.0.0.1, and pulls
//! it with the chapter's binary.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use common::Env;
use harness::images::{self, Layer, LayerBuilder};
use harness::registry::Registry;

/// Pushes `layers` as the image `test/NAME`, pulls it into a fresh store and
/// returns the store, what the pull printed, and each layer's directory.
fn pull_layers(
    name: &str,
    layers: Vec<Layer>,
) -> (Env, harness::process::Run, Vec<PathBuf>, Registry) {
    let registry = Registry::start();
    let image = images::image(layers, &["sh"]);
    registry.push(&format!("test/{name}"), "latest", &image);
    let env = common::env(name, None);
    let pull = env.minibox(&["pull", &format!("{}/test/{name}", registry.host())]);
    let dirs = image
        .layers
        .iter()
        .map(|l| {
            env.root()
                .join(format!("layers/{}/fs", l.diff_id.replace(':', "/")))
        })
        .collect();
    (env, pull, dirs, registry)
}

/// A gzipped layer of exactly these tar bytes.
fn layer_of(tar: Vec<u8>) -> Layer {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    Layer {
        diff_id: images::sha256(&tar),
        blob: images::Blob::new(images::LAYER_GZIP, gz.finish().unwrap()),
    }
}

/// One PAX record: "LEN key=value\n", where LEN counts itself too.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// Kaniko, Bazel's rules_docker and Nix write entry names with a leading `/`
/// (and a `/` entry for the root). Docker and containerd read them as paths
/// below the layer's root; so does minibox. One of them names a file that
/// exists on the host: it lands inside the layer, and the host's file is
/// untouched.
#[test]
fn absolute_entry_names_land_inside_the_layer() {
    if !harness::require_root("ch07 absolute names") {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("marker");
    fs::write(&marker, "untouched\n").unwrap();
    let layer = LayerBuilder::default()
        .dir("/")
        .dir("/usr/")
        .dir("/usr/bin/")
        .file("/usr/bin/tool", "from kaniko\n")
        .file(marker.to_str().unwrap(), "inside\n")
        .build();
    let (_env, pull, dirs, _registry) = pull_layers("absolute", vec![layer]);
    pull.expect(0);
    assert_eq!(
        fs::read_to_string(dirs[0].join("usr/bin/tool")).unwrap(),
        "from kaniko\n"
    );
    let inside = dirs[0].join(marker.strip_prefix("/").unwrap());
    assert_eq!(fs::read_to_string(inside).unwrap(), "inside\n");
    assert_eq!(fs::read_to_string(&marker).unwrap(), "untouched\n");
}

/// Kaniko writes hard links whose target is absolute (`/usr/bin/perl5.36`):
/// the target is the layer's file, and the link is a second name for it.
#[test]
fn absolute_hard_link_targets_are_the_layers_files() {
    if !harness::require_root("ch07 absolute hard links") {
        return;
    }
    let layer = LayerBuilder::default()
        .dir("usr/")
        .dir("usr/bin/")
        .file("usr/bin/perl5.36", "#!perl\n")
        .hardlink("usr/bin/perl", "/usr/bin/perl5.36")
        .build();
    let (_env, pull, dirs, _registry) = pull_layers("hardlink", vec![layer]);
    pull.expect(0);
    let (a, b) = (
        fs::metadata(dirs[0].join("usr/bin/perl5.36")).unwrap(),
        fs::metadata(dirs[0].join("usr/bin/perl")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "one file, two names");
}

/// Debian's merged /usr: `lib -> usr/lib` is a symlink, and a later entry of the
/// same layer is written through it (`lib/x86_64-linux-gnu/libc.so.6`), or
/// through an absolute one (`lib64 -> /usr/lib64`). The symlinks are followed
/// inside the layer, as the container will see them, and stay symlinks.
#[test]
fn entries_below_a_symlink_of_the_same_layer_follow_it_inside() {
    if !harness::require_root("ch07 parent symlinks") {
        return;
    }
    let layer = LayerBuilder::default()
        .dir("usr/")
        .dir("usr/lib/")
        .dir("usr/lib64/")
        .symlink("lib", "usr/lib")
        .symlink("lib64", "/usr/lib64")
        .file("lib/x86_64-linux-gnu/libc.so.6", "libc\n")
        .file("lib64/ld-linux-x86-64.so.2", "ld.so\n")
        .build();
    let (_env, pull, dirs, _registry) = pull_layers("merged-usr", vec![layer]);
    pull.expect(0);
    let dir = &dirs[0];
    assert_eq!(
        fs::read_to_string(dir.join("usr/lib/x86_64-linux-gnu/libc.so.6")).unwrap(),
        "libc\n"
    );
    assert_eq!(
        fs::read_to_string(dir.join("usr/lib64/ld-linux-x86-64.so.2")).unwrap(),
        "ld.so\n"
    );
    for link in ["lib", "lib64"] {
        assert!(
            fs::symlink_metadata(dir.join(link))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{link} is still a symlink"
        );
    }
}

/// `git archive` (and tools built on Go's archive/tar with PAX headers) starts
/// the archive with a PAX *global* header, `pax_global_header`: defaults for
/// the whole archive, not a file. It is skipped.
#[test]
fn pax_global_headers_are_skipped() {
    if !harness::require_root("ch07 pax global headers") {
        return;
    }
    let mut tar = tar::Builder::new(Vec::new());
    let record = pax_record("comment", "3f2a1c0de5ab9f01e6e1b6e6e0d1d22c1f4a8e1e");
    let mut global = header(tar::EntryType::XGlobalHeader, record.len() as u64);
    tar.append_data(&mut global, "pax_global_header", &record[..])
        .unwrap();
    let mut file = header(tar::EntryType::Regular, 6);
    tar.append_data(&mut file, "README", &b"hello\n"[..])
        .unwrap();
    let (_env, pull, dirs, _registry) =
        pull_layers("pax-global", vec![layer_of(tar.into_inner().unwrap())]);
    pull.expect(0);
    assert_eq!(
        fs::read_to_string(dirs[0].join("README")).unwrap(),
        "hello\n"
    );
    assert!(!dirs[0].join("pax_global_header").exists());
}

/// A layer built on a Mac can carry `com.apple.provenance`, an extended
/// attribute in a namespace Linux does not have (setxattr says ENOTSUP). Docker
/// warns and goes on; so does minibox, and the other attributes are set.
#[test]
fn an_extended_attribute_the_filesystem_refuses_is_skipped_with_a_warning() {
    if !harness::require_root("ch07 refused xattrs") {
        return;
    }
    let mut tar = tar::Builder::new(Vec::new());
    let mut pax = pax_record("SCHILY.xattr.com.apple.provenance", "\u{1}\u{2}");
    pax.extend(pax_record("SCHILY.xattr.user.kept", "yes"));
    let mut extension = header(tar::EntryType::XHeader, pax.len() as u64);
    tar.append_data(&mut extension, "PaxHeaders/notes", &pax[..])
        .unwrap();
    let mut file = header(tar::EntryType::Regular, 6);
    tar.append_data(&mut file, "notes", &b"notes\n"[..])
        .unwrap();
    let (_env, pull, dirs, _registry) =
        pull_layers("mac-xattr", vec![layer_of(tar.into_inner().unwrap())]);
    let pull = pull.expect(0);
    assert!(
        pull.stdout
            .contains("WARNING: ignoring the extended attribute com.apple.provenance of "),
        "{}",
        pull.stdout
    );
    let file = dirs[0].join("notes");
    assert_eq!(fs::read_to_string(&file).unwrap(), "notes\n");
    assert_eq!(
        common::xattr(&file, "user.kept").as_deref(),
        Some(&b"yes"[..]),
        "the attributes the filesystem takes are set"
    );
}

/// podman and buildah's `zstd:chunked` layers are zstd frames followed by
/// *skippable* frames (magic 0x184D2A5?, a length, bytes a decoder skips) that
/// hold the layer's table of contents. The pull skips them as the format says;
/// the diff_id is the digest of the tar alone.
#[test]
fn zstd_chunked_layers_with_skippable_frames_are_unpacked() {
    if !harness::require_root("ch07 zstd:chunked") {
        return;
    }
    let mut tar = tar::Builder::new(Vec::new());
    let content = "chunked\n".repeat(500);
    let mut file = header(tar::EntryType::Regular, content.len() as u64);
    tar.append_data(&mut file, "chunked.txt", content.as_bytes())
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let skippable = |magic: u32, payload: &[u8]| {
        let mut frame = magic.to_le_bytes().to_vec();
        frame.extend((payload.len() as u32).to_le_bytes());
        frame.extend(payload);
        frame
    };
    let level = ruzstd::encoding::CompressionLevel::Fastest;
    let (first, second) = tar.split_at(tar.len() / 2);
    let mut blob = ruzstd::encoding::compress_to_vec(first, level);
    blob.extend(skippable(0x184D_2A5B, b"between two frames"));
    blob.extend(ruzstd::encoding::compress_to_vec(second, level));
    // What zstd:chunked ends with: the table of contents, then a footer.
    blob.extend(skippable(0x184D_2A50, br#"{"version":1,"entries":[]}"#));
    blob.extend(skippable(0x184D_2A50, &[0u8; 64]));
    let layer = Layer {
        diff_id: images::sha256(&tar),
        blob: images::Blob::new("application/vnd.oci.image.layer.v1.tar+zstd", blob),
    };
    let (_env, pull, dirs, _registry) = pull_layers("zstd-chunked", vec![layer]);
    pull.expect(0);
    assert_eq!(
        fs::read_to_string(dirs[0].join("chunked.txt")).unwrap(),
        content
    );
}

/// On a 32-bit ARM v7 machine (a Raspberry Pi 2), an image published only for
/// arm/v6 and arm/v5 runs: containerd takes the closest older variant, and so
/// does minibox (here asked with `--platform`, as the CPU would say).
#[test]
fn arm_v7_takes_the_closest_older_variant_of_an_index() {
    if !harness::require_root("ch07 arm variants") {
        return;
    }
    let registry = Registry::start();
    let images: Vec<images::Image> = ["v5", "v6"]
        .iter()
        .map(|variant| {
            let layer = LayerBuilder::default()
                .file("platform", &format!("linux/arm/{variant}\n"))
                .build();
            let image = images::image_for(vec![layer], &["/platform"], "arm");
            registry.push("test/arm", &image.manifest.digest, &image);
            image
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": images::INDEX,
        "manifests": images.iter().zip(["v5", "v6"]).map(|(image, variant)| {
            let mut descriptor = image.manifest.descriptor();
            descriptor["platform"] =
                serde_json::json!({"os": "linux", "architecture": "arm", "variant": variant});
            descriptor
        }).collect::<Vec<_>>(),
    });
    let index = images::Blob::new(images::INDEX, serde_json::to_vec(&index).unwrap());
    registry.push_manifest("test/arm", "latest", &index);
    let env = common::env("arm", None);
    let reference = format!("{}/test/arm", registry.host());
    env.minibox(&["pull", "--platform", "linux/arm/v7", &reference])
        .expect(0);
    let layer = env.root().join(format!(
        "layers/{}/fs/platform",
        images[1].layers[0].diff_id.replace(':', "/")
    ));
    assert_eq!(fs::read_to_string(layer).unwrap(), "linux/arm/v6\n");
}

/// An image that lists one layer twice (a build step that changed nothing, a
/// base layer reused by a tool): overlayfs refuses a directory twice in one
/// stack, so the mount keeps the topmost copy, which shows the same files.
#[test]
fn an_image_that_repeats_a_layer_runs() {
    if !harness::require_root("ch07 repeated layer") {
        return;
    }
    let a = LayerBuilder::default().file("a", "from a\n").build();
    let b = LayerBuilder::default()
        .file("b", "from b\n")
        .whiteout("", "a")
        .build();
    let mut layers = images::busybox().unwrap().layers;
    layers.extend([a.clone(), b, a]);
    let registry = Registry::start();
    registry.push("library/repeats", "latest", &images::image(layers, &["sh"]));
    let env = common::env("repeats", Some(&registry));
    let run = env
        .minibox(&["run", "--quiet", "repeats", "cat", "/a", "/b"])
        .expect(0);
    assert_eq!(
        run.stdout, "from a\nfrom b\n",
        "the topmost a is above b's whiteout"
    );
}

/// An image of 120 layers (each adds one file) on busybox: far more than fit
/// in the one page of options mount(2) takes when every layer is named by
/// its full path in the store. Docker's overlay2 mounts up to 127 lower
/// layers; so does minibox.
#[test]
fn an_image_of_120_layers_runs() {
    if !harness::require_root("ch07 120 layers") {
        return;
    }
    let mut layers = images::busybox().unwrap().layers;
    layers.extend((1..=120).map(|n| {
        LayerBuilder::default()
            .dir("layers/")
            .file(&format!("layers/{n:03}"), &format!("{n}\n"))
            .build()
    }));
    let registry = Registry::start();
    registry.push("library/tall", "latest", &images::image(layers, &["sh"]));
    let env = common::env("tall", Some(&registry));
    let run = env
        .minibox(&[
            "run",
            "--quiet",
            "tall",
            "sh",
            "-c",
            "ls /layers | wc -l; cat /layers/001 /layers/120",
        ])
        .expect(0);
    assert_eq!(
        run.stdout.split_whitespace().collect::<Vec<_>>(),
        ["120", "1", "120"]
    );
}

/// A layer of `size` bytes that gzip cannot shrink, so that its download
/// takes more than one read.
fn big_layer(name: &str, size: usize) -> Layer {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ size as u64;
    let bytes: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut tar = tar::Builder::new(Vec::new());
    let mut file = header(tar::EntryType::Regular, size as u64);
    tar.append_data(&mut file, name, &bytes[..]).unwrap();
    layer_of(tar.into_inner().unwrap())
}

/// `minibox pull REFERENCE` with a short read timeout, to the end.
fn pull_with(env: &Env, reference: &str, vars: &[(&str, &str)]) -> harness::process::Run {
    let mut command = env.command(&["pull", reference]);
    command.env("MINIBOX_READ_TIMEOUT", "1");
    for (name, value) in vars {
        command.env(name, value);
    }
    common::wait(command.spawn().unwrap(), &["pull", reference])
}

/// Flaky Wi-Fi and a busy registry, all in one pull: the first GET of the
/// manifest is answered 429 with `Retry-After: 1`, one layer's connection is
/// dropped halfway, the other's goes quiet halfway for longer than the read
/// timeout. The pull waits, resumes each layer where it stopped (a `Range`
/// request, answered 206 by the registry), says so on the layer's line, and
/// succeeds.
#[test]
fn drops_stalls_and_a_429_are_retried_and_layers_resume() {
    if !harness::require_root("ch07 retries") {
        return;
    }
    use harness::proxy::{Fault, Proxy};
    let registry = Registry::start();
    let layers = vec![big_layer("one", 400 << 10), big_layer("two", 400 << 10)];
    let image = images::image(layers, &["sh"]);
    registry.push("test/flaky", "latest", &image);
    let proxy = Proxy::start(
        &registry.host(),
        vec![
            Fault::TooManyRequests {
                retry_after: Some(1),
            },
            Fault::DropMidBlob { min_size: 64 << 10 },
            Fault::StallMidBlob {
                min_size: 64 << 10,
                stall: std::time::Duration::from_secs(4),
            },
        ],
    );
    let env = common::env("flaky", None);
    let pull = pull_with(&env, &format!("{}/test/flaky", proxy.host()), &[]).expect(0);
    assert!(
        pull.stdout
            .contains("latest: Retrying in 1 second (GET /v2/test/flaky/manifests/latest: 429 Too Many Requests)"),
        "{}",
        pull.stdout
    );
    let retried = pull
        .stdout
        .lines()
        .filter(|l| l.contains(": Retrying in 1 second ("))
        .count();
    assert_eq!(retried, 3, "the 429 and both layers:\n{}", pull.stdout);
    let resumed: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.range.is_some())
        .collect();
    assert_eq!(resumed.len(), 2, "{resumed:?}");
    for request in &resumed {
        assert_eq!(request.status, 206, "{request:?}");
        assert!(request.range.as_ref().unwrap().starts_with("bytes="));
        assert_ne!(request.range.as_deref(), Some("bytes=0-"));
    }
    assert_eq!(env.layers().len(), 2);
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}

/// Docker Hub's pull limit answers a manifest GET with 429 and no
/// `Retry-After`: nothing to wait for. The pull stops at once with Docker
/// Hub's words, the limit from its `RateLimit` headers, and the hint to log in.
#[test]
fn docker_hubs_pull_limit_is_explained_not_retried() {
    if !harness::require_root("ch07 pull limit") {
        return;
    }
    use harness::proxy::{Fault, Proxy};
    let registry = Registry::start();
    registry.push("library/busybox", "latest", &images::busybox().unwrap());
    let proxy = Proxy::start(
        &registry.host(),
        vec![Fault::TooManyRequests { retry_after: None }],
    );
    let env = common::env("limit", None);
    let reference = format!("{}/library/busybox", proxy.host());
    let pull = pull_with(&env, &reference, &[]).expect(1);
    let last = pull.stderr.lines().last().unwrap_or_default().to_string();
    for part in [
        "toomanyrequests: You have reached your pull rate limit.",
        "ratelimit-limit=100;w=21600, ratelimit-remaining=0;w=21600",
        &format!("log in with 'minibox login {}'", proxy.host()),
    ] {
        assert!(last.contains(part), "{part:?} in {last}");
    }
    assert!(!pull.stdout.contains("Retrying"), "{}", pull.stdout);
    let gets = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/manifests/"))
        .count();
    assert_eq!(gets, 1);
}

/// Docker Hub counts manifest GETs against the pull limit, not HEADs. A pull
/// of an image the store has, unchanged, asks for the tag's digest with HEAD
/// and, finding it stored, makes no manifest GET at all (counted by the proxy
/// in front of the registry).
#[test]
fn a_second_pull_of_an_unchanged_image_makes_no_manifest_get() {
    if !harness::require_root("ch07 HEAD first") {
        return;
    }
    use harness::proxy::Proxy;
    let registry = Registry::start();
    let (index, platforms) = images::multi_platform();
    registry.push_index("library/multi", "latest", &index, &platforms);
    let proxy = Proxy::start(&registry.host(), vec![]);
    let env = common::env("head", None);
    let reference = format!("{}/library/multi", proxy.host());
    pull_with(&env, &reference, &[]).expect(0);
    let manifest_gets = |since: usize| {
        proxy.requests()[since..]
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/manifests/"))
            .count()
    };
    assert_eq!(
        manifest_gets(0),
        2,
        "the index, then this platform's manifest"
    );
    let before = proxy.requests().len();
    let again = pull_with(&env, &reference, &[]).expect(0);
    assert!(
        again.stdout.contains("Status: Image is up to date for"),
        "{}",
        again.stdout
    );
    assert_eq!(
        manifest_gets(before),
        0,
        "{:?}",
        &proxy.requests()[before..]
    );
    let heads = proxy.requests()[before..]
        .iter()
        .filter(|r| r.method == "HEAD")
        .count();
    assert_eq!(heads, 1);
}

/// A company registry with an internal CA, which also asks for a client
/// certificate (mutual TLS). Without its certs.d directory the pull fails;
/// with `MINIBOX_CERTS_D` pointing at a directory laid out as Docker's
/// `/etc/docker/certs.d/HOST:PORT/{ca.crt,client.cert,client.key}`, it works.
#[test]
fn a_registry_with_its_own_ca_and_client_certificates_works_through_certs_d() {
    if !harness::require_root("ch07 certs.d") {
        return;
    }
    let registry = Registry::start();
    let layer = LayerBuilder::default().file("secret", "internal\n").build();
    registry.push("team/app", "v1", &images::image(vec![layer], &["sh"]));
    let tls = harness::tls::TlsRegistry::start(&registry, true);
    let reference = format!("{}/team/app:v1", tls.host());
    let certs_d = tempfile::tempdir().unwrap();
    let env = common::env("certs-d", None);
    let certs = certs_d.path().to_str().unwrap();

    let untrusted = pull_with(&env, &reference, &[("MINIBOX_CERTS_D", certs)]).expect(1);
    assert!(env.layers().is_empty(), "{}", untrusted.stderr);

    tls.certs_d(certs_d.path());
    let trusted = pull_with(&env, &reference, &[("MINIBOX_CERTS_D", certs)]);
    assert_eq!(trusted.status, 0, "{}\n{}", trusted.stderr, tls.log());
    assert_eq!(env.layers().len(), 1);
}

const USER: (&str, &str) = ("alice", "wonderland");

/// Writes Docker's config.json for `env` (where `DOCKER_CONFIG` points).
fn docker_config(env: &Env, config: serde_json::Value) {
    let dir = env.config().unwrap().join("docker");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

/// Docker Desktop, and `docker login` on many hosts, keep no password in
/// config.json: `credsStore` names a helper program for every registry,
/// `credHelpers` one per registry. The test writes such a helper,
/// `docker-credential-minibox-test`, which knows alice's password for one
/// registry only and logs what it was asked; minibox runs it as Docker does.
#[test]
fn credential_helpers_named_in_dockers_config_are_asked() {
    use std::os::unix::fs::PermissionsExt;
    if !harness::require_root("ch07 credential helpers") {
        return;
    }
    let registry = Registry::start_with_basic_auth(&[USER]);
    let layer = LayerBuilder::default().file("app", "v1\n").build();
    registry.push("team/app", "v1", &images::image(vec![layer], &["sh"]));
    let reference = format!("{}/team/app:v1", registry.host());

    let bin = tempfile::tempdir().unwrap();
    let asked = bin.path().join("asked");
    let helper = bin.path().join("docker-credential-minibox-test");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\nserver=$(cat)\necho \"$1 $server\" >> {}\n\
             if [ \"$server\" = \"{host}\" ]; then\n  \
               printf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"\n\
             else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            asked.display(),
            USER.0,
            USER.1,
            host = registry.host()
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let pull = |env: &Env| {
        let mut command = env.command(&["pull", &reference]);
        command.env("PATH", &path);
        common::wait(command.spawn().unwrap(), &["pull", &reference])
    };

    // Without a helper, the registry refuses: the config has no password.
    let env = common::env("no-helper", None);
    docker_config(
        &env,
        serde_json::json!({ "auths": { registry.host(): {} } }),
    );
    pull(&env).expect(1);

    // credsStore: the helper for every registry.
    let env = common::env("creds-store", None);
    docker_config(
        &env,
        serde_json::json!({ "auths": { registry.host(): {} }, "credsStore": "minibox-test" }),
    );
    pull(&env).expect(0);
    assert_eq!(
        fs::read_to_string(&asked).unwrap(),
        format!("get {}\n", registry.host())
    );

    // credHelpers: the helper for this registry (and a missing one for another).
    let env = common::env("cred-helpers", None);
    docker_config(
        &env,
        serde_json::json!({ "credHelpers": { registry.host(): "minibox-test", "gcr.io": "gcloud" } }),
    );
    pull(&env).expect(0);
    assert_eq!(env.layers().len(), 1);
}

/// An identity token (in config.json's `identitytoken`, or from a helper as
/// user `<token>`) is an OAuth2 refresh token: minibox POSTs it to the token
/// server for an access token, and the registry never sees it. The harness's
/// token server speaks only the GET flow, so a proxy plays the OAuth2 part in
/// front of it (and names itself as the realm in the registry's challenges).
#[test]
fn an_identity_token_is_traded_for_access_tokens() {
    if !harness::require_root("ch07 identity tokens") {
        return;
    }
    use harness::proxy::{OAuth, Proxy};
    let registry = Registry::start_with_token_auth(&[USER], &[]);
    let layer = LayerBuilder::default().file("app", "private\n").build();
    registry.push("private/app", "v1", &images::image(vec![layer], &["sh"]));
    let proxy = Proxy::start_with_oauth(
        &registry.host(),
        OAuth {
            realm: registry.token_realm().unwrap(),
            refresh_token: "refresh-123".into(),
            user: (USER.0.into(), USER.1.into()),
        },
    );
    let reference = format!("{}/private/app:v1", proxy.host());
    let env = common::env("identity-token", None);
    docker_config(
        &env,
        serde_json::json!({ "auths": { proxy.host(): { "auth": "", "identitytoken": "refresh-123" } } }),
    );
    pull_with(&env, &reference, &[]).expect(0);
    let posts: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "one token for the whole pull: {posts:?}");
    assert_eq!((posts[0].path.as_str(), posts[0].status), ("/token", 200));

    let wrong = common::env("wrong-token", None);
    docker_config(
        &wrong,
        serde_json::json!({ "auths": { proxy.host(): { "identitytoken": "stale" } } }),
    );
    pull_with(&wrong, &reference, &[]).expect(1);
}

/// Under sudo (root, `SUDO_USER` set), Docker's config is the invoking
/// user's, from their home in the password database, not the one under HOME
/// (sudo often sets HOME to /root). Here HOME holds a config with the
/// password and SUDO_USER names a system user without one: the password is
/// not used.
#[test]
fn under_sudo_the_invoking_users_docker_config_is_read_not_homes() {
    if !harness::require_root("ch07 SUDO_USER") {
        return;
    }
    let registry = Registry::start_with_basic_auth(&[USER]);
    let layer = LayerBuilder::default().file("app", "v1\n").build();
    registry.push("team/app", "v1", &images::image(vec![layer], &["sh"]));
    let reference = format!("{}/team/app:v1", registry.host());
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(home.path().join(".docker")).unwrap();
    let auth = base64_of(&format!("{}:{}", USER.0, USER.1));
    fs::write(
        home.path().join(".docker/config.json"),
        serde_json::json!({ "auths": { registry.host(): { "auth": auth } } }).to_string(),
    )
    .unwrap();
    let env = common::env("sudo-user", None);
    let pull = |sudo_user: Option<&str>| {
        let mut command = env.command(&["pull", &reference]);
        command.env_remove("DOCKER_CONFIG").env("HOME", home.path());
        match sudo_user {
            Some(user) => command.env("SUDO_USER", user),
            None => command.env_remove("SUDO_USER"),
        };
        common::wait(command.spawn().unwrap(), &["pull", &reference])
    };
    // `daemon` exists on every Debian system; its home has no Docker config.
    pull(Some("daemon")).expect(1);
    pull(None).expect(0);
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Behind a company proxy, `HTTP_PROXY`/`HTTPS_PROXY` name it, and every
/// connection goes through it, a `CONNECT` tunnel each (the runner's `sudo -E`
/// keeps these variables). Here the proxy is the test's own; the pull
/// succeeds, and the proxy saw tunnels to the registry.
#[test]
fn the_proxy_variables_are_honoured() {
    if !harness::require_root("ch07 proxy variables") {
        return;
    }
    use harness::proxy::Proxy;
    let registry = Registry::start();
    let layer = LayerBuilder::default().file("app", "v1\n").build();
    registry.push("team/app", "v1", &images::image(vec![layer], &["sh"]));
    let proxy = Proxy::start(&registry.host(), vec![]);
    let env = common::env("proxy-variables", None);
    let reference = format!("{}/team/app:v1", registry.host());
    let url = format!("http://{}", proxy.host());
    pull_with(&env, &reference, &[("HTTP_PROXY", &url), ("NO_PROXY", "")]).expect(0);
    let seen = proxy.requests();
    assert!(
        seen.iter()
            .any(|r| r.method == "CONNECT" && r.path == registry.host() && r.status == 200),
        "{seen:?}"
    );
}

/// Behind a TLS-inspecting company proxy, IT adds the company's CA to the
/// system's store, and every tool must trust that store rather than a list of
/// its own. minibox reads it as Go (and so Docker) does: the file
/// `SSL_CERT_FILE` names (instead of the distribution's bundle), and every
/// certificate in the directories of `SSL_CERT_DIR`.
#[test]
fn the_system_store_is_trusted_through_ssl_cert_file_and_dir() {
    if !harness::require_root("ch07 system CA store") {
        return;
    }
    let registry = Registry::start();
    let layer = LayerBuilder::default().file("app", "v1\n").build();
    registry.push("team/app", "v1", &images::image(vec![layer], &["sh"]));
    let tls = harness::tls::TlsRegistry::start(&registry, false);
    let reference = format!("{}/team/app:v1", tls.host());
    let store = tempfile::tempdir().unwrap();
    let ca_dir = tls.certs_d(store.path()); // holds ca.crt
    let empty = tempfile::tempdir().unwrap();
    let certs_d = empty.path().to_str().unwrap();
    let bundle = ca_dir.join("ca.crt");

    let untrusted = common::env("no-company-ca", None);
    pull_with(&untrusted, &reference, &[("MINIBOX_CERTS_D", certs_d)]).expect(1);

    let file = common::env("ssl-cert-file", None);
    let vars = [
        ("MINIBOX_CERTS_D", certs_d),
        ("SSL_CERT_FILE", bundle.to_str().unwrap()),
    ];
    pull_with(&file, &reference, &vars).expect(0);

    // A directory of its own: SSL_CERT_DIR is a list split at colons, and
    // certs.d's HOST:PORT has one.
    let company = tempfile::tempdir().unwrap();
    fs::copy(&bundle, company.path().join("company-ca.pem")).unwrap();
    let dir = common::env("ssl-cert-dir", None);
    let vars = [
        ("MINIBOX_CERTS_D", certs_d),
        ("SSL_CERT_FILE", "/nonexistent"),
        ("SSL_CERT_DIR", company.path().to_str().unwrap()),
    ];
    pull_with(&dir, &reference, &vars).expect(0);
}
