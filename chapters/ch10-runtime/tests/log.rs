//! The json-file log, written by [`log::Writer`] and read back by
//! [`log::show`] and [`log::follow`], on real files: both streams, Docker's
//! 16 KiB pieces, the unfinished last line, `--tail` from the end,
//! `--since`, `-t`, and `-f` until the writer is done.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use ch10_runtime::log::{self, ReadOptions, Record, Stream};
use time::OffsetDateTime;

/// The log's records, decoded, as the file holds them.
fn records(path: &Path) -> Vec<Record> {
    fs::read(path)
        .unwrap()
        .split_inclusive(|&b| b == b'\n')
        .map(|line| log::decode(line).unwrap())
        .collect()
}

/// What `logs` with `options` prints: (stdout, stderr).
fn show(path: &Path, options: &ReadOptions) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    log::show(path, options, &mut out, &mut err).unwrap();
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn tail(n: usize) -> ReadOptions {
    ReadOptions {
        tail: Some(n),
        ..ReadOptions::default()
    }
}

#[test]
fn both_streams_keep_their_line_order_and_go_back_to_their_own_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("container.log");
    let mut writer = log::Writer::open(&path).unwrap();
    // Lines arrive in pieces, the two streams interleaved.
    writer.write(Stream::Stdout, b"o1\no").unwrap();
    writer.write(Stream::Stderr, b"e1\ne2").unwrap();
    writer.write(Stream::Stdout, b"2\n").unwrap();
    writer.write(Stream::Stderr, b"\n").unwrap();
    writer.write(Stream::Stdout, b"o3\n").unwrap();

    let written: Vec<(Stream, String)> = records(&path)
        .into_iter()
        .map(|r| (r.stream, r.log))
        .collect();
    let expected = [
        (Stream::Stdout, "o1\n"),
        (Stream::Stderr, "e1\n"),
        (Stream::Stdout, "o2\n"),
        (Stream::Stderr, "e2\n"),
        (Stream::Stdout, "o3\n"),
    ];
    // In the order the lines were completed: o2 only with its newline,
    // after e1 was whole.
    assert_eq!(
        written,
        expected.map(|(s, l)| (s, l.to_string())),
        "{}",
        fs::read_to_string(&path).unwrap()
    );
    let text = fs::read_to_string(&path).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(r#"{"log":"o1\n","stream":"stdout","time":""#) && first.ends_with("Z\"}"),
        "{first}"
    );
    assert_eq!(
        show(&path, &ReadOptions::default()),
        ("o1\no2\no3\n".into(), "e1\ne2\n".into())
    );
    // Each record's time is when its line was complete, so they only grow.
    let times: Vec<OffsetDateTime> = records(&path).iter().map(|r| r.time).collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
}

#[test]
fn long_lines_are_split_in_16_kib_pieces_as_docker_splits_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("container.log");
    let mut writer = log::Writer::open(&path).unwrap();
    let long: Vec<u8> = (0..40_000).map(|i| b'a' + (i % 26) as u8).collect();
    for chunk in long.chunks(1000) {
        writer.write(Stream::Stdout, chunk).unwrap();
    }
    writer.write(Stream::Stdout, b"\n").unwrap();
    // Exactly 16 KiB before the newline does not fit Docker's buffer either:
    // a full piece, then the newline alone.
    writer
        .write(Stream::Stderr, &[b'x'; log::MAX_LINE])
        .unwrap();
    writer.write(Stream::Stderr, b"\n").unwrap();
    // One byte less fits: one record.
    writer
        .write(Stream::Stderr, &[b'y'; log::MAX_LINE - 1])
        .unwrap();
    writer.write(Stream::Stderr, b"\n").unwrap();

    let records = records(&path);
    let lengths: Vec<(Stream, usize, bool)> = records
        .iter()
        .map(|r| (r.stream, r.log.len(), r.log.ends_with('\n')))
        .collect();
    assert_eq!(
        lengths,
        [
            (Stream::Stdout, 16384, false),
            (Stream::Stdout, 16384, false),
            (Stream::Stdout, 40_000 - 2 * 16384 + 1, true),
            (Stream::Stderr, 16384, false),
            (Stream::Stderr, 1, true),
            (Stream::Stderr, 16384, true),
        ]
    );
    // Every piece of a line carries the time of its first piece.
    assert_eq!(records[0].time, records[1].time);
    assert_eq!(records[0].time, records[2].time);
    // `logs` puts the pieces back together.
    let (out, err) = show(&path, &ReadOptions::default());
    let mut line = long.clone();
    line.push(b'\n');
    assert_eq!(out.as_bytes(), line.as_slice());
    assert_eq!(err.len(), 16384 + 1 + 16384);
}

