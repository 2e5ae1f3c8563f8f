//! The container's log: Docker's `json-file` log driver, written by the
//! monitor and read by `minibox logs`.
//!
//! A container's output outlives the terminal it was started from: `run -d`
//! returns at once, and `logs` shows what the container wrote, from another
//! terminal, minutes later. So the monitor ([`crate::monitor`]) copies every
//! line the container writes into a file, one JSON object per line, exactly
//! as Docker's default log driver does (moby's `daemon/logger/jsonfilelog`):
//!
//! ```text
//! {"log":"hi\n","stream":"stdout","time":"2026-12-05T19:20:23.123456789Z"}
//! {"log":"oops\n","stream":"stderr","time":"2026-12-05T19:20:23.1234568Z"}
//! ```
//!
//! - `log` is the line *with* its newline, as a JSON string. Docker escapes
//!   it its own way (Go's HTML-safe escaping: `<` is `\u003c`, a tab is
//!   `\u0009`, bytes that are not UTF-8 become `\ufffd`), and so do we, byte for
//!   byte, so a file written here reads the same in Docker's tools.
//! - `stream` says which pipe the line came from, so `logs` can send it back
//!   to the same one (`logs 2>/dev/null` hides what the container wrote to
//!   stderr).
//! - `time` is when the monitor read the line, in UTC, as Go's RFC 3339 with
//!   nanoseconds: trailing zeros of the fraction are dropped (`.1234568Z`,
//!   or no fraction at all on a whole second).
//!
//! Lines are not unbounded: like Docker's log copier, the writer holds at most
//! 16 KiB of an unfinished line ([`MAX_LINE`]). A longer line is written as
//! *partial* records of 16 KiB without a newline, all stamped with the time
//! of the first piece, and the piece that holds the newline ends it. When a
//! stream ends in the middle of a line (`printf hi`), what is left is written
//! as a partial record too: `{"log":"hi",...}`, no newline added.
//!
//! Each record reaches the file in one `write(2)` on a file opened with
//! `O_APPEND`, so the records of the two streams never mix inside a line,
//! and each stream's lines stay in their order. A reader may still see the
//! last record half-written (a write to a regular file is not atomic for
//! readers), so every reader here takes only whole lines, ending in `\n`,
//! and leaves the rest for its next read.
//!
//! The reader ([`show`], [`follow`]) is `docker logs`: `--tail N` reads the
//! file backwards in blocks from its end (a long-lived container's log can be
//! large; the last ten lines should not cost reading all of it), `--since`
//! takes Docker's forms of a time (RFC 3339, a date, a Unix timestamp, or a
//! duration such as `10m` meaning that long ago: [`parse_since`]), `-t`
//! prefixes each line with its time, and `-f` keeps reading as the file grows
//! until the caller says the container has ended.
// SIMPLIFICATION: Docker's json-file driver rotates the file (`--log-opt
// max-size=10m --log-opt max-file=3`, optionally compressing old files) and
// its reader follows across rotations; it also records `attrs` (labels, env,
// a tag) in every record. The file here grows until the container is
// removed, and records carry no attrs. Docker's other drivers (`local`,
// `journald`, `syslog`, ...) have no counterpart.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

/// The most of an unfinished line the writer holds: a line longer than this
/// is written in pieces of this size, as Docker's log copier does (its
/// buffer is 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// How much of the file [`show`] reads at a time when it looks for the
/// start of the last N records, going backwards from the end.
pub const TAIL_BLOCK: usize = 64 * 1024;

/// The file mode of a new log: owner read-write, group read, as Docker's.
const LOG_MODE: u32 = 0o640;

// ANCHOR: stream
/// Which of the container's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output (file descriptor 1).
    Stdout,
    /// Standard error (file descriptor 2).
    Stderr,
}

