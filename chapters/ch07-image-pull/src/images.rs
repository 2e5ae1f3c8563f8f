//! `minibox images`: the store's index as Docker's table, REPOSITORY, TAG,
//! IMAGE ID, CREATED, SIZE. The image ID is the config's digest (what the
//! image *is*: the same config is the same image under any name); the size is
//! the layers' unpacked size, as `docker images` shows it.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::digest;
use crate::oci::ImageConfig;
use crate::reference::Reference;
use crate::store::Store;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `busybox`, `localhost:5000/team/app`.
    pub repository: String,
    /// The tag, or `<none>` for an image pulled by digest alone.
    pub tag: String,
    /// The config digest's first 12 hex digits.
    pub id: String,
    /// `3 weeks ago`, or `N/A` when the config does not say.
    pub created: String,
    /// `4.26MB`.
    pub size: String,
}

/// The rows, sorted by repository and tag; only those matching `filter`
/// (`REPOSITORY` or `REPOSITORY:TAG`) if given.
pub fn rows(store: &Store, filter: Option<&str>) -> Result<Vec<Row>> {
    let filter = filter.map(Reference::parse).transpose()?;
    let filter_has_tag = |text: &str| text.rsplit('/').next().is_some_and(|l| l.contains(':'));
    let mut rows = Vec::new();
    for (name, record) in store.images()? {
        let Ok(reference) = Reference::parse(&name) else {
            continue;
        };
        if let Some(wanted) = &filter {
            let same_repository =
                wanted.registry == reference.registry && wanted.repository == reference.repository;
            let tag_matters = filter_has_tag(&wanted.to_string()) && wanted.tag.is_some();
            if !same_repository || (tag_matters && wanted.tag != reference.tag) {
                continue;
            }
        }
        let config: Option<ImageConfig> = store
            .read_blob(&record.config)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let created = config
            .and_then(|c| c.created)
            .and_then(|c| parse_rfc3339(&c))
            .map(|t| format!("{} ago", human_duration(now().saturating_sub(t))))
            .unwrap_or_else(|| "N/A".to_string());
        let size: u64 = record.diff_ids.iter().map(|d| store.layer_size(d)).sum();
        rows.push(Row {
            repository: reference.familiar_name(),
            tag: reference.tag.clone().unwrap_or_else(|| "<none>".into()),
            id: digest::short(&record.config).to_string(),
            created,
            size: human_size(size),
        });
    }
    rows.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    Ok(rows)
}

// ANCHOR: print
/// Prints the table (or, with `quiet`, the IDs alone) to `out`.
pub fn print(rows: &[Row], quiet: bool, out: impl Write) -> Result<()> {
    // Docker's table writer: columns at least 10 wide, 3 spaces between.
    // Go's tabwriter makes a column max(minwidth, widest cell + padding) wide,
    // the crate max(minwidth, widest cell) + padding: 7 + 3 is Docker's 10.
    let mut table = tabwriter::TabWriter::new(out).minwidth(7).padding(3);
    if quiet {
        let mut seen = Vec::new();
        for row in rows {
            if !seen.contains(&row.id) {
                writeln!(table, "{}", row.id)?;
                seen.push(row.id.clone());
            }
        }
    } else {
        writeln!(table, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")?;
        for r in rows {
            writeln!(
                table,
                "{}\t{}\t{}\t{}\t{}",
                r.repository, r.tag, r.id, r.created, r.size
            )?;
        }
    }
    table.flush().context("writing the table")
}
// ANCHOR_END: print

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Docker's sizes: decimal units, three significant digits (`4.26MB`, `872B`).
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.digits$}");
    // `%g` drops trailing zeros: 4.00MB is 4MB.
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", units[unit])
}

/// Docker's "how long ago": `Less than a second`, `About a minute`, `3 weeks`,
/// with go-units' `HumanDuration` thresholds: hours are rounded to the
/// nearest (1 h 45 min is `2 hours`), days, weeks and months count from the
/// rounded hours (a month is 30 days), years from the hours before rounding.
pub fn human_duration(seconds: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let hours = (seconds + 1800) / 3600; // Go's int(d.Hours() + 0.5)
    match seconds {
        0 => "Less than a second".into(),
        s if s < 60 => plural(s, "second"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s / 60 < 60 => plural(s / 60, "minute"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => plural(hours, "hour"),
        _ if hours < 24 * 7 * 2 => plural(hours / 24, "day"),
        _ if hours < 24 * 30 * 2 => plural(hours / 24 / 7, "week"),
        _ if hours < 24 * 365 * 2 => plural(hours / 24 / 30, "month"),
        // go-units writes "%d years" even for 1: in the half hour before a
        // second anniversary the rounded hours say two years, the whole ones one.
        s => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// Seconds since the epoch of an RFC 3339 time (`2024-09-26T21:31:42.123Z`,
/// `…+02:00`). Configs built without a date say `1970-01-01T00:00:00Z`.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let number = |s: &str| s.parse::<i64>().ok();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (
        number(ymd.next()?)?,
        number(ymd.next()?)?,
        number(ymd.next()?)?,
    );
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, "Z"),
    };
    let mut hms = clock.splitn(3, ':');
    let (h, min) = (number(hms.next()?)?, number(hms.next()?)?);
    let s = number(hms.next()?.split('.').next()?)?;
    let offset = match offset {
        "Z" | "z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            sign * (number(oh)? * 3600 + number(om)? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + min * 60 + s - offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_like_dockers() {
        assert_eq!(human_size(872), "872B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(4_000_000), "4MB");
        assert_eq!(human_size(12_345), "12.3kB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        assert_eq!(human_duration(21 * 86_400), "3 weeks");
        assert_eq!(human_duration(800 * 86_400), "2 years");
        // go-units rounds hours: 1 h 45 min is 2 hours, 3 h 59 min is 4.
        assert_eq!(human_duration(3600 + 45 * 60), "2 hours");
        assert_eq!(human_duration(3 * 3600 + 59 * 60), "4 hours");
        assert_eq!(human_duration(3600 + 29 * 60), "About an hour");
        assert_eq!(human_duration(2 * 365 * 86_400 - 1200), "1 years");
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-09-26T21:31:42.123456789Z"),
            Some(1_727_386_302)
        );
        assert_eq!(
            parse_rfc3339("2024-09-26T23:31:42+02:00"),
            Some(1_727_386_302)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
