//! The compact node history: one `bytea` per sample holding every node's reading, in
//! `autoscale.node_history.nodes`.
//!
//! A row per node per sample took 325 bytes (a 24-byte tuple header, 30 columns of which 10 were
//! cumulative counters only the next sample reads, and two indexes naming the node). Here a node's
//! reading is:
//!
//! - its key in `autoscale.history_nodes` (host, port, node id, role), a varint;
//! - a presence bitmap, a varint (bit 0: reachable, bit 1: data node known, bit 2: data node, then
//!   one bit per field below that is present);
//! - each present field as a zigzag varint of the value times the field's scale, rounded: percentages
//!   and rates to 0.01, the mean statement time to 1 us, byte counts and counts exactly;
//! - the error text, when there is one, as a varint length and UTF-8.
//!
//! A sample starts with a format byte ([`FORMAT`]) and the number of readings. Decoding gives back
//! every value to its scale's precision; a value that is not finite is stored as absent (NULL).
//! Nothing here knows PostgreSQL.

use thiserror::Error;

/// The first byte of every encoded sample.
pub const FORMAT: u8 = 1;

/// What was wrong with an encoded sample.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum HistoryError {
    #[error("node history: empty value")]
    Empty,
    #[error("node history: format {0} is not known (this library reads format {FORMAT})")]
    UnknownFormat(u8),
    #[error("node history: the value ends inside reading {0}")]
    Truncated(usize),
    #[error("node history: reading {0} has an error text that is not UTF-8")]
    BadText(usize),
    #[error("node history: {0} bytes after the last reading")]
    Trailing(usize),
}

/// How a field is stored: its value times `scale`, rounded, as a zigzag varint.
#[derive(Debug, Clone, Copy)]
struct Field {
    scale: f64,
}

/// The fields in their bit order (bit 3 + index); [`NodeReading::values`] follows this order.
pub const FIELDS: [&str; 21] = [
    "cpu_busy_pct",
    "load1",
    "load5",
    "load15",
    "mem_used_pct",
    "disk_used_pct",
    "disk_free_bytes",
    "connections",
    "active_connections",
    "commits_per_sec",
    "rollbacks_per_sec",
    "database_size",
    "shard_count",
    "shard_bytes",
    "cpu_cores",
    "shard_load",
    "cache_hit_ratio",
    "replication_lag",
    "tps",
    "connection_saturation",
    "mean_statement_ms",
];

const SCALES: [Field; 21] = {
    const C: Field = Field { scale: 100.0 }; // 0.01
    const X: Field = Field { scale: 1.0 }; // exact counts and bytes
    const U: Field = Field { scale: 1000.0 }; // 1 us of a millisecond
    [
        C, C, C, C, C, C, X, X, X, C, C, X, X, X, C, C, C, X, C, C, U,
    ]
};

const FIRST_FIELD_BIT: u32 = 3;
const ERROR_BIT: u32 = FIRST_FIELD_BIT + FIELDS.len() as u32;

/// One node's reading at one sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeReading {
    /// The node's key in `autoscale.history_nodes`.
    pub key: u32,
    pub reachable: bool,
    pub data_node: Option<bool>,
    pub error: Option<String>,
    /// In [`FIELDS`] order.
    pub values: [Option<f64>; FIELDS.len()],
}

impl NodeReading {
    /// The value of field `name` (one of [`FIELDS`]).
    pub fn get(&self, name: &str) -> Option<f64> {
        FIELDS
            .iter()
            .position(|f| *f == name)
            .and_then(|i| self.values[i])
    }

