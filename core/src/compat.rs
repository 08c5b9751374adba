//! Which PostgreSQL / Citus pairs this release supports, and what it says on the others.
//!
//! One table, [`PAIRS`], is the whole story: the README's "Supported versions" table, the warning
//! at `CREATE EXTENSION`, the background worker's log line, `explain()`'s `versions` row and the
//! act guard all read it through [`assess`].

use std::fmt;

/// How well a pair is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Built and run through the whole test suite on real clusters.
    Tested,
    /// The extension builds for it and Citus supports the pair, but no test ran on it here.
    Built,
    /// Not supported: autoscale samples and decides but starts no operation.
    Unsupported,
}

impl Support {
    pub fn as_str(self) -> &'static str {
        match self {
            Support::Tested => "tested",
            Support::Built => "built, not tested",
            Support::Unsupported => "not supported",
        }
    }
}

/// A Citus release line (major, minor) and the PostgreSQL majors it runs on, with this release's
/// support for each.
pub struct CitusLine {
    pub citus: (u32, u32),
    pub postgres: &'static [(u32, Support)],
}

/// Citus 13.2 supports PostgreSQL 15-17; Citus 14.0 dropped 15 and supports 16-18.
pub const PAIRS: &[CitusLine] = &[
    CitusLine {
        citus: (13, 2),
        postgres: &[
            (15, Support::Tested),
            (16, Support::Built),
            (17, Support::Built),
        ],
    },
    CitusLine {
        citus: (14, 0),
        postgres: &[
            (16, Support::Built),
            (17, Support::Built),
            (18, Support::Tested),
        ],
    },
];

/// The PostgreSQL majors the extension builds for.
pub const POSTGRES_MAJORS: &[u32] = &[15, 16, 17, 18];

/// A Citus version as PostgreSQL reports it (`pg_extension.extversion`, such as `13.2-1`, or
/// `citus_version()`'s `Citus 14.0.1 on ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CitusVersion {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for CitusVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Parses `13.2-1`, `14.0-1`, `13.2.2`, `Citus 14.0.1 on x86_64-...`. None for anything else.
pub fn parse_citus_version(text: &str) -> Option<CitusVersion> {
    let t = text.trim();
    let t = t.strip_prefix("Citus ").unwrap_or(t);
    let head: &str = t.split(|c: char| c.is_whitespace() || c == '-').next()?;
    let mut parts = head.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(CitusVersion { major, minor })
}

/// The verdict on one pair, with the sentence the user reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub support: Support,
    pub note: String,
}

impl Assessment {
    /// Whether autoscale may start operations on this pair.
    pub fn may_act(&self) -> bool {
        self.support != Support::Unsupported
    }
}

fn tested_pairs() -> String {
    let mut v = Vec::new();
    for line in PAIRS {
        for (pg, s) in line.postgres {
            if *s == Support::Tested {
                v.push(format!(
                    "PostgreSQL {pg} with Citus {}.{}",
                    line.citus.0, line.citus.1
                ));
            }
        }
    }
    v.join(", ")
}

