//! Docker's words for durations, sizes and container states.
//!
//! `docker ps` never prints a timestamp or a byte count as a number: it says
//! `Up 5 seconds`, `Exited (0) 3 minutes ago`, `About an hour ago`, `1.2kB`.
//! The words are not Docker's CLI's own: they come from two small functions
//! in the `docker/go-units` library, `HumanDuration` and
//! `HumanSizeWithPrecision`, and from the daemon's `State.String()`
//! (`daemon/container/state.go` in moby), which puts them together. A reader
//! of the book learns here that these strings are *approximations with
//! thresholds*: 59 seconds is `59 seconds`, 60 to 119 seconds is
//! `About a minute`, and hours are rounded to the nearest hour, so a
//! container up for 1 h 45 min says `Up 2 hours`.
//!
//! Times are passed in (`now` is a parameter, never read from the clock
//! here), so the same container always reads the same way in a test.
//!
//! Sizes are chapter 7's ([`ch07_image_pull::images::human_size`], which
//! `minibox images` already uses): one place for that knowledge.

use std::time::{Duration, SystemTime};

use crate::ps::State;

/// Docker's sizes: decimal units (`kB` is 1000 bytes) and three significant
/// digits, `4.26MB`, `872B`, `12.3kB`, as go-units' `HumanSizeWithPrecision(size, 3)`
/// prints them for `docker ps -s`, `docker images` and `docker system df`.
/// Written once, in chapter 7, for `minibox images`.
pub use ch07_image_pull::images::human_size as size;

// ANCHOR: binary_size
/// Docker's memory sizes: binary units (`KiB` is 1024 bytes) and four
/// significant digits, `64MiB`, `5.629MiB`, `1.953GiB`, as go-units'
/// `BytesSize` prints them for `docker stats`.
pub fn binary_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    // Go's `%.4g`: four digits in all, then trailing zeros dropped.
    let whole_digits = if value < 1.0 {
        1
    } else {
        value.log10() as usize + 1
    };
    let text = format!("{value:.*}", 4usize.saturating_sub(whole_digits));
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", units[unit])
}
// ANCHOR_END: binary_size

// ANCHOR: duration
/// How long `d` is, in Docker's words: go-units' `HumanDuration`, with its
/// thresholds (`duration.go` in `docker/go-units`).
///
/// Seconds and minutes are cut down (119 seconds is `About a minute`), but
/// hours are rounded to the nearest (1 h 30 min is `2 hours`). Days, weeks
/// and months count from that rounded number of hours, and a month is 30
/// days. Years count from the hours *before* rounding, so for the half hour
/// before a second anniversary go-units says `1 years`; we say it too.
pub fn duration(d: Duration) -> String {
    // Chapter 7's `images` says it the same way: one place for go-units' rules.
    ch07_image_pull::images::human_duration(d.as_secs())
}
// ANCHOR_END: duration