#[test]
fn an_unfinished_last_line_is_written_as_it_is_when_the_stream_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("container.log");
    let mut writer = log::Writer::open(&path).unwrap();
    writer.write(Stream::Stdout, b"a\nb").unwrap();
    writer.write(Stream::Stderr, b"no newline").unwrap();
    assert_eq!(records(&path).len(), 1, "b is not finished yet");
    writer.finish(Stream::Stdout).unwrap();
    writer.finish(Stream::Stderr).unwrap();
    writer.finish(Stream::Stderr).unwrap(); // twice: nothing more
    let logs: Vec<String> = records(&path).into_iter().map(|r| r.log).collect();
    assert_eq!(logs, ["a\n", "b", "no newline"]);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#"{"log":"b","stream":"stdout","#), "{text}");
}

#[test]
fn tail_reads_the_last_records_from_the_end_and_skips_a_torn_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("container.log");
    let mut writer = log::Writer::open(&path).unwrap();
    for i in 0..5000 {
        let stream = if i % 10 == 9 {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        writer
            .write(stream, format!("line {i}\n").as_bytes())
            .unwrap();
    }
    let size = fs::metadata(&path).unwrap().len();
    assert!(
        size > 4 * log::TAIL_BLOCK as u64,
        "the file spans several blocks: {size}"
    );
    assert_eq!(
        show(&path, &tail(3)),
        ("line 4997\nline 4998\n".into(), "line 4999\n".into())
    );
    assert_eq!(show(&path, &tail(0)), (String::new(), String::new()));
    let (out, err) = show(&path, &tail(100_000));
    assert_eq!((out.lines().count(), err.lines().count()), (4500, 500));
    // A record cut off by a write in progress is no record: --tail and the
    // reader both leave it out.
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"log":"half a rec"#).unwrap();
    assert_eq!(show(&path, &tail(1)), (String::new(), "line 4999\n".into()));
    let (out, _) = show(&path, &ReadOptions::default());
    assert!(out.ends_with("line 4998\n"));
}

#[test]
fn since_keeps_the_records_from_that_time_on_and_t_shows_their_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("container.log");
    let mut writer = log::Writer::open(&path).unwrap();
    writer.write(Stream::Stdout, b"old\n").unwrap();
    thread::sleep(Duration::from_millis(20));
    let between = OffsetDateTime::now_utc();
    thread::sleep(Duration::from_millis(20));
    writer.write(Stream::Stdout, b"new\n").unwrap();
    writer.write(Stream::Stderr, b"new err\n").unwrap();

    let since = |since| ReadOptions {
        since: Some(since),
        ..ReadOptions::default()
    };
    assert_eq!(
        show(&path, &since(between)),
        ("new\n".into(), "new err\n".into())
    );
    // --since as the user types it: an RFC 3339 time, and "a minute ago".
    let typed = log::parse_since(&log::rfc3339_nano(between), between).unwrap();
    assert_eq!(
        show(&path, &since(typed)),
        ("new\n".into(), "new err\n".into())
    );
    let a_minute_ago = log::parse_since("1m", OffsetDateTime::now_utc()).unwrap();
    assert_eq!(show(&path, &since(a_minute_ago)).0, "old\nnew\n");
    // --tail first, then --since, as Docker does.
    let both = ReadOptions {
        tail: Some(1),
        since: Some(OffsetDateTime::UNIX_EPOCH),
        ..ReadOptions::default()
    };
    assert_eq!(show(&path, &both), (String::new(), "new err\n".into()));

    let timestamps = ReadOptions {
        timestamps: true,
        ..ReadOptions::default()
    };
    let (out, _) = show(&path, &timestamps);
    let times = records(&path);
    let expected = format!(
        "{} old\n{} new\n",
        log::rfc3339_nano_fixed(times[0].time),
        log::rfc3339_nano_fixed(times[1].time)
    );
    assert_eq!(out, expected);
    assert_eq!(out.lines().next().unwrap().find('Z'), Some(29), "{out}");
}