    /// Sets field `name` (one of [`FIELDS`]); an unknown name is a programming error.
    pub fn set(&mut self, name: &str, value: Option<f64>) {
        let i = FIELDS
            .iter()
            .position(|f| *f == name)
            .unwrap_or_else(|| panic!("no node history field {name}"));
        self.values[i] = value;
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        if shift >= 64 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The stored integer of `value` at `field`'s scale; None when it is not finite or out of range.
fn scaled(value: f64, field: Field) -> Option<i64> {
    let v = (value * field.scale).round();
    (v.is_finite() && v.abs() < 9.0e18).then_some(v as i64)
}

/// Encodes one sample's readings.
pub fn encode(readings: &[NodeReading]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + readings.len() * 48);
    out.push(FORMAT);
    put_varint(&mut out, readings.len() as u64);
    for r in readings {
        put_varint(&mut out, u64::from(r.key));
        let ints: Vec<Option<i64>> = r
            .values
            .iter()
            .zip(SCALES)
            .map(|(v, f)| v.and_then(|v| scaled(v, f)))
            .collect();
        let mut bits: u64 = u64::from(r.reachable);
        if let Some(d) = r.data_node {
            bits |= 0b10 | (u64::from(d) << 2);
        }
        for (i, v) in ints.iter().enumerate() {
            if v.is_some() {
                bits |= 1 << (FIRST_FIELD_BIT + i as u32);
            }
        }
        if r.error.is_some() {
            bits |= 1 << ERROR_BIT;
        }
        put_varint(&mut out, bits);
        for v in ints.into_iter().flatten() {
            put_varint(&mut out, zigzag(v));
        }
        if let Some(e) = &r.error {
            put_varint(&mut out, e.len() as u64);
            out.extend_from_slice(e.as_bytes());
        }
    }
    out
}

/// Decodes one sample's readings.
pub fn decode(bytes: &[u8]) -> Result<Vec<NodeReading>, HistoryError> {
    let (&format, _) = bytes.split_first().ok_or(HistoryError::Empty)?;
    if format != FORMAT {
        return Err(HistoryError::UnknownFormat(format));
    }
    let mut pos = 1;
    let n = get_varint(bytes, &mut pos).ok_or(HistoryError::Truncated(0))? as usize;
    let mut out = Vec::with_capacity(n.min(bytes.len()));
    for i in 0..n {
        let trunc = HistoryError::Truncated(i);
        let key = get_varint(bytes, &mut pos).ok_or_else(|| trunc.clone())?;
        let bits = get_varint(bytes, &mut pos).ok_or_else(|| trunc.clone())?;
        let mut r = NodeReading {
            key: key as u32,
            reachable: bits & 1 != 0,
            data_node: (bits & 0b10 != 0).then_some(bits & 0b100 != 0),
            ..NodeReading::default()
        };
        for (k, field) in SCALES.iter().enumerate() {
            if bits & (1 << (FIRST_FIELD_BIT + k as u32)) != 0 {
                let v = unzigzag(get_varint(bytes, &mut pos).ok_or_else(|| trunc.clone())?);
                r.values[k] = Some(v as f64 / field.scale);
            }
        }
        if bits & (1 << ERROR_BIT) != 0 {
            let len = get_varint(bytes, &mut pos).ok_or_else(|| trunc.clone())? as usize;
            let end = pos
                .checked_add(len)
                .filter(|e| *e <= bytes.len())
                .ok_or(trunc)?;
            r.error = Some(
                std::str::from_utf8(&bytes[pos..end])
                    .map_err(|_| HistoryError::BadText(i))?
                    .to_string(),
            );
            pos = end;
        }
        out.push(r);
    }
    if pos != bytes.len() {
        return Err(HistoryError::Trailing(bytes.len() - pos));
    }
    Ok(out)
}

/// `existing` (an encoded sample, or None) with `readings` added; a reading for a key already
/// there replaces it.
pub fn merge(existing: Option<&[u8]>, readings: &[NodeReading]) -> Result<Vec<u8>, HistoryError> {
    let mut all = match existing {
        Some(b) => decode(b)?,
        None => Vec::new(),
    };
    for r in readings {
        match all.iter_mut().find(|a| a.key == r.key) {
            Some(a) => *a = r.clone(),
            None => all.push(r.clone()),
        }
    }
    Ok(encode(&all))
}

/// `existing` without the readings of `keys`; None when no reading is left.
pub fn remove(existing: &[u8], keys: &[u32]) -> Result<Option<Vec<u8>>, HistoryError> {
    let left: Vec<NodeReading> = decode(existing)?
        .into_iter()
        .filter(|r| !keys.contains(&r.key))
        .collect();
    Ok((!left.is_empty()).then(|| encode(&left)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn busy_worker(key: u32) -> NodeReading {
        let mut r = NodeReading {
            key,
            reachable: true,
            data_node: Some(true),
            ..NodeReading::default()
        };
        for (name, v) in [
            ("cpu_busy_pct", 73.41),
            ("load1", 1.87),
            ("load5", 1.52),
            ("load15", 1.2),
            ("mem_used_pct", 61.07),
            ("disk_used_pct", 42.5),
            ("disk_free_bytes", 85_899_345_920.0),
            ("connections", 41.0),
            ("active_connections", 7.0),
            ("commits_per_sec", 1834.25),
            ("rollbacks_per_sec", 0.2),
            ("database_size", 9_663_676_416.0),
            ("shard_count", 96.0),
            ("shard_bytes", 9_123_456_789.0),
            ("cpu_cores", 4.0),
            ("shard_load", 2210.57),
            ("cache_hit_ratio", 99.12),
            ("tps", 1834.45),
            ("connection_saturation", 20.5),
            ("mean_statement_ms", 0.412),
        ] {
            r.set(name, Some(v));
        }
        r
    }

    #[test]
    fn a_sample_decodes_to_what_was_encoded() {
        let mut down = NodeReading {
            key: 300,
            reachable: false,
            error: Some("timeout after 2000 ms: é".into()),
            ..NodeReading::default()
        };
        down.set("shard_count", Some(12.0));
        let sample = vec![busy_worker(1), busy_worker(2), down];
        let bytes = encode(&sample);
        assert_eq!(decode(&bytes).unwrap(), sample);
    }

    #[test]
    fn a_busy_node_takes_under_60_bytes() {
        // the history goal: 40 MB a day at 32 workers is about 56 bytes per node-sample
        let sample: Vec<_> = (0..33).map(busy_worker).collect();
        let per_node = encode(&sample).len() as f64 / 33.0;
        assert!(per_node < 60.0, "{per_node} bytes per node-sample");
        assert!(per_node > 30.0, "{per_node}: the fixture lost its fields");
    }

    #[test]
    fn values_keep_their_scale_and_non_finite_values_are_absent() {
        let mut r = busy_worker(5);
        r.set("cpu_busy_pct", Some(12.3456));
        r.set("mean_statement_ms", Some(0.0004));
        r.set("load1", Some(f64::NAN));
        r.set("commits_per_sec", Some(f64::INFINITY));
        r.set("replication_lag", Some(-3.0));
        let back = &decode(&encode(&[r])).unwrap()[0];
        assert_eq!(back.get("cpu_busy_pct"), Some(12.35));
        assert_eq!(back.get("mean_statement_ms"), Some(0.0));
        assert_eq!(back.get("load1"), None);
        assert_eq!(back.get("commits_per_sec"), None);
        assert_eq!(back.get("replication_lag"), Some(-3.0));
        assert_eq!(back.get("shard_bytes"), Some(9_123_456_789.0));
    }

    #[test]
    fn merge_adds_and_replaces_by_key() {
        let first = encode(&[busy_worker(1)]);
        let mut again = busy_worker(1);
        again.set("cpu_busy_pct", Some(5.0));
        let merged = merge(Some(&first), &[busy_worker(2), again]).unwrap();
        let back = decode(&merged).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].get("cpu_busy_pct"), Some(5.0));
        assert_eq!(back[1].key, 2);
        assert_eq!(decode(&merge(None, &[]).unwrap()).unwrap(), vec![]);
    }

    #[test]
    fn remove_drops_the_readings_of_the_keys() {
        let both = encode(&[busy_worker(1), busy_worker(2)]);
        let one = remove(&both, &[1, 7]).unwrap().unwrap();
        assert_eq!(decode(&one).unwrap(), vec![busy_worker(2)]);
        assert_eq!(remove(&one, &[2]).unwrap(), None);
        assert_eq!(remove(&both, &[]).unwrap().unwrap(), both);
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let bytes = encode(&[busy_worker(1), busy_worker(2)]);
        assert_eq!(decode(&[]), Err(HistoryError::Empty));
        assert_eq!(decode(&[9, 0]), Err(HistoryError::UnknownFormat(9)));
        assert_eq!(
            decode(&bytes[..bytes.len() - 3]),
            Err(HistoryError::Truncated(1))
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(HistoryError::Trailing(1)));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn values_round_trip_to_their_scale(
            v in proptest::collection::vec(proptest::option::of(-1.0e9f64..1.0e12), FIELDS.len()),
            reachable in any::<bool>(),
            data_node in proptest::option::of(any::<bool>()),
            key in 0u32..100_000,
        ) {
            let mut r = NodeReading { key, reachable, data_node, ..NodeReading::default() };
            for (i, x) in v.iter().enumerate() {
                r.values[i] = *x;
            }
            let back = decode(&encode(std::slice::from_ref(&r))).unwrap().remove(0);
            prop_assert_eq!(back.key, key);
            prop_assert_eq!(back.reachable, reachable);
            prop_assert_eq!(back.data_node, data_node);
            for (i, x) in v.iter().enumerate() {
                match (x, back.values[i]) {
                    (None, None) => {}
                    (Some(a), Some(b)) => prop_assert!((a - b).abs() <= 0.5 / SCALES[i].scale + 1e-9 * a.abs(),
                                                       "{} {} -> {}", FIELDS[i], a, b),
                    (a, b) => prop_assert!(false, "{}: {:?} -> {:?}", FIELDS[i], a, b),
                }
            }
        }
    }
}
