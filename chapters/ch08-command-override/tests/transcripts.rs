//! The chapter's story as transcripts a person reads, each an insta snapshot:
//! what `minibox run` prints when the image decides the command, when the
//! command line overrides it, and when the program cannot be started. Output
//! and errors go to one file, so they appear in the order they were written.

mod common;

use std::process::Stdio;

use common::{Env, registry};

/// Runs each command line in turn and records `$ minibox ...`, everything it
/// printed (stdout and stderr interleaved), and its exit status.
fn transcript(env: &Env, commands: &[&[&str]]) -> String {
    let mut out = String::new();
    for args in commands {
        let log = tempfile::tempfile().unwrap();
        let child = env
            .command(args)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log.try_clone().unwrap()))
            .spawn()
            .unwrap();
        let run = common::wait(child, args);
        let mut log = log;
        let mut printed = String::new();
        use std::io::{Read, Seek};
        log.rewind().unwrap();
        log.read_to_string(&mut printed).unwrap();
        out += &format!(
            "$ {}\n{printed}$ echo $?\n{}\n",
            harness::transcript::display_command(args),
            run.status
        );
    }
    out
}

#[test]
fn transcripts_of_the_chapter() {
    if !harness::require_root("ch08 transcripts") {
        return;
    }
    let registry = registry();
    let env = Env::new("transcripts", &registry);
    let settings = harness::filters::settings();
    let _bound = settings.bind_to_scope();

    insta::assert_snapshot!(
        "ch08-run-image-default",
        transcript(&env, &[&["run", "busybox"], &["run", "hello-world"]])
    );
    insta::assert_snapshot!(
        "ch08-run-override",
        transcript(
            &env,
            &[
                &["run", "--quiet", "busybox", "echo", "hi"],
                &["run", "--quiet", "hello-world", "ls"],
            ]
        )
    );
    env.minibox(&["pull", "-q", "minibox/echo"]).expect(0);
    env.minibox(&["pull", "-q", "minibox/users"]).expect(0);
    insta::assert_snapshot!(
        "ch08-entrypoint-and-cmd",
        transcript(
            &env,
            &[
                &["run", "--quiet", "minibox/echo"],
                &["run", "--quiet", "minibox/echo", "there"],
                &["run", "--quiet", "--entrypoint", "ls", "minibox/echo", "/"],
                &["run", "--quiet", "--entrypoint", "", "minibox/echo"],
            ]
        )
    );
    insta::assert_snapshot!(
        "ch08-env-user-workdir",
        transcript(
            &env,
            &[
                &[
                    "run",
                    "--quiet",
                    "-h",
                    "box",
                    "-e",
                    "GREETING=hi",
                    "busybox",
                    "env"
                ],
                &[
                    "run",
                    "-h",
                    "box",
                    "-u",
                    "minibox-app",
                    "-w",
                    "/srv/app",
                    "minibox/users",
                    "sh",
                    "-c",
                    "id; pwd"
                ],
                &["run", "--quiet", "-u", "ghost", "busybox", "id"],
            ]
        )
    );
    insta::assert_snapshot!(
        "ch08-cannot-invoke",
        transcript(
            &env,
            &[
                &["run", "--quiet", "minibox/users", "/data/notes.txt"],
                &["run", "--quiet", "minibox/users", "/etc"],
            ]
        )
    );
}
