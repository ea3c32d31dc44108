//! Dates as HAR files write them (ISO 8601, `2026-11-28T16:04:05.123Z`): read with any zone offset,
//! written in UTC. Shared by the page's HAR reader and writer and the e2e test's HAR recorder.

/// Milliseconds since the Unix epoch of an ISO 8601 date-time as HAR writes them
/// (`2026-11-28T16:04:05.123Z`, `2026-11-28T17:04:05.123+01:00`), or `None`. Hand-written because
/// the page needs only this one format, and a date crate would weigh more in its bundle than this.
pub fn parse_date_time(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<i64> {
        let part = text.get(from..from + len)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if bytes.len() < 19 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    let mut at = 19;
    let mut fraction = 0.0;
    if bytes.get(at) == Some(&b'.') {
        let digits = bytes[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        fraction = format!("0.{}", text.get(at + 1..at + 1 + digits)?)
            .parse()
            .ok()?;
        at += 1 + digits;
    }
    let offset_minutes = match bytes.get(at) {
        Some(b'Z') | None => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let hours = number(at + 1, 2)?;
            let minutes = if bytes.get(at + 3) == Some(&b':') {
                number(at + 4, 2)?
            } else {
                number(at + 3, 2)?
            };
            let total = hours * 60 + minutes;
            if sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some((seconds as f64 + fraction) * 1000.0)
}

/// The ISO 8601 form HAR writes (`2026-11-28T16:04:05.123Z`) of milliseconds since the Unix epoch.
pub fn format_date_time(ms: f64) -> String {
    let total_ms = ms.round() as i64;
    let (seconds, millis) = (total_ms.div_euclid(1000), total_ms.rem_euclid(1000));
    let (days, day_seconds) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // civil_from_days, the inverse of the above.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        day_seconds / 3600,
        day_seconds / 60 % 60,
        day_seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_in_every_zone_and_write_back_the_same_instant() {
        let utc = parse_date_time("2026-11-28T16:04:05.123Z").unwrap();
        assert_eq!(utc, 1_795_881_845_123.0);
        assert_eq!(
            parse_date_time("2026-11-28T17:04:05.123+01:00"),
            Some(utc),
            "Firefox writes the local offset"
        );
        assert_eq!(parse_date_time("2026-11-28T16:04:05Z"), Some(utc - 123.0));
        assert_eq!(format_date_time(utc), "2026-11-28T16:04:05.123Z");
        assert_eq!(format_date_time(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_date_time("yesterday"), None);
        assert_eq!(parse_date_time("2026-13-28T16:04:05Z"), None);
    }
}