#[test]
fn records_written_by_docker_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.log");
    fs::write(
        &path,
        concat!(
            r#"{"log":"hello \u003cworld\u003e\n","stream":"stdout","time":"2019-08-27T19:38:51.330306436Z"}"#,
            "\n",
            r#"{"log":"tagged\n","stream":"stderr","attrs":{"tag":"web"},"time":"2019-08-27T19:38:52Z"}"#,
            "\n",
        ),
    )
    .unwrap();
    let with_times = ReadOptions {
        timestamps: true,
        ..ReadOptions::default()
    };
    assert_eq!(
        show(&path, &with_times),
        (
            "2019-08-27T19:38:51.330306436Z hello <world>\n".into(),
            "2019-08-27T19:38:52.000000000Z tagged\n".into()
        )
    );
}

#[test]
fn follow_shows_what_is_appended_and_stops_once_the_writer_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("container.log");
    let mut writer = log::Writer::open(&path).unwrap();
    writer.write(Stream::Stdout, b"before\n").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writing = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            for i in 0..20 {
                thread::sleep(Duration::from_millis(10));
                writer
                    .write(Stream::Stdout, format!("line {i}\n").as_bytes())
                    .unwrap();
            }
            writer.write(Stream::Stderr, b"last, unfinished").unwrap();
            writer.finish(Stream::Stderr).unwrap();
            // As the monitor does: the log is complete, then the end is
            // recorded.
            done.store(true, Ordering::SeqCst);
        })
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut checks = 0;
    log::follow(
        &path,
        &ReadOptions::default(),
        &mut out,
        &mut err,
        Duration::from_millis(5),
        &mut || {
            checks += 1;
            done.load(Ordering::SeqCst)
        },
    )
    .unwrap();
    writing.join().unwrap();
    let mut expected = String::from("before\n");
    for i in 0..20 {
        expected.push_str(&format!("line {i}\n"));
    }
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(String::from_utf8(err).unwrap(), "last, unfinished");
    assert!(
        checks > 5,
        "it followed while the writer wrote ({checks} checks)"
    );
}

/// An output whose reader went away, like `logs | head` after head exits.
struct ClosedPipe;

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_closed_output_ends_logs_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("container.log");
    let mut writer = log::Writer::open(&path).unwrap();
    writer.write(Stream::Stdout, b"one\ntwo\n").unwrap();
    log::show(
        &path,
        &ReadOptions::default(),
        &mut ClosedPipe,
        &mut io::sink(),
    )
    .unwrap();
    log::follow(
        &path,
        &ReadOptions::default(),
        &mut ClosedPipe,
        &mut io::sink(),
        Duration::from_millis(1),
        &mut || false, // would follow forever, but nobody reads
    )
    .unwrap();
    let missing = log::show(
        &dir.path().join("none.log"),
        &ReadOptions::default(),
        &mut io::sink(),
        &mut io::sink(),
    )
    .unwrap_err();
    assert!(
        format!("{missing:#}").starts_with("open the log "),
        "{missing:#}"
    );
}