/// The time from `then` to `now`. A `then` in the future (another machine's
/// clock, or a record written a moment after `now` was read) is no time at
/// all, as Go's negative durations read `Less than a second`.
pub fn since(then: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

/// `5 seconds ago`: the CREATED column, and the end of `Exited (0) …`.
pub fn ago(then: SystemTime, now: SystemTime) -> String {
    format!("{} ago", duration(since(then, now)))
}

// ANCHOR: status
/// The STATUS column: the daemon's `State.String()`.
///
/// A running container counts from when it *started*, an exited one from
/// when it *finished*; CREATED (see [`ago`]) counts from when it was
/// created, which is why a container made with `create` and started later
/// can say `10 minutes ago` and `Up 2 seconds` on one line.
pub fn status(state: &State, now: SystemTime) -> String {
    match state {
        State::Created => "Created".to_string(),
        State::Running { started } => format!("Up {}", duration(since(*started, now))),
        State::Paused { started } => format!("Up {} (Paused)", duration(since(*started, now))),
        State::Restarting {
            exit_code,
            finished,
        } => format!("Restarting ({exit_code}) {}", ago(*finished, now)),
        State::Removing => "Removal In Progress".to_string(),
        State::Exited {
            exit_code,
            finished,
        } => format!("Exited ({exit_code}) {}", ago(*finished, now)),
        State::Dead => "Dead".to_string(),
    }
}
// ANCHOR_END: status

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    const WEEK: u64 = 7 * DAY;
    const MONTH: u64 = 30 * DAY;
    const YEAR: u64 = 365 * DAY;

    fn secs(s: u64) -> String {
        duration(Duration::from_secs(s))
    }

    /// The expectations are go-units' own (`duration_test.go`,
    /// `ExampleHumanDuration` and `TestHumanDuration` in `docker/go-units`),
    /// written out again by hand.
    #[test]
    fn seconds_and_minutes_are_cut_down() {
        assert_eq!(duration(Duration::from_millis(450)), "Less than a second");
        assert_eq!(duration(Duration::from_millis(999)), "Less than a second");
        assert_eq!(secs(1), "1 second");
        assert_eq!(duration(Duration::from_millis(1999)), "1 second");
        assert_eq!(secs(2), "2 seconds");
        assert_eq!(secs(47), "47 seconds");
        assert_eq!(secs(59), "59 seconds");
        assert_eq!(secs(60), "About a minute");
        assert_eq!(secs(119), "About a minute");
        assert_eq!(secs(2 * MINUTE), "2 minutes");
        assert_eq!(secs(3 * MINUTE), "3 minutes");
        assert_eq!(secs(35 * MINUTE + 40), "35 minutes");
        assert_eq!(secs(59 * MINUTE + 59), "59 minutes");
    }

    /// go-units rounds hours (`int(d.Hours() + 0.5)`): `ExampleHumanDuration`
    /// prints `2 hours` for 1h45m and `4 hours` for 3h59m.
    #[test]
    fn hours_are_rounded() {
        assert_eq!(secs(HOUR), "About an hour");
        assert_eq!(secs(HOUR + 29 * MINUTE + 59), "About an hour");
        assert_eq!(secs(HOUR + 30 * MINUTE), "2 hours");
        assert_eq!(secs(HOUR + 45 * MINUTE), "2 hours");
        assert_eq!(secs(3 * HOUR), "3 hours");
        assert_eq!(secs(3 * HOUR + 59 * MINUTE), "4 hours");
        assert_eq!(secs(DAY), "24 hours");
        assert_eq!(secs(DAY + 12 * HOUR), "36 hours");
        // 47.5 hours rounds to 48: days from there.
        assert_eq!(secs(47 * HOUR + 29 * MINUTE), "47 hours");
        assert_eq!(secs(47 * HOUR + 30 * MINUTE), "2 days");
    }

    /// Days below two weeks, weeks below two (30-day) months, months below
    /// two years: `ExampleHumanDuration` again.
    #[test]
    fn days_weeks_months_and_years() {
        assert_eq!(secs(2 * DAY), "2 days");
        assert_eq!(secs(7 * DAY), "7 days");
        assert_eq!(secs(13 * DAY + 5 * HOUR), "13 days");
        assert_eq!(secs(2 * WEEK), "2 weeks");
        assert_eq!(secs(2 * WEEK + 4 * DAY), "2 weeks");
        assert_eq!(secs(3 * WEEK), "3 weeks");
        assert_eq!(secs(4 * WEEK + 3 * DAY), "4 weeks");
        assert_eq!(secs(MONTH + 2 * WEEK), "6 weeks");
        assert_eq!(secs(2 * MONTH), "2 months");
        assert_eq!(secs(3 * MONTH + WEEK), "3 months");
        assert_eq!(secs(5 * MONTH + 2 * WEEK), "5 months");
        assert_eq!(secs(13 * MONTH), "13 months");
        assert_eq!(secs(24 * MONTH), "24 months");
        assert_eq!(secs(24 * MONTH + 2 * WEEK), "2 years");
        assert_eq!(secs(3 * YEAR + 2 * MONTH), "3 years");
    }

    /// The half hour before two years: hours round up to 17520 (so not
    /// months), but years count whole hours (17519), which is one year.
    /// Docker prints `1 years` there, and so do we.
    #[test]
    fn the_years_quirk_is_dockers() {
        assert_eq!(secs(2 * YEAR - 20 * MINUTE), "1 years");
        assert_eq!(secs(2 * YEAR - 31 * MINUTE), "24 months");
    }

    #[test]
    fn a_time_in_the_future_is_no_time_at_all() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            ago(now + Duration::from_secs(5), now),
            "Less than a second ago"
        );
        assert_eq!(ago(now - Duration::from_secs(5), now), "5 seconds ago");
    }

    /// The STATUS words of moby's `State.String()`; the documented examples
    /// are `docker ps`'s reference page (`Up 16 seconds`,
    /// `Up About an hour (Paused)`, `Exited (137) 5 seconds ago`).
    #[test]
    fn status_reads_like_dockers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10 * DAY);
        let before = |s: u64| now - Duration::from_secs(s);
        let status = |state: State| status(&state, now);
        assert_eq!(status(State::Created), "Created");
        assert_eq!(
            status(State::Running {
                started: before(16)
            }),
            "Up 16 seconds"
        );
        assert_eq!(
            status(State::Running {
                started: now - Duration::from_millis(300)
            }),
            "Up Less than a second"
        );
        assert_eq!(
            status(State::Paused {
                started: before(HOUR + 5 * MINUTE)
            }),
            "Up About an hour (Paused)"
        );
        assert_eq!(
            status(State::Exited {
                exit_code: 137,
                finished: before(5)
            }),
            "Exited (137) 5 seconds ago"
        );
        assert_eq!(
            status(State::Exited {
                exit_code: 0,
                finished: before(3 * MINUTE)
            }),
            "Exited (0) 3 minutes ago"
        );
        assert_eq!(
            status(State::Restarting {
                exit_code: 1,
                finished: before(2)
            }),
            "Restarting (1) 2 seconds ago"
        );
        assert_eq!(status(State::Removing), "Removal In Progress");
        assert_eq!(status(State::Dead), "Dead");
    }

    /// go-units' `BytesSize`: Go's `%.4g` and binary units.
    #[test]
    fn memory_sizes_are_binary_with_four_digits() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(1023), "1023B");
        assert_eq!(binary_size(1536), "1.5KiB");
        assert_eq!(binary_size(64 << 20), "64MiB");
        assert_eq!(binary_size(5_902_336), "5.629MiB");
        assert_eq!(binary_size(2_097_152_000), "1.953GiB");
        assert_eq!(binary_size(25_324_961_792), "23.59GiB");
    }

    /// `HumanSizeWithPrecision(size, 3)`: Go's `%.3g` and decimal units.
    /// `docker ps -s` on the reference page shows `35.58 kB (virtual 109.2 MB)`
    /// from an older go-units; today's Docker prints the same sizes as
    /// `35.6kB` and `109MB` (chapter 7's `images` test checks the same rule).
    #[test]
    fn sizes_are_chapter_sevens() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(2), "2B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(1_000), "1kB");
        assert_eq!(size(1_234), "1.23kB");
        assert_eq!(size(35_580), "35.6kB");
        assert_eq!(size(3_400_000), "3.4MB");
        assert_eq!(size(109_200_000), "109MB");
        assert_eq!(size(12_300), "12.3kB");
        assert_eq!(size(21_500_000), "21.5MB");
        assert_eq!(size(4_000_000_000), "4GB");
    }

    /// Go's `%.3g` switches to an exponent when rounding reaches 1000 of a
    /// unit: go-units prints 999 600 bytes as `1e+03kB`, and units go on past
    /// PB (`EB`). Chapter 7's `human_size` prints `1000kB` and `18447PB`
    /// here; the fix belongs there (see the branch's report).
    #[test]
    #[ignore = "chapter 7's human_size differs from go-units at these edges"]
    fn sizes_at_go_units_edges() {
        assert_eq!(size(999_600), "1e+03kB");
        assert_eq!(size(u64::MAX), "18.4EB");
    }
}
