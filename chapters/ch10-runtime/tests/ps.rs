//! Whole `ps` invocations, through the public API only: rows as the state
//! module will hand them over, options as the command line gives them, and
//! the text a user sees, written out by hand from Docker's documented and
//! tested output (each test says where from).
//!
//! The story is the seed material's: a container started with `-d` in one
//! terminal is listed by `ps` in another; `ps -a` adds the exited ones with
//! their exit codes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ch10_runtime::ps::{Options, Port, Protocol, Ps, Row, Size, State};

/// When `ps` runs: 2023-11-14 22:13:20 UTC.
const NOW: u64 = 1_700_000_000;

fn ago(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW - seconds)
}

fn container(id: char, name: &str, command: &[&str], created: u64, state: State) -> Row {
    Row {
        id: id.to_string().repeat(64),
        name: name.to_string(),
        image: "busybox".to_string(),
        image_id: format!("sha256:{}", "b".repeat(64)),
        command: command.iter().map(|w| w.to_string()).collect(),
        created: ago(created),
        state,
        ports: Vec::new(),
        networks: vec!["bridge".to_string()],
        mounts: Vec::new(),
        size: None,
    }
}

/// The seed's session: `run -d busybox ping 10.0.0.1` (still running),
/// `run busybox echo hi` (exited 0) and a `ping` stopped with `stop`
/// (exited 137).
fn session() -> Vec<Row> {
    vec![
        container(
            'a',
            "eager_turing",
            &["ping", "10.0.0.1"],
            125,
            State::Running { started: ago(124) },
        ),
        container(
            'b',
            "quirky_hopper",
            &["echo", "hi"],
            200,
            State::Exited {
                exit_code: 0,
                finished: ago(199),
            },
        ),
        container(
            'c',
            "stoic_lovelace",
            &["ping", "-c", "1000", "10.0.0.1"],
            400,
            State::Exited {
                exit_code: 137,
                finished: ago(20),
            },
        ),
    ]
}

/// Runs `ps` with `options` on `rows` and returns what it prints.
fn ps(options: Options, rows: Vec<Row>) -> String {
    let ps = Ps::new(&options).expect("valid options");
    let chosen = ps.select(rows, |_| Vec::new());
    let mut out = Vec::new();
    ps.write(&chosen, ago(0), &mut out)
        .expect("writes to a Vec");
    String::from_utf8(out).expect("UTF-8")
}

/// `docker ps` in the second terminal: the running container only, columns
/// padded to their widest cell plus 3 and at least 10 (Docker's tab writer;
/// the header line is the one on `docker ps`'s reference page).
#[test]
fn ps_lists_the_running_container() {
    let expected = concat!(
        "CONTAINER ID   IMAGE     COMMAND           CREATED         STATUS         PORTS     NAMES\n",
        "aaaaaaaaaaaa   busybox   \"ping 10.0.0.1\"   2 minutes ago   Up 2 minutes             eager_turing\n",
    );
    assert_eq!(ps(Options::default(), session()), expected);
}

/// `docker ps -a`: every container, newest first, with exit codes
/// (`Exited (137) 20 seconds ago`, as on the reference page's `exited=137`
/// example), the command cut to 20 characters with `…`.
#[test]
fn ps_all_adds_the_exited_ones() {
    let options = Options {
        all: true,
        ..Options::default()
    };
    let expected = concat!(
        "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS                        PORTS     NAMES\n",
        "aaaaaaaaaaaa   busybox   \"ping 10.0.0.1\"          2 minutes ago   Up 2 minutes                            eager_turing\n",
        "bbbbbbbbbbbb   busybox   \"echo hi\"                3 minutes ago   Exited (0) 3 minutes ago                quirky_hopper\n",
        "cccccccccccc   busybox   \"ping -c 1000 10.0.0…\"   6 minutes ago   Exited (137) 20 seconds ago             stoic_lovelace\n",
    );
    assert_eq!(ps(options, session()), expected);
}

/// `-a --no-trunc`: full IDs and commands (the reference page's
/// `--no-trunc` example).
#[test]
fn no_trunc_shows_everything() {
    let options = Options {
        all: true,
        no_trunc: true,
        filters: vec!["name=stoic".to_string()],
        ..Options::default()
    };
    let id = "c".repeat(64);
    let expected = format!(
        "CONTAINER ID{pad}   IMAGE     COMMAND                   CREATED         STATUS                        PORTS     NAMES\n\
         {id}   busybox   \"ping -c 1000 10.0.0.1\"   6 minutes ago   Exited (137) 20 seconds ago             stoic_lovelace\n",
        pad = " ".repeat(64 - 12),
    );
    assert_eq!(ps(options, session()), expected);
}

/// `-q`, `-a -q`, `-l -q`: the IDs alone.
#[test]
fn quiet_prints_ids() {
    let quiet = |all: bool, latest: bool| {
        ps(
            Options {
                quiet: true,
                all,
                latest,
                ..Options::default()
            },
            session(),
        )
    };
    assert_eq!(quiet(false, false), "aaaaaaaaaaaa\n");
    assert_eq!(
        quiet(true, false),
        "aaaaaaaaaaaa\nbbbbbbbbbbbb\ncccccccccccc\n"
    );
    assert_eq!(quiet(false, true), "aaaaaaaaaaaa\n");
}

