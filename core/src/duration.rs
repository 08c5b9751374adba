//! Human durations: printing seconds as "2m10s" for reasons and events.

/// Formats seconds as a compact human duration: `45s`, `2m10s`, `1h2m`, `3d4h`.
/// Negative or non-finite input prints as `0s`.
pub fn format_secs(secs: f64) -> String {
    if !secs.is_finite() || secs <= 0.0 {
        return "0s".to_string();
    }
    let s = secs.round() as u64;
    let (d, h, m, s) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h{m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::format_secs;

    #[test]
    fn formats() {
        assert_eq!(format_secs(0.0), "0s");
        assert_eq!(format_secs(-3.0), "0s");
        assert_eq!(format_secs(f64::NAN), "0s");
        assert_eq!(format_secs(45.2), "45s");
        assert_eq!(format_secs(120.0), "2m");
        assert_eq!(format_secs(130.0), "2m10s");
        assert_eq!(format_secs(3720.0), "1h2m");
        assert_eq!(format_secs(7200.0), "2h");
        assert_eq!(format_secs(86_400.0 * 3.0 + 4.0 * 3600.0), "3d4h");
        assert_eq!(format_secs(86_400.0), "1d");
    }
}
