//! Prometheus text exposition (format 0.0.4) of the autoscaler's state, for a scraper such as
//! sql_exporter, postgres_exporter's custom queries or a tiny HTTP shim around
//! `SELECT autoscale.metrics()`.

use std::fmt::Write;

/// Gauge or counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// One metric family: a name, its help text, and its samples (labels, value).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    pub fn new(name: &'static str, kind: Kind, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample; a missing value (`None`) is left out, as Prometheus expects.
    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: Option<f64>) {
        if let Some(v) = value {
            self.samples.push((labels, v));
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// The text exposition of `families`: HELP and TYPE lines, then one line per sample. A family
/// without samples still says what it is.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help.replace('\n', " "));
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
        for (labels, v) in &f.samples {
            out.push_str(f.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, val)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(val));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", value(*v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_samples() {
        let mut f = Family::new("autoscale_node_cpu_busy_percent", Kind::Gauge, "CPU busy.");
        f.push(
            vec![("node", "10.0.0.1:5432".into()), ("role", "worker".into())],
            Some(42.5),
        );
        f.push(vec![("node", "10.0.0.2:5432".into())], None);
        let mut c = Family::new("autoscale_operations_total", Kind::Counter, "Operations.");
        c.push(vec![], Some(3.0));
        assert_eq!(
            render(&[f, c]),
            "# HELP autoscale_node_cpu_busy_percent CPU busy.\n\
             # TYPE autoscale_node_cpu_busy_percent gauge\n\
             autoscale_node_cpu_busy_percent{node=\"10.0.0.1:5432\",role=\"worker\"} 42.5\n\
             # HELP autoscale_operations_total Operations.\n\
             # TYPE autoscale_operations_total counter\n\
             autoscale_operations_total 3\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut f = Family::new("m", Kind::Gauge, "h");
        f.push(vec![("policy", "a\"b\\c\nd".into())], Some(1.0));
        assert!(
            render(&[f]).contains(r#"m{policy="a\"b\\c\nd"} 1"#),
            "escaped"
        );
    }

    #[test]
    fn special_values() {
        let mut f = Family::new("m", Kind::Gauge, "h");
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.25, 1e21] {
            f.push(vec![], Some(v));
        }
        let text = render(&[f]);
        let values: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(' ').nth(1).unwrap())
            .collect();
        assert_eq!(
            values,
            vec!["NaN", "+Inf", "-Inf", "-0.25", "1000000000000000000000"]
        );
    }
}