impl Stream {
    /// The name a record carries in its `stream` field.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// The stream named `name` in a record.
    pub fn from_name(name: &str) -> Option<Stream> {
        match name {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}
// ANCHOR_END: stream

// ANCHOR: record
/// One record of the log, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Which stream the text came from.
    pub stream: Stream,
    /// The text: a whole line with its `\n`, or a piece of a line without it
    /// (a line over [`MAX_LINE`], or the unfinished end of a stream).
    pub log: String,
    /// When the monitor read it (the first piece's time, for every piece of
    /// a long line).
    pub time: OffsetDateTime,
}

/// Writes one record as Docker writes it: its fields in Docker's order,
/// Docker's escaping, one line.
pub fn encode(stream: Stream, log: &[u8], time: OffsetDateTime, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"log\":");
    escape(log, out);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(rfc3339_nano(time).as_bytes());
    out.extend_from_slice(b"\"}\n");
}
// ANCHOR_END: record

/// Reads one record (a line of the file, with or without its `\n`).
pub fn decode(line: &[u8]) -> Result<Record> {
    /// The record as it is in the file. Records written by Docker may hold
    /// `attrs` too, which `logs` does not show.
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        log: String,
        stream: String,
        time: String,
    }
    let raw: Raw = serde_json::from_slice(line).context("a malformed log record")?;
    let stream = Stream::from_name(&raw.stream)
        .ok_or_else(|| anyhow!("a log record of unknown stream {:?}", raw.stream))?;
    let time = parse_time(&raw.time)
        .ok_or_else(|| anyhow!("a log record with a malformed time {:?}", raw.time))?;
    Ok(Record {
        stream,
        log: raw.log,
        time,
    })
}

// ANCHOR: escape
/// Docker's JSON string escaping (moby's `ffjsonWriteJSONBytesAsString`),
/// which differs from most JSON libraries': `<`, `>` and `&` are escaped for
/// HTML, control characters other than `\n` and `\r` become `\u00XX`, each
/// byte that is not part of valid UTF-8 becomes `\ufffd`, and U+2028 and
/// U+2029 (line separators to JavaScript) are escaped.
fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte < 0x80 {
            match byte {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', byte]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'<' | b'>' | b'&' | 0..0x20 => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(byte >> 4)]);
                    out.push(HEX[usize::from(byte & 0xf)]);
                }
                _ => out.push(byte),
            }
            i += 1;
            continue;
        }
        // A multi-byte character: its lead byte says how long it is; the
        // whole sequence must decode, or this one byte is replaced (as Go's
        // utf8.DecodeRune does: one U+FFFD per bad byte).
        let len = match byte {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        let decoded = bytes
            .get(i..i + len)
            .filter(|_| len > 0)
            .and_then(|sequence| std::str::from_utf8(sequence).ok());
        match decoded {
            Some("\u{2028}") => out.extend_from_slice(b"\\u2028"),
            Some("\u{2029}") => out.extend_from_slice(b"\\u2029"),
            Some(character) => out.extend_from_slice(character.as_bytes()),
            None => {
                out.extend_from_slice(b"\\ufffd");
                i += 1;
                continue;
            }
        }
        i += len;
    }
    out.push(b'"');
}
// ANCHOR_END: escape

// ANCHOR: writer
/// Appends the container's output to its log, line by line: the monitor's
/// end of the log.
#[derive(Debug)]
pub struct Writer {
    file: File,
    /// Per stream, the unfinished line read so far.
    pending: [Pending; 2],
}

/// A stream's unfinished line.
#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    /// The time of the first piece of a long line already written, which
    /// every later piece of that line carries too.
    partial_time: Option<OffsetDateTime>,
}