/// Docker's own table test (`container-list-without-format.golden` in
/// `docker/cli`): five containers of `busybox:latest` running `top`, with
/// exposed ports grouped (`80-82/tcp`), a UDP port and a port published on
/// 8.8.8.8. The golden file's STATUS is a made-up `Up 1 minute`; a container
/// up for 70 seconds says `Up About a minute`, so that column is 6 wider.
#[test]
fn dockers_golden_table() {
    let exposed = |port, protocol| Port {
        container_port: port,
        protocol,
        host: None,
    };
    let mut rows = Vec::new();
    for (i, name) in ["c1", "c2", "c3", "c4", "c5"].into_iter().enumerate() {
        let id = char::from(b'1' + i as u8);
        let mut row = container(
            id,
            name,
            &["top"],
            70 + i as u64,
            State::Running { started: ago(70) },
        );
        row.image = "busybox:latest".to_string();
        rows.push(row);
    }
    rows[2].ports = vec![
        exposed(80, Protocol::Tcp),
        exposed(81, Protocol::Tcp),
        exposed(82, Protocol::Tcp),
    ];
    rows[3].ports = vec![exposed(81, Protocol::Udp)];
    rows[4].ports = vec![Port {
        container_port: 82,
        protocol: Protocol::Tcp,
        host: Some(("8.8.8.8".parse().expect("an address"), 82)),
    }];
    let expected = concat!(
        "CONTAINER ID   IMAGE            COMMAND   CREATED              STATUS              PORTS                NAMES\n",
        "111111111111   busybox:latest   \"top\"     About a minute ago   Up About a minute                        c1\n",
        "222222222222   busybox:latest   \"top\"     About a minute ago   Up About a minute                        c2\n",
        "333333333333   busybox:latest   \"top\"     About a minute ago   Up About a minute   80-82/tcp            c3\n",
        "444444444444   busybox:latest   \"top\"     About a minute ago   Up About a minute   81/udp               c4\n",
        "555555555555   busybox:latest   \"top\"     About a minute ago   Up About a minute   8.8.8.8:82->82/tcp   c5\n",
    );
    assert_eq!(ps(Options::default(), rows), expected);
}

/// `ps -s` adds SIZE, the writable layer and, in parentheses, everything the
/// container sees (the reference page's `--size` example; Docker's
/// `TestContainerContextWrite` for the header). The caller measures sizes
/// only when asked.
#[test]
fn size_column() {
    let options = Options {
        size: true,
        ..Options::default()
    };
    let ps_cmd = Ps::new(&options).expect("valid options");
    assert!(ps_cmd.wants_size());
    let mut rows = ps_cmd.select(session(), |_| Vec::new());
    for row in &mut rows {
        row.size = Some(Size {
            rw: 35_580,
            root_fs: 109_200_000,
        });
    }
    let mut out = Vec::new();
    ps_cmd
        .write(&rows, ago(0), &mut out)
        .expect("writes to a Vec");
    let expected = concat!(
        "CONTAINER ID   IMAGE     COMMAND           CREATED         STATUS         PORTS     NAMES          SIZE\n",
        "aaaaaaaaaaaa   busybox   \"ping 10.0.0.1\"   2 minutes ago   Up 2 minutes             eager_turing   35.6kB (virtual 109MB)\n",
    );
    assert_eq!(String::from_utf8(out).expect("UTF-8"), expected);
}

/// Filters as on the reference page: `ps -a --filter exited=0`,
/// `--filter status=exited` (which needs no `-a`), `--filter name=…`, and
/// a custom table.
#[test]
fn filters_and_formats_together() {
    let options = |filters: &[&str], format: &str| Options {
        filters: filters.iter().map(|f| f.to_string()).collect(),
        format: Some(format.to_string()),
        ..Options::default()
    };
    let table = "table {{.Names}}\\t{{.Status}}";
    assert_eq!(
        ps(options(&["status=exited"], table), session()),
        concat!(
            "NAMES            STATUS\n",
            "quirky_hopper    Exited (0) 3 minutes ago\n",
            "stoic_lovelace   Exited (137) 20 seconds ago\n",
        )
    );
    assert_eq!(
        ps(options(&["status=exited", "exited=137"], table), session()),
        "NAMES            STATUS\nstoic_lovelace   Exited (137) 20 seconds ago\n"
    );
    assert_eq!(
        ps(options(&["name=hopper", "name=turing"], "{{.Names}}"), {
            let mut rows = session();
            rows.iter_mut().for_each(|r| {
                r.state = State::Running { started: ago(1) };
            });
            rows
        }),
        "eager_turing\nquirky_hopper\n"
    );
}

/// The errors a user sees, one line each, Docker's words.
#[test]
fn bad_input_is_refused_with_dockers_messages() {
    let error = |options: Options| Ps::new(&options).expect_err("refused").to_string();
    assert_eq!(
        error(Options {
            filters: vec!["foo=bar".to_string()],
            ..Options::default()
        }),
        "invalid filter 'foo'"
    );
    assert_eq!(
        error(Options {
            format: Some("{{.Foo}}".to_string()),
            ..Options::default()
        }),
        "failed to execute template: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext"
    );
    // The template is checked before the filters, as Docker's CLI checks it
    // before asking the daemon.
    assert!(
        error(Options {
            filters: vec!["foo=bar".to_string()],
            format: Some("{{.Foo}}".to_string()),
            ..Options::default()
        })
        .starts_with("failed to execute template")
    );
}
