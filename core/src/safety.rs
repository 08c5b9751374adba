//! Checks of settings and arguments that keep the autoscaler safe: the webhook URL's shape, the
//! bound on free-text reasons, the failure backoff that holds every automatic operation, and
//! combinations of settings that would silently disable scaling.

use crate::duration::format_secs;

/// Longest `reason` (bytes) a manual operation takes; it travels in events, in the operation row
/// and in NOTIFY payloads (limited to 8000 bytes by PostgreSQL).
pub const MAX_REASON_BYTES: usize = 500;

/// Why `reason` is refused, if it is.
pub fn check_reason(reason: &str) -> Result<(), String> {
    if reason.len() > MAX_REASON_BYTES {
        return Err(format!(
            "a text of at most {MAX_REASON_BYTES} bytes (this one has {})",
            reason.len()
        ));
    }
    if reason
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("a text without control characters".to_string());
    }
    Ok(())
}

/// `s` cut to at most `max` bytes on a character boundary, with "..." when it was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Whether `url` is an http(s) URL with a host, as `autoscale.webhook_url` needs. The error never
/// repeats the URL (it may carry a token).
pub fn check_webhook_url(url: &str) -> Result<(), String> {
    let u = url.trim();
    if u.is_empty() {
        return Ok(());
    }
    let rest = if let Some(r) = u.strip_prefix("http://") {
        r
    } else if let Some(r) = u.strip_prefix("https://") {
        r
    } else {
        return Err("the URL must start with http:// or https://".to_string());
    };
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL must not contain blanks or control characters".to_string());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(h) = host_port.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err("the URL has no host".to_string());
    }
    if let Some(port) = host_port.rsplit_once("]:").map(|(_, p)| p).or_else(|| {
        (!host_port.starts_with('['))
            .then(|| host_port.split_once(':').map(|(_, p)| p))
            .flatten()
    }) {
        match port.parse::<u32>() {
            Ok(p) if (1..=65535).contains(&p) => {}
            _ => return Err("the URL's port must be a number between 1 and 65535".to_string()),
        }
    }
    Ok(())
}

/// Why no new automatic operation may start now: one failed or was cancelled less than
/// `backoff` seconds ago (`autoscale.failure_backoff`). None when starting is allowed.
pub fn failure_backoff(last_failure: Option<f64>, backoff: f64, now: f64) -> Option<String> {
    let failed = last_failure?;
    let ago = now - failed;
    (ago < backoff).then(|| {
        format!(
            "failure backoff: an operation failed {} ago; no new operation for {} (autoscale.failure_backoff)",
            format_secs(ago.max(0.0)),
            format_secs(backoff)
        )
    })
}

/// Settings that together would keep scaling from working. `retention`: seconds of history kept
/// (None: all); `longest_window`: the longest scale_out_for / scale_in_for of the policies, and
/// the policy it belongs to; `sample_interval` and `rate_lookback`: seconds.
pub fn setting_conflicts(
    retention: Option<f64>,
    longest_window: Option<(&str, f64)>,
    sample_interval: f64,
    rate_lookback: f64,
) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(r), Some((policy, w))) = (retention, longest_window) {
        if r < w + sample_interval {
            out.push(format!(
                "autoscale.history_retention ({}) is shorter than policy {policy}'s window ({}) plus one \
                 sample_interval: the policy never sees enough history to act",
                format_secs(r),
                format_secs(w)
            ));
        }
    }
    if sample_interval > rate_lookback {
        out.push(format!(
            "autoscale.sample_interval ({}) is longer than the rate look-back ({}): CPU and commit \
             rates would be NULL",
            format_secs(sample_interval),
            format_secs(rate_lookback)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded() {
        assert!(check_reason("manual").is_ok());
        assert!(check_reason(&"x".repeat(MAX_REASON_BYTES)).is_ok());
        let e = check_reason(&"x".repeat(8000)).unwrap_err();
        assert!(e.contains("500 bytes") && e.contains("8000"), "{e}");
        assert!(check_reason("a\u{0}b").is_err());
        assert_eq!(truncate("abcdef", 5), "ab...");
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 5), "é...");
    }

    #[test]
    fn webhook_urls() {
        for ok in [
            "",
            "http://127.0.0.1:8080/hook",
            "https://example.com",
            "https://u:secret@example.com/x?token=1",
            "http://[::1]:9000/p",
        ] {
            assert!(check_webhook_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "not a url",
            "ftp://example.com",
            "http://",
            "http:///path",
            "http://host:0/",
            "http://host:99999/",
            "http://host:abc/",
            "https://exa mple.com",
        ] {
            let e = check_webhook_url(bad).unwrap_err();
            assert!(!e.contains("exa"), "the error does not repeat the URL: {e}");
        }
    }

    #[test]
    fn backoff_holds_for_its_duration() {
        assert_eq!(failure_backoff(None, 600.0, 1000.0), None);
        let why = failure_backoff(Some(900.0), 600.0, 1000.0).unwrap();
        assert!(
            why.contains("failure backoff") && why.contains("autoscale.failure_backoff"),
            "{why}"
        );
        assert_eq!(failure_backoff(Some(300.0), 600.0, 1000.0), None);
        assert_eq!(failure_backoff(Some(900.0), 0.0, 1000.0), None);
    }

    #[test]
    fn conflicting_settings_are_named() {
        assert!(setting_conflicts(Some(86400.0), Some(("cpu", 900.0)), 5.0, 3600.0).is_empty());
        assert!(setting_conflicts(None, Some(("cpu", 900.0)), 5.0, 3600.0).is_empty());
        let w = setting_conflicts(Some(600.0), Some(("cpu", 900.0)), 5.0, 3600.0);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("history_retention") && w[0].contains("cpu"),
            "{w:?}"
        );
        let w = setting_conflicts(None, None, 7200.0, 3600.0);
        assert!(w[0].contains("sample_interval"), "{w:?}");
    }
}
