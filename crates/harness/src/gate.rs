//! A front for the test registry that makes concurrent pulls really overlap.
//! Two pulls started "at the same moment" may still run one after the other
//! (the first one done before the second asks for anything), and then a test
//! of what happens when they race proves nothing. The gate holds every blob
//! download until `clients` requests for that same blob are waiting, then
//! lets them all through, and records which blobs met: a test asserts that
//! each layer did.
//!
//! It speaks just enough HTTP/1.1 for minibox: GET only, one request per
//! connection (`Connection: close`), forwarded to the registry with the
//! headers that matter.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::http::{read_request, respond};
use crate::registry::Registry;

/// Blob requests waiting, per path, and the paths whose requests met.
#[derive(Default)]
struct State {
    waiting: HashMap<String, usize>,
    met: BTreeSet<String>,
}

/// The front: a listener on 127.0.0.1 in front of a [`Registry`].
pub struct BlobGate {
    host: String,
    stop: Arc<AtomicBool>,
    state: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl BlobGate {
    /// Starts a gate in front of `registry` that holds each blob download
    /// until `clients` requests for it wait together, or `patience` has
    /// passed (then it lets the request through, and that blob did not meet).
    pub fn start(registry: &Registry, clients: usize, patience: Duration) -> BlobGate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gate");
        let host = listener.local_addr().expect("gate address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let upstream = registry.url("");
        let thread = {
            let (stop, state) = (stop.clone(), state.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .build()
                    .into();
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (agent, upstream, state) = (agent.clone(), upstream.clone(), state.clone());
                    std::thread::spawn(move || {
                        serve(stream, &agent, &upstream, &state, clients, patience);
                    });
                }
            })
        };
        BlobGate {
            host,
            stop,
            state,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, for a reference or `MINIBOX_REGISTRY_MIRROR`.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// The digests (`sha256:...`) of the blobs whose downloads met: `clients`
    /// requests for each were held at the gate at the same time.
    pub fn met(&self) -> BTreeSet<String> {
        let state = self.state.0.lock().expect("gate state");
        state
            .met
            .iter()
            .filter_map(|path| path.rsplit('/').next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for BlobGate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.host); // wakes the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection: one request, held at the gate if it is a blob download,
/// then forwarded.
fn serve(
    stream: TcpStream,
    agent: &ureq::Agent,
    upstream: &str,
    state: &(Mutex<State>, Condvar),
    clients: usize,
    patience: Duration,
) {
    // A TLS hello (a client trying HTTPS first) is not a request: drop it.
    let Some((method, path, headers)) = read_request(&stream) else {
        return;
    };
    if method == "GET" && path.contains("/blobs/") {
        let (lock, arrived) = state;
        let mut guard = lock.lock().expect("gate state");
        *guard.waiting.entry(path.clone()).or_default() += 1;
        arrived.notify_all();
        let (mut guard, _) = arrived
            .wait_timeout_while(guard, patience, |s| s.waiting[&path] < clients)
            .expect("gate state");
        if guard.waiting[&path] >= clients {
            guard.met.insert(path.clone());
        }
    }
    if method != "GET" {
        respond(stream, 405, &[], b"");
        return;
    }
    let mut request = agent.get(format!("{upstream}{path}"));
    for (name, value) in &headers {
        if matches!(name.as_str(), "authorization" | "accept" | "range") {
            request = request.header(name, value);
        }
    }
    let Ok(mut response) = request.call() else {
        return;
    };
    let status = response.status().as_u16();
    let kept: Vec<(String, String)> = [
        "content-type",
        "docker-content-digest",
        "www-authenticate",
        "location",
    ]
    .iter()
    .filter_map(|k| {
        Some((
            k.to_string(),
            response.headers().get(*k)?.to_str().ok()?.to_string(),
        ))
    })
    .collect();
    let mut body = Vec::new();
    if response
        .body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .is_err()
    {
        return;
    }
    respond(stream, status, &kept, &body);
}
