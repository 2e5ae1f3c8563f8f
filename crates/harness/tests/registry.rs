//! The fixture images and the real registry: a pushed image can be read back
//! over the registry API byte for byte, with the digests the image format
//! promises, and the registry quirk chapter 7 must live with (an OCI manifest is
//! only served to a client that says it accepts one). Dropping the registry
//! stops the server and removes its storage.

use std::io::Read;

use harness::images::{self, MANIFEST, sha256};
use harness::registry::Registry;

fn get(url: &str, accept: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut request = agent.get(url);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let mut response = request.call().expect("GET");
    let digest = response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .unwrap();
    (response.status().as_u16(), digest, body)
}

#[test]
fn a_pushed_image_reads_back_with_its_digests() {
    let image = images::busybox().unwrap();
    let registry = Registry::start();
    let digest = registry.push("minibox/busybox", "latest", &image);
    assert_eq!(digest, image.manifest.digest);

    let manifest_url = registry.url("/v2/minibox/busybox/manifests/latest");
    let (status, header, body) = get(&manifest_url, Some(MANIFEST));
    assert_eq!(status, 200);
    assert_eq!(sha256(&body), digest, "the manifest's bytes are its digest");
    assert_eq!(header.as_deref(), Some(digest.as_str()));

    // Distribution 2.8 serves an OCI manifest only to a client that accepts it.
    let (status, _, body) = get(&manifest_url, None);
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("MANIFEST_UNKNOWN"));

    // The layer: its bytes match its digest, and it unpacks to busybox's root.
    let layer = &image.layers[0];
    let (status, _, bytes) = get(
        &registry.url(&format!("/v2/minibox/busybox/blobs/{}", layer.blob.digest)),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(sha256(&bytes), layer.blob.digest);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(
        sha256(&tar),
        layer.diff_id,
        "the config's diff_id is the tar's digest"
    );
    let names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/sh"), "{names:?}");
}

#[test]
fn fixture_images_are_reproducible() {
    let (a, b) = (images::busybox().unwrap(), images::busybox().unwrap());
    assert_eq!(a.manifest.digest, b.manifest.digest);
}

#[test]
fn dropping_the_registry_stops_it_and_removes_its_storage() {
    let registry = Registry::start();
    let storage = registry.storage();
    let url = registry.url("/v2/");
    assert_eq!(get(&url, None).0, 200);
    drop(registry);
    assert!(!storage.exists(), "{} left behind", storage.display());
    let agent = ureq::Agent::config_builder().build().new_agent();
    assert!(
        agent.get(&url).call().is_err(),
        "the registry still answers"
    );
}

/// The names of the entries in a gzipped tar layer, exactly as written.
fn entry_names(gzipped: &[u8]) -> Vec<String> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gzipped)
        .read_to_end(&mut tar)
        .unwrap();
    tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

#[test]
fn hello_world_is_one_static_program_and_nothing_else() {
    let image = images::hello_world().unwrap();
    assert_eq!(image.layers.len(), 1);
    assert_eq!(entry_names(&image.layers[0].blob.bytes), ["hello"]);
    let program = harness::fixtures::static_program("hello").unwrap();
    assert!(harness::fixtures::is_static(&program).unwrap());
    let out = std::process::Command::new(&program).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Hello from minibox!\n"));

    let registry = Registry::start();
    let digest = registry.push("library/hello-world", "latest", &image);
    let (status, _, body) = get(
        &registry.url("/v2/library/hello-world/manifests/latest"),
        Some(MANIFEST),
    );
    assert_eq!((status, sha256(&body)), (200, digest));
}

#[test]
fn the_layered_image_carries_a_whiteout_and_an_opaque_marker() {
    let image = images::layered();
    assert_eq!(image.layers.len(), 2);
    let upper = entry_names(&image.layers[1].blob.bytes);
    assert!(upper.contains(&"etc/.wh.deleted".to_string()), "{upper:?}");
    assert!(
        upper.contains(&"opaque/.wh..wh..opq".to_string()),
        "{upper:?}"
    );
    let registry = Registry::start();
    registry.push("minibox/layered", "latest", &image);
    let blob = &image.layers[1].blob;
    let (status, _, bytes) = get(
        &registry.url(&format!("/v2/minibox/layered/blobs/{}", blob.digest)),
        None,
    );
    assert_eq!((status, sha256(&bytes)), (200, blob.digest.clone()));
}

#[test]
fn the_multi_platform_index_lists_this_machine_and_another() {
    let (index, platform_images) = images::multi_platform();
    let registry = Registry::start();
    let digest = registry.push_index("minibox/multi", "latest", &index, &platform_images);
    let (status, _, body) = get(
        &registry.url("/v2/minibox/multi/manifests/latest"),
        Some(images::INDEX),
    );
    assert_eq!((status, sha256(&body)), (200, digest));
    let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let architectures: Vec<&str> = listed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(architectures[0], images::host_architecture());
    assert_eq!(architectures.len(), 2);
    assert_ne!(architectures[0], architectures[1]);
    // Each entry can be fetched by its digest.
    for image in &platform_images {
        let url = registry.url(&format!(
            "/v2/minibox/multi/manifests/{}",
            image.manifest.digest
        ));
        assert_eq!(get(&url, Some(MANIFEST)).0, 200);
    }
}

#[test]
fn malicious_layers_hold_exactly_the_hostile_entries() {
    let layers = images::malicious_layers("/etc/minibox-marker", "/tmp/minibox-escaped-42");
    let names: Vec<(&str, Vec<String>)> = layers
        .iter()
        .map(|(name, layer)| (*name, entry_names(&layer.blob.bytes)))
        .collect();
    assert_eq!(
        names[0].1,
        ["../../../../../../../../tmp/minibox-escaped-42"]
    );
    assert_eq!(names[1].1, ["escape", "escape/minibox-escaped-42"]);
    assert_eq!(names[2].1, ["passwd"]);
    assert_eq!(names.len(), 3, "an absolute name is no escape");
}
