//! `minibox attach`: the user's terminal connected to a running container's
//! monitor, through its attach socket ([`crate::attach`]).

use anyhow::{Result, bail};
use ch01_fork_exec::exit::{Exit, FailsWith};

use crate::attach::{self, Attach, Outcome};
use crate::container::{Paths, Spec};
use crate::monitor::Session;
use crate::state::{Status, Store};
use crate::terminal::DetachKeys;

// ANCHOR: attach
/// Attaches to the container: its output from now on (what came before is
/// in `logs`), the user's keys if it was started with `-i`; returns its
/// exit status when it ends, 0 when the user detaches.
pub fn attach(store: &Store, reference: &str, keys: &DetachKeys) -> Result<Exit> {
    let refused = |error| -> anyhow::Error { FailsWith { status: 1, error }.into() };
    let container = store.get::<Spec>(reference).map_err(refused)?;
    let (record, state) = (&container.record, &container.state);
    if state.status != Status::Running {
        return Err(refused(anyhow::anyhow!(
            "You cannot attach to a stopped container, start it first"
        )));
    }
    let Some(socket) = attach::socket_path(Paths::of(store, &record.id).attach_socket) else {
        bail!("container {reference} has no attach socket: MINIBOX_RUN is too long a path for one");
    };
    let session = Session::connect(&socket)?;
    let spec = &record.config;
    let how = Attach {
        interactive: spec.interactive,
        tty: spec.tty,
        keys,
    };
    match attach::attach(session, how)? {
        Outcome::Ended(ended) => Ok(ended.exit),
        Outcome::Detached => Ok(Exit::Code(0)),
        Outcome::MonitorGone => bail!("the monitor of container {reference} went away"),
    }
}
// ANCHOR_END: attach
