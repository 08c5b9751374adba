//! Which workers a scale-in lets go, best first, and why: the workers autoscale added (they are in
//! its pool, state active) before the others; among them the one holding the least data (shard
//! bytes at its latest sample, then placements: an empty node leaves fastest), then the newest.
//! The coordinator is never a candidate (the caller passes workers only).

use std::cmp::Ordering;

use super::NodeAddr;

/// A worker that may leave, with what the ranking reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub node: NodeAddr,
    pub nodeid: i32,
    /// Added by autoscale (an active node of its pool).
    pub ours: bool,
    /// When autoscale added it (epoch seconds), if it did.
    pub joined_at: Option<f64>,
    pub placements: i64,
    /// Shard bytes at its latest reachable sample.
    pub bytes: Option<i64>,
}

fn none_last<T: PartialOrd>(a: &Option<T>, b: &Option<T>, rev: bool) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => {
            let o = x.partial_cmp(y).unwrap_or(Ordering::Equal);
            if rev {
                o.reverse()
            } else {
                o
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Why a candidate was chosen, for the operation's reason.
pub fn why(c: &Candidate) -> String {
    format!(
        "{} {}, holds {} placement{}{}",
        c.node,
        if c.ours {
            "was added by autoscale"
        } else {
            "is a worker autoscale did not add (no added one is left)"
        },
        c.placements,
        if c.placements == 1 { "" } else { "s" },
        match c.bytes {
            Some(b) => format!(" ({b} bytes of shards at the last sample)"),
            None => String::new(),
        }
    )
}

/// Up to `count` candidates, best first: ours first, then fewest shard bytes (unknown last),
/// fewest placements, latest joined (unknown last), highest nodeid.
pub fn rank(mut all: Vec<Candidate>, count: usize) -> Vec<Candidate> {
    all.sort_by(|a, b| {
        b.ours
            .cmp(&a.ours)
            .then_with(|| none_last(&a.bytes, &b.bytes, false))
            .then_with(|| a.placements.cmp(&b.placements))
            .then_with(|| none_last(&a.joined_at, &b.joined_at, true))
            .then_with(|| b.nodeid.cmp(&a.nodeid))
    });
    all.truncate(count);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(
        port: i32,
        ours: bool,
        bytes: Option<i64>,
        placements: i64,
        joined: Option<f64>,
    ) -> Candidate {
        Candidate {
            node: NodeAddr::new("10.0.0.1", port),
            nodeid: port - 9000,
            ours,
            joined_at: joined,
            placements,
            bytes,
        }
    }

    fn ports(v: &[Candidate]) -> Vec<i32> {
        v.iter().map(|c| c.node.port).collect()
    }

    #[test]
    fn ours_before_the_others_even_when_fuller() {
        let r = rank(
            vec![
                c(9001, false, Some(0), 0, None),
                c(9002, true, Some(500), 8, Some(1.0)),
            ],
            2,
        );
        assert_eq!(ports(&r), vec![9002, 9001]);
    }

    #[test]
    fn least_data_first_and_unknown_bytes_last() {
        let r = rank(
            vec![
                c(9001, true, None, 0, Some(1.0)),
                c(9002, true, Some(900), 4, Some(1.0)),
                c(9003, true, Some(10), 9, Some(1.0)),
            ],
            3,
        );
        assert_eq!(ports(&r), vec![9003, 9002, 9001]);
    }

    #[test]
    fn then_fewest_placements_then_newest_then_highest_nodeid() {
        let r = rank(
            vec![
                c(9001, true, Some(5), 2, Some(10.0)),
                c(9002, true, Some(5), 1, Some(5.0)),
                c(9003, true, Some(5), 1, Some(20.0)),
                c(9004, true, Some(5), 1, Some(20.0)),
                c(9005, true, Some(5), 1, None),
            ],
            5,
        );
        assert_eq!(ports(&r), vec![9004, 9003, 9002, 9005, 9001]);
    }

    #[test]
    fn count_limits_and_empty_stays_empty() {
        assert_eq!(
            rank(
                vec![c(9001, true, None, 0, None), c(9002, true, None, 0, None)],
                1
            )
            .len(),
            1
        );
        assert!(rank(vec![], 3).is_empty());
    }

    #[test]
    fn why_names_the_node_and_its_data() {
        assert_eq!(
            why(&c(9001, true, Some(42), 1, None)),
            "10.0.0.1:9001 was added by autoscale, holds 1 placement (42 bytes of shards at the last sample)"
        );
        assert_eq!(
            why(&c(9002, false, None, 3, None)),
            "10.0.0.1:9002 is a worker autoscale did not add (no added one is left), holds 3 placements"
        );
    }
}