/// Judges PostgreSQL major `pg` with Citus `citus` (None: Citus is not installed, which is the
/// brain on plain PostgreSQL: supported for observing).
pub fn assess(pg: u32, citus: Option<CitusVersion>) -> Assessment {
    let Some(c) = citus else {
        let support = if POSTGRES_MAJORS.contains(&pg) {
            Support::Tested
        } else {
            Support::Unsupported
        };
        let note = if support == Support::Unsupported {
            format!(
                "PostgreSQL {pg} is not supported (this release builds for PostgreSQL 15 to 18)"
            )
        } else {
            format!("PostgreSQL {pg} without Citus: sampling and decisions only")
        };
        return Assessment { support, note };
    };
    if let Some(line) = PAIRS.iter().find(|l| l.citus == (c.major, c.minor)) {
        if let Some((_, s)) = line.postgres.iter().find(|(p, _)| *p == pg) {
            let note = match s {
                Support::Tested => format!("PostgreSQL {pg} with Citus {c}: tested"),
                _ => format!(
                    "PostgreSQL {pg} with Citus {c}: supported by Citus and built, but not tested by this release \
                     (tested: {})",
                    tested_pairs()
                ),
            };
            return Assessment { support: *s, note };
        }
        // Citus itself refuses such a pair; say so rather than guess
        let pgs: Vec<String> = line.postgres.iter().map(|(p, _)| p.to_string()).collect();
        return Assessment {
            support: Support::Unsupported,
            note: format!(
                "Citus {c} does not run on PostgreSQL {pg} (it supports PostgreSQL {}); autoscale starts no operation",
                pgs.join(", ")
            ),
        };
    }
    let newest = PAIRS.iter().map(|l| l.citus).max().unwrap_or((0, 0));
    let oldest = PAIRS.iter().map(|l| l.citus).min().unwrap_or((0, 0));
    if (c.major, c.minor) < oldest {
        return Assessment {
            support: Support::Unsupported,
            note: format!(
                "Citus {c} is older than this release supports (Citus {}.{} or later; tested: {}); autoscale samples and \
                 decides but starts no operation",
                oldest.0,
                oldest.1,
                tested_pairs()
            ),
        };
    }
    if c.major == newest.0 {
        // a newer minor of a supported major: same catalog and functions, not tested
        return Assessment {
            support: Support::Built,
            note: format!(
                "Citus {c} is a newer minor release than this release was tested with (tested: {})",
                tested_pairs()
            ),
        };
    }
    if c.major > newest.0 {
        return Assessment {
            support: Support::Unsupported,
            note: format!(
                "Citus {c} is a newer major release than this release supports (up to Citus {}.x; tested: {}); autoscale \
                 samples and decides but starts no operation",
                newest.0,
                tested_pairs()
            ),
        };
    }
    // a minor release between two lines (13.0, 13.1): older than the tested line of its major
    Assessment {
        support: Support::Unsupported,
        note: format!(
            "Citus {c} is not supported (supported: Citus 13.2 on PostgreSQL 15-17, Citus 14.0 on PostgreSQL 16-18; \
             tested: {}); autoscale samples and decides but starts no operation",
            tested_pairs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<CitusVersion> {
        parse_citus_version(s)
    }

    #[test]
    fn parses_the_forms_postgres_reports() {
        assert_eq!(
            v("13.2-1"),
            Some(CitusVersion {
                major: 13,
                minor: 2
            })
        );
        assert_eq!(
            v("14.0-1"),
            Some(CitusVersion {
                major: 14,
                minor: 0
            })
        );
        assert_eq!(
            v("13.2.2"),
            Some(CitusVersion {
                major: 13,
                minor: 2
            })
        );
        assert_eq!(
            v("Citus 14.0.1 on x86_64-pc-linux-gnu, compiled by gcc"),
            Some(CitusVersion {
                major: 14,
                minor: 0
            })
        );
        assert_eq!(v(""), None);
        assert_eq!(v("fourteen"), None);
        assert_eq!(v("14"), None);
    }

    #[test]
    fn the_two_tested_pairs_are_tested() {
        assert_eq!(assess(15, v("13.2-1")).support, Support::Tested);
        assert_eq!(assess(18, v("14.0-1")).support, Support::Tested);
        assert!(assess(18, v("14.0-1")).may_act());
    }

    #[test]
    fn pairs_citus_supports_but_nobody_tested_are_built() {
        for (pg, c) in [
            (16, "13.2-1"),
            (17, "13.2-1"),
            (16, "14.0-1"),
            (17, "14.0-1"),
        ] {
            let a = assess(pg, v(c));
            assert_eq!(a.support, Support::Built, "{pg} {c}");
            assert!(a.note.contains("not tested"), "{}", a.note);
            assert!(a.may_act());
        }
        let a = assess(18, v("14.1-1"));
        assert_eq!(a.support, Support::Built);
        assert!(a.note.contains("newer minor"), "{}", a.note);
    }

    #[test]
    fn unsupported_pairs_say_why_and_do_not_act() {
        let a = assess(18, v("13.2-1"));
        assert_eq!(a.support, Support::Unsupported);
        assert!(
            a.note.contains("does not run on PostgreSQL 18"),
            "{}",
            a.note
        );
        assert!(!a.may_act());
        let a = assess(15, v("14.0-1"));
        assert!(
            a.note.contains("supports PostgreSQL 16, 17, 18"),
            "{}",
            a.note
        );
        let a = assess(15, v("12.1-1"));
        assert_eq!(a.support, Support::Unsupported);
        assert!(
            a.note.contains("older than this release supports"),
            "{}",
            a.note
        );
        let a = assess(15, v("13.1-1"));
        assert_eq!(a.support, Support::Unsupported);
        let a = assess(19, v("15.0-1"));
        assert!(a.note.contains("newer major"), "{}", a.note);
        assert!(
            a.note
                .contains("tested: PostgreSQL 15 with Citus 13.2, PostgreSQL 18 with Citus 14.0"),
            "{}",
            a.note
        );
    }

    #[test]
    fn without_citus_the_brain_runs_on_any_built_major() {
        assert!(assess(15, None).may_act());
        assert!(assess(18, None).note.contains("without Citus"));
        assert_eq!(assess(14, None).support, Support::Unsupported);
    }
}
