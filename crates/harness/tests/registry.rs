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
