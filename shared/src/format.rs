//! Numbers as a person reads them: durations, clock times and sizes, the same on every panel.

/// Milliseconds as a person reads them: `850 ms`, `1.4 s`, `2 min`.
pub fn format_ms(ms: f64) -> String {
    // Whole milliseconds everywhere: a tenth of one is below what a browser's clock can tell.
    if ms > 0.0 && ms < 0.5 {
        "<1 ms".to_owned()
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 59_950.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        // Minutes with their whole seconds: "2 min" for 90 s would be a claim off by half a minute.
        let seconds = (ms / 1000.0).round() as u64;
        match (seconds / 3600, seconds / 60 % 60, seconds % 60) {
            (0, minutes, 0) => format!("{minutes} min"),
            (0, minutes, seconds) => format!("{minutes} min {seconds} s"),
            (hours, 0, _) => format!("{hours} h"),
            (hours, minutes, _) => format!("{hours} h {minutes} min"),
        }
    }
}

/// A time of day to the millisecond, `07:45:12.345`, from milliseconds already in local time.
pub fn format_clock(local_ms: f64) -> String {
    let day_ms = local_ms.rem_euclid(86_400_000.0).floor() as u64;
    let (seconds, ms) = (day_ms / 1000, day_ms % 1000);
    format!(
        "{:02}:{:02}:{:02}.{ms:03}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Bytes as a person reads them: `912 B`, `14.2 kB`, `3.1 MB`.
pub fn format_bytes(bytes: f64) -> String {
    if bytes < 1000.0 {
        format!("{bytes:.0} B")
    } else if bytes < 1_000_000.0 {
        format!("{:.1} kB", bytes / 1000.0)
    } else {
        format!("{:.1} MB", bytes / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_like_a_person_wrote_them() {
        assert_eq!(format_ms(0.25), "<1 ms");
        assert_eq!(format_ms(0.0), "0 ms");
        assert_eq!(format_ms(0.8), "1 ms");
        assert_eq!(format_ms(850.0), "850 ms");
        assert_eq!(format_ms(1400.0), "1.4 s");
        assert_eq!(format_ms(59_960.0), "1 min");
        assert_eq!(format_ms(72_000.0), "1 min 12 s");
        assert_eq!(format_ms(90_000.0), "1 min 30 s", "not \"2 min\"");
        assert_eq!(format_ms(3_900_000.0), "1 h 5 min");
        assert_eq!(format_bytes(912.0), "912 B");
        assert_eq!(
            format_clock(((7.0 * 60.0 + 45.0) * 60.0 + 12.345) * 1000.0),
            "07:45:12.345"
        );
        assert_eq!(format_bytes(14_200.0), "14.2 kB");
    }
}