impl Writer {
    /// Opens (or creates, mode 0640) the log at `path` for appending. A
    /// container started again appends to the log of its earlier runs, as
    /// Docker's does.
    pub fn open(path: &Path) -> Result<Writer> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(LOG_MODE)
            .open(path)
            .with_context(|| format!("open the log {}", path.display()))?;
        Ok(Writer {
            file,
            pending: Default::default(),
        })
    }

    /// Takes `data`, just read from `stream`, and writes a record for every
    /// line it completes, and a partial record for every [`MAX_LINE`] bytes
    /// of a line that has no end yet.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<()> {
        let pending = &mut self.pending[stream.index()];
        pending.bytes.extend_from_slice(data);
        loop {
            let window = &pending.bytes[..pending.bytes.len().min(MAX_LINE)];
            if let Some(newline) = window.iter().position(|&b| b == b'\n') {
                // A whole line (or the last piece of a long one).
                let time = pending.partial_time.take().unwrap_or_else(now);
                let line: Vec<u8> = pending.bytes.drain(..=newline).collect();
                append(&mut self.file, stream, &line, time)?;
            } else if pending.bytes.len() >= MAX_LINE {
                // 16 KiB and still no newline: write a piece of the line.
                let time = *pending.partial_time.get_or_insert_with(now);
                let piece: Vec<u8> = pending.bytes.drain(..MAX_LINE).collect();
                append(&mut self.file, stream, &piece, time)?;
            } else {
                return Ok(());
            }
        }
    }

    /// `stream` has ended (end of file on its pipe): its unfinished last
    /// line, if any, is written as it is, without a newline.
    pub fn finish(&mut self, stream: Stream) -> Result<()> {
        let pending = &mut self.pending[stream.index()];
        let time = pending.partial_time.take().unwrap_or_else(now);
        if !pending.bytes.is_empty() {
            let rest = std::mem::take(&mut pending.bytes);
            append(&mut self.file, stream, &rest, time)?;
        }
        Ok(())
    }
}

/// Appends one record in one `write(2)`: with `O_APPEND`, the kernel puts it
/// at the end of the file whole, so records never interleave.
fn append(file: &mut File, stream: Stream, log: &[u8], time: OffsetDateTime) -> Result<()> {
    let mut record = Vec::with_capacity(log.len() + 80);
    encode(stream, log, time, &mut record);
    // write_all calls write(2) once unless the kernel writes less, which a
    // regular file only does when the disk is full.
    file.write_all(&record).context("append to the log")
}
// ANCHOR_END: writer

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

// ANCHOR: times
/// A time as a record's `time` field: Go's `time.RFC3339Nano` in UTC, whose
/// fraction drops its trailing zeros (and the dot, on a whole second).
pub fn rfc3339_nano(time: OffsetDateTime) -> String {
    let mut text = whole_seconds(time);
    let nanos = time.to_offset(UtcOffset::UTC).nanosecond();
    if nanos != 0 {
        text.push('.');
        text.push_str(format!("{nanos:09}").trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// A time as `logs -t` prints it: always nine digits of fraction, so the
/// lines' times line up (Docker's `RFC3339NanoFixed`).
pub fn rfc3339_nano_fixed(time: OffsetDateTime) -> String {
    let nanos = time.to_offset(UtcOffset::UTC).nanosecond();
    format!("{}.{nanos:09}Z", whole_seconds(time))
}

/// `2026-12-05T19:20:23`, in UTC.
fn whole_seconds(time: OffsetDateTime) -> String {
    let t = time.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
// ANCHOR_END: times

// ANCHOR: since
/// Parses `logs --since VALUE`, Docker's way (its `timetypes.GetTimestamp`),
/// `now` being the time of the command:
///
/// - a duration, Go's syntax (`10m`, `1h30m`, `1.5h`, `300ms`): that long
///   before `now`, to the whole second, as Docker sends it;
/// - a time: `2026-12-05`, `2026-12-05T19`, `2026-12-05T19:20`,
///   `2026-12-05T19:20:23`, with a fraction after the seconds, and with `Z`
///   or an offset such as `+01:00`;
/// - a Unix timestamp: `1796498423` or `1796498423.5`.
pub fn parse_since(value: &str, now: OffsetDateTime) -> Result<OffsetDateTime> {
    let value = value.trim();
    if value != "0"
        && let Some(nanos) = parse_duration(value)
    {
        let then = now.unix_timestamp_nanos() - nanos;
        let whole = then.div_euclid(1_000_000_000) * 1_000_000_000;
        return OffsetDateTime::from_unix_timestamp_nanos(whole).map_err(|_| since_error(value));
    }
    if let Some(time) = parse_time(value) {
        return Ok(time);
    }
    parse_unix(value).ok_or_else(|| since_error(value))
}
// ANCHOR_END: since

fn since_error(value: &str) -> anyhow::Error {
    anyhow!(
        "invalid value for \"since\": {value:?}: expected a time (2026-12-05T19:20:23Z), \
         a duration (10m, 1h30m) or a Unix timestamp"
    )
}

/// A Go duration (`1h30m`, `1.5s`, `300ms`, `-2m`) in nanoseconds, or None.
fn parse_duration(value: &str) -> Option<i128> {
    let (sign, mut rest) = match value.as_bytes().first()? {
        b'-' => (-1, &value[1..]),
        b'+' => (1, &value[1..]),
        _ => (1, value),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * unit;
        rest = &rest[unit_end..];
    }
    Some(sign * total.round() as i128)
}

/// `SECONDS` or `SECONDS.FRACTION` since the epoch, or None.
fn parse_unix(value: &str) -> Option<OffsetDateTime> {
    let (seconds, fraction) = value.split_once('.').unwrap_or((value, ""));
    if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i128 = seconds.parse().ok()?;
    let nanos = parse_fraction(fraction)?;
    OffsetDateTime::from_unix_timestamp_nanos(seconds * 1_000_000_000 + i128::from(nanos)).ok()
}

/// The digits after a decimal point as nanoseconds (at most nine digits).
fn parse_fraction(digits: &str) -> Option<u32> {
    if digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    Some(digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32))
}

/// Parses `YYYY-MM-DD[THH[:MM[:SS[.F]]]][Z|±HH:MM]`: a record's `time`
/// (RFC 3339), and the time forms of `--since`.
pub fn parse_time(value: &str) -> Option<OffsetDateTime> {
    let number = |text: &str| -> Option<u32> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    let (date, rest) = (value.get(..10)?, &value[10..]);
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let month = Month::try_from(u8::try_from(number(month)?).ok()?).ok()?;
    let date = Date::from_calendar_date(
        number(year)? as i32,
        month,
        u8::try_from(number(day)?).ok()?,
    )
    .ok()?;
    // The zone starts at the first Z, + or - after the date.
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    if let Some(clock) = clock.strip_prefix('T') {
        let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
        let fields: Vec<&str> = hms.split(':').collect();
        if fields.len() > 3 || fields.iter().any(|f| f.len() != 2) {
            return None;
        }
        let field = |i: usize| fields.get(i).map_or(Some(0), |f| number(f));
        (hour, minute, second) = (field(0)?, field(1)?, field(2)?);
        if !fraction.is_empty() && fields.len() < 3 {
            return None;
        }
        nanos = parse_fraction(fraction)?;
    } else if !clock.is_empty() {
        return None;
    }
    let time = Time::from_hms_nano(hour as u8, minute as u8, second as u8, nanos).ok()?;
    // SIMPLIFICATION: Docker reads a time without a zone in the local time
    // zone of the client; minibox reads it as UTC, like the times it shows.
    let offset = match zone {
        "" | "Z" | "z" => UtcOffset::UTC,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = zone[1..].split_once(':')?;
            if hours.len() != 2 || minutes.len() != 2 {
                return None;
            }
            let (hours, minutes) = (number(hours)? as i8, number(minutes)? as i8);
            UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?
        }
    };
    Some(date.with_time(time).assume_offset(offset))
}

// ANCHOR: read_options
/// What `minibox logs` asked for.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// `--tail N`: only the last N records (None: all of them).
    pub tail: Option<usize>,
    /// `--since`: only records from this time on ([`parse_since`]).
    pub since: Option<OffsetDateTime>,
    /// `-t`: each line prefixed with its time and a space.
    pub timestamps: bool,
}
// ANCHOR_END: read_options

// ANCHOR: show
/// `minibox logs`: writes the records of the log at `path` that `options`
/// selects, stdout records to `stdout` and stderr records to `stderr`. A
/// closed output (`logs | head`) ends it quietly.
pub fn show(
    path: &Path,
    options: &ReadOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<()> {
    let mut reader = Reader::open(path, options)?;
    let mut out = Output {
        stdout,
        stderr,
        timestamps: options.timestamps,
    };
    reader.read_available(&mut out)?;
    Ok(())
}

/// `minibox logs -f`: like [`show`], then keeps reading what is appended,
/// checking every `interval`, until `stopped` says the writer is done (the
/// container has ended, or the user pressed Ctrl-C). After `stopped` first
/// returns true the file is read once more, so that the last records
/// written before the end are shown: the monitor flushes the log before it
/// records the container's exit.
pub fn follow(
    path: &Path,
    options: &ReadOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    interval: Duration,
    stopped: &mut dyn FnMut() -> bool,
) -> Result<()> {
    let mut reader = Reader::open(path, options)?;
    let mut out = Output {
        stdout,
        stderr,
        timestamps: options.timestamps,
    };
    loop {
        let done = stopped();
        if reader.read_available(&mut out)? == Flow::Closed || done {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}
// ANCHOR_END: show

/// Whether the output still takes lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Open,
    /// The reader of our output went away (`logs | head`).
    Closed,
}

/// Where records go.
struct Output<'a> {
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
    timestamps: bool,
}

impl Output<'_> {
    fn emit(&mut self, record: &Record) -> io::Result<()> {
        let out: &mut dyn Write = match record.stream {
            Stream::Stdout => &mut *self.stdout,
            Stream::Stderr => &mut *self.stderr,
        };
        if self.timestamps {
            write!(out, "{} ", rfc3339_nano_fixed(record.time))?;
        }
        out.write_all(record.log.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stdout.flush()?;
        self.stderr.flush()
    }
}

/// A position in a log and what to show from it.
struct Reader {
    file: File,
    path: String,
    /// Where the next whole record starts.
    offset: u64,
    since: Option<OffsetDateTime>,
}

impl Reader {
    fn open(path: &Path, options: &ReadOptions) -> Result<Reader> {
        let file = File::open(path).with_context(|| format!("open the log {}", path.display()))?;
        let path = path.display().to_string();
        let offset = match options.tail {
            Some(n) => tail_start(&file, n).with_context(|| format!("read {path}"))?,
            None => 0,
        };
        Ok(Reader {
            file,
            path,
            offset,
            since: options.since,
        })
    }

    /// Shows every whole record from `offset` to the end of the file, and
    /// moves `offset` past them. A last line without its `\n` is a record
    /// being written: it is left for the next call.
    fn read_available(&mut self, out: &mut Output) -> Result<Flow> {
        self.file
            .seek(SeekFrom::Start(self.offset))
            .with_context(|| format!("seek in {}", self.path))?;
        let mut lines = BufReader::new(&self.file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = lines
                .read_until(b'\n', &mut line)
                .with_context(|| format!("read {}", self.path))?;
            if read == 0 || line.last() != Some(&b'\n') {
                break;
            }
            self.offset += read as u64;
            let record = decode(&line).with_context(|| format!("read {}", self.path))?;
            if self.since.is_some_and(|since| record.time < since) {
                continue;
            }
            match out.emit(&record) {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Flow::Closed),
                result => result.context("write the log out")?,
            }
        }
        match out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Flow::Closed),
            result => result.context("write the log out").map(|()| Flow::Open),
        }
    }
}

// ANCHOR: tail
/// Where the last `n` whole records of `file` start: reads it backwards,
/// [`TAIL_BLOCK`] bytes at a time, counting newlines, so that `--tail 10` of
/// a large log reads only its end. Bytes after the last newline (a record
/// being written) are not a record and are not counted.
fn tail_start(file: &File, n: usize) -> Result<u64> {
    let mut end = file.metadata()?.len();
    // The newline that ends the last whole record, then one more for each
    // record before it: the (n+1)th newline from the end precedes the first
    // of the last n records.
    let wanted = n + 1;
    let mut seen = 0;
    let mut block = vec![0u8; TAIL_BLOCK];
    while end > 0 {
        let start = end.saturating_sub(TAIL_BLOCK as u64);
        let block = &mut block[..(end - start) as usize];
        file.read_exact_at(block, start)?;
        for (i, &byte) in block.iter().enumerate().rev() {
            if byte == b'\n' {
                seen += 1;
                if seen == wanted {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        end = start;
    }
    Ok(0) // fewer than n records: all of them
}
// ANCHOR_END: tail

/// Checks a `--tail` value as Docker takes it: a number, or `all`.
pub fn parse_tail(value: &str) -> Result<Option<usize>> {
    if value == "all" {
        return Ok(None);
    }
    match value.parse() {
        Ok(n) => Ok(Some(n)),
        Err(_) => bail!("invalid value for \"tail\": {value:?}: expected a number or \"all\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        parse_time(text).unwrap()
    }

    fn encoded(log: &[u8]) -> String {
        let mut out = Vec::new();
        encode(Stream::Stdout, log, at("2026-12-05T19:20:23.1Z"), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn records_are_written_as_docker_writes_them() {
        assert_eq!(
            encoded(b"hi\n"),
            "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-05T19:20:23.1Z\"}\n"
        );
        // Go's HTML-safe escaping, control characters as \u00XX, bad bytes.
        assert_eq!(
            encoded(b"<a href=\"x\">&\t\r\\\x01"),
            "{\"log\":\"\\u003ca href=\\\"x\\\"\\u003e\\u0026\\u0009\\r\\\\\\u0001\",\
             \"stream\":\"stdout\",\"time\":\"2026-12-05T19:20:23.1Z\"}\n"
        );
        assert!(encoded("é ✓ 🦀\u{2028}".as_bytes()).contains("\"é ✓ 🦀\\u2028\""));
        // A cut-off sequence: one U+FFFD per bad byte, as Go's DecodeRune.
        assert!(encoded(b"\xe2\x82A\xff").contains("\"\\ufffd\\ufffdA\\ufffd\""));
        // Whatever the escaping, a JSON parser reads the original text back.
        let text = "<&> \t \u{1} é \u{2029}\n";
        let record = decode(encoded(text.as_bytes()).as_bytes()).unwrap();
        assert_eq!(record.log, text);
    }

    #[test]
    fn times_are_go_rfc3339_nano_and_fixed_for_display() {
        assert_eq!(
            rfc3339_nano(at("2026-12-05T19:20:23.123456789Z")),
            "2026-12-05T19:20:23.123456789Z"
        );
        assert_eq!(
            rfc3339_nano(at("2026-12-05T19:20:23.120Z")),
            "2026-12-05T19:20:23.12Z"
        );
        assert_eq!(
            rfc3339_nano(at("2026-12-05T20:20:23+01:00")),
            "2026-12-05T19:20:23Z"
        );
        assert_eq!(
            rfc3339_nano_fixed(at("2026-12-05T19:20:23.12Z")),
            "2026-12-05T19:20:23.120000000Z"
        );
    }

    #[test]
    fn since_takes_dockers_forms() {
        let now = at("2026-12-05T19:20:23.75Z");
        let since = |value: &str| parse_since(value, now).unwrap();
        assert_eq!(since("10m"), at("2026-12-05T19:10:23Z"));
        assert_eq!(since("1h30m"), at("2026-12-05T17:50:23Z"));
        assert_eq!(since("1.5s"), at("2026-12-05T19:20:22Z"));
        assert_eq!(since("2026-12-05"), at("2026-12-05T00:00:00Z"));
        assert_eq!(since("2026-12-05T19"), at("2026-12-05T19:00:00Z"));
        assert_eq!(since("2026-12-05T19:20"), at("2026-12-05T19:20:00Z"));
        assert_eq!(
            since("2026-12-05T19:20:23.5Z"),
            at("2026-12-05T19:20:23.5Z")
        );
        assert_eq!(
            since("2026-12-05T20:20:23+01:00"),
            at("2026-12-05T19:20:23Z")
        );
        assert_eq!(since("1796498423"), at("2026-12-05T19:20:23Z"));
        assert_eq!(since("1796498423.25"), at("2026-12-05T19:20:23.25Z"));
        assert_eq!(since("0"), OffsetDateTime::UNIX_EPOCH);
        for bad in [
            "",
            "yesterday",
            "10x",
            "2026-13-01",
            "2026-12-05T25",
            "12.5.6",
        ] {
            let error = parse_since(bad, now).unwrap_err().to_string();
            assert!(
                error.starts_with("invalid value for \"since\""),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn tail_takes_a_number_or_all() {
        assert_eq!(parse_tail("all").unwrap(), None);
        assert_eq!(parse_tail("5").unwrap(), Some(5));
        assert!(parse_tail("-1").is_err());
    }
}
