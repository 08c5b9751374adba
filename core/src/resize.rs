//! Vertical scaling advice: which node needs a bigger machine, which resource, and why.
//!
//! Adding workers spreads shard groups; it cannot help a node whose load sits in one shard group
//! (a hot tenant), a node short of memory, or a node whose working set does not fit its cache.
//! The decision matrix, per data node, over the samples of the last `window`:
//!
//! | resource | sustained condition | advice |
//! |---|---|---|
//! | `cpu` | busy above 70% **and** the load cannot be spread further: one shard group carries at least half of the node's load, or the cluster is at `max_workers` | more vCPUs: enough to bring it to 60% |
//! | `memory` | used above 85% | more RAM: enough to bring it to 70% |
//! | `shared_buffers` | cache hit ratio below 95% while the node reads | a larger shared_buffers (and the RAM for it): twice today's |
//!
//! *Sustained* means: at least [`MIN_SAMPLES`] samples in the window, and at least
//! [`SUSTAINED_SHARE`] of them beyond the line (a single spike advises nothing). The figure
//! advised is computed from the window's median.
//!
//! Advice is only advice: nothing here restarts a node.

use serde::Serialize;

use crate::node::NodeAddr;

/// CPU busy (%) above which a node that cannot spread its load should get more vCPUs.
pub const CPU_ABOVE: f64 = 70.0;
/// CPU busy (%) a resized node is sized for.
pub const CPU_SIZED_FOR: f64 = 60.0;
/// Memory used (%) above which a node should get more RAM.
pub const MEMORY_ABOVE: f64 = 85.0;
/// Memory used (%) a resized node is sized for.
pub const MEMORY_SIZED_FOR: f64 = 70.0;
/// Cache hit ratio (%) below which shared_buffers is too small for the working set.
pub const CACHE_HIT_BELOW: f64 = 95.0;
/// A node whose busiest shard group carries at least this share of its load cannot spread it.
pub const HOT_GROUP_SHARE: f64 = 0.5;
/// Fewest samples in the window for any advice.
pub const MIN_SAMPLES: usize = 3;
/// Share of the window's samples that must be beyond the line.
pub const SUSTAINED_SHARE: f64 = 0.8;

/// One data node's recent samples (oldest first; a missing reading is `None`) and its load shape.
#[derive(Debug, Clone, Default)]
pub struct NodeWindow {
    pub node: Option<NodeAddr>,
    pub cpu_busy_pct: Vec<Option<f64>>,
    pub mem_used_pct: Vec<Option<f64>>,
    /// Percent; `None` while the node read nothing in that interval.
    pub cache_hit_ratio: Vec<Option<f64>>,
    /// CPU cores of the node's machine at its last sample.
    pub cpu_cores: Option<f64>,
    /// The share (0..1) of the node's load carried by its busiest shard group, when known.
    pub hot_group_share: Option<f64>,
}

/// What is short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Cpu,
    Memory,
    SharedBuffers,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::SharedBuffers => "shared_buffers",
        }
    }
}

/// One piece of advice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub node: NodeAddr,
    pub resource: Resource,
    /// The window's median of the metric, percent.
    pub observed: f64,
    /// The line it is beyond.
    pub threshold: f64,
    /// By how much to grow the resource (1.5 = half as much again).
    pub factor: f64,
    /// With the cores known: the vCPUs advised.
    pub suggested_cores: Option<u32>,
    pub reason: String,
}

/// The median of the present values, and the share of present values beyond `line` (`above`:
/// greater than it, else less than it). `None` with fewer than [`MIN_SAMPLES`] values.
fn sustained(values: &[Option<f64>], line: f64, above: bool) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if v.len() < MIN_SAMPLES {
        return None;
    }
    let beyond = v
        .iter()
        .filter(|&&x| if above { x > line } else { x < line })
        .count();
    let n = v.len();
    let median = crate::forecast::median(&mut v)?;
    Some((median, beyond as f64 / n as f64))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The advice for one node. `at_max_workers`: the cluster cannot add a worker, so no load can be
/// spread further by scaling out. `window`: how the window is said in the reasons ("10 min").
pub fn advise(node: &NodeWindow, at_max_workers: bool, window: &str) -> Vec<Advice> {
    let Some(addr) = node.node.clone() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some((median, share)) = sustained(&node.cpu_busy_pct, CPU_ABOVE, true) {
        let hot = node.hot_group_share.filter(|s| *s >= HOT_GROUP_SHARE);
        if share >= SUSTAINED_SHARE && median > CPU_ABOVE && (hot.is_some() || at_max_workers) {
            let factor = round2((median / CPU_SIZED_FOR).max(1.0));
            let why = match hot {
                Some(s) => format!(
                    "its busiest shard group carries {:.0}% of its load: a scale-out would move the hot spot, not spread it",
                    s * 100.0
                ),
                None => "the cluster is at max_workers: no worker can be added to spread it".to_string(),
            };
            out.push(Advice {
                node: addr.clone(),
                resource: Resource::Cpu,
                observed: round2(median),
                threshold: CPU_ABOVE,
                factor,
                suggested_cores: node
                    .cpu_cores
                    .filter(|c| *c > 0.0)
                    .map(|c| (c * median / CPU_SIZED_FOR).ceil() as u32),
                reason: format!(
                    "CPU busy {:.0}% (median of {window}; {:.0}% of the samples above {CPU_ABOVE:.0}%) and {why}: \
                     more vCPUs, x{factor} for {CPU_SIZED_FOR:.0}%",
                    median,
                    share * 100.0
                ),
            });
        }
    }
    if let Some((median, share)) = sustained(&node.mem_used_pct, MEMORY_ABOVE, true) {
        if share >= SUSTAINED_SHARE && median > MEMORY_ABOVE {
            let factor = round2(median / MEMORY_SIZED_FOR);
            out.push(Advice {
                node: addr.clone(),
                resource: Resource::Memory,
                observed: round2(median),
                threshold: MEMORY_ABOVE,
                factor,
                suggested_cores: None,
                reason: format!(
                    "memory used {:.0}% (median of {window}; {:.0}% of the samples above {MEMORY_ABOVE:.0}%): \
                     more RAM, x{factor} for {MEMORY_SIZED_FOR:.0}%",
                    median,
                    share * 100.0
                ),
            });
        }
    }
    if let Some((median, share)) = sustained(&node.cache_hit_ratio, CACHE_HIT_BELOW, false) {
        if share >= SUSTAINED_SHARE && median < CACHE_HIT_BELOW {
            out.push(Advice {
                node: addr,
                resource: Resource::SharedBuffers,
                observed: round2(median),
                threshold: CACHE_HIT_BELOW,
                factor: 2.0,
                suggested_cores: None,
                reason: format!(
                    "cache hit ratio {:.1}% (median of {window}; {:.0}% of the samples below {CACHE_HIT_BELOW:.0}%): the \
                     working set does not fit shared_buffers; twice today's shared_buffers, and the RAM for it",
                    median,
                    share * 100.0
                ),
            });
        }
    }
    out
}

/// Most settings a resize may ask for.
pub const MAX_SIZE_SETTINGS: usize = 32;

/// The size a resize asks of the provisioner: a json object of PostgreSQL settings by name
/// (`{"shared_buffers": "2GB", "max_connections": 400}`), checked and returned as (name, value)
/// pairs in name order, the value as text. A name is a setting name (`[a-z_][a-z0-9_.]*`, at most
/// 63 bytes); a value is a string, a number or a boolean of at most 256 bytes with no quote,
/// backslash or control character, so that it can be written as `name = 'value'` in a
/// postgresql.conf. The error says what is allowed.
pub fn size_settings(size: &serde_json::Value) -> Result<Vec<(String, String)>, String> {
    const ALLOWED: &str = "a json object of at most 32 PostgreSQL settings, e.g. {\"shared_buffers\": \"2GB\"}: \
                           names [a-z_][a-z0-9_.]*, values strings, numbers or booleans without quotes, \
                           backslashes or control characters";
    let Some(obj) = size.as_object() else {
        return Err(ALLOWED.into());
    };
    if obj.len() > MAX_SIZE_SETTINGS {
        return Err(ALLOWED.into());
    }
    let mut out = Vec::with_capacity(obj.len());
    for (name, v) in obj {
        let name_ok = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
        let value = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => return Err(ALLOWED.into()),
        };
        let value_ok = value.len() <= 256
            && !value
                .chars()
                .any(|c| c == '\'' || c == '\\' || c.is_control());
        if !name_ok || !value_ok {
            return Err(ALLOWED.into());
        }
        out.push((name.clone(), value));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cpu: &[f64]) -> NodeWindow {
        NodeWindow {
            node: Some(NodeAddr::new("10.0.0.1", 5432)),
            cpu_busy_pct: cpu.iter().map(|&x| Some(x)).collect(),
            cpu_cores: Some(4.0),
            ..Default::default()
        }
    }

    #[test]
    fn a_hot_group_on_a_busy_node_asks_for_vcpus() {
        let mut n = node(&[88.0, 90.0, 92.0, 91.0, 89.0]);
        n.hot_group_share = Some(0.7);
        let a = advise(&n, false, "10 min");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].resource, Resource::Cpu);
        assert_eq!(a[0].observed, 90.0);
        assert_eq!(a[0].factor, 1.5);
        assert_eq!(a[0].suggested_cores, Some(6));
        assert!(
            a[0].reason.contains("busiest shard group carries 70%"),
            "{}",
            a[0].reason
        );
    }

    #[test]
    fn a_busy_node_whose_load_can_spread_gets_no_cpu_advice() {
        let mut n = node(&[88.0, 90.0, 92.0, 91.0, 89.0]);
        n.hot_group_share = Some(0.2);
        assert!(
            advise(&n, false, "10 min").is_empty(),
            "a scale-out spreads it"
        );
        let a = advise(&n, true, "10 min");
        assert_eq!(a.len(), 1, "at max_workers only a bigger machine helps");
        assert!(a[0].reason.contains("max_workers"));
    }

    #[test]
    fn a_spike_is_not_sustained() {
        let mut n = node(&[20.0, 95.0, 20.0, 22.0, 21.0]);
        n.hot_group_share = Some(0.9);
        assert!(advise(&n, true, "10 min").is_empty());
        // 3 of 4 above: 75% < 80%
        let mut n = node(&[90.0, 95.0, 20.0, 92.0]);
        n.hot_group_share = Some(0.9);
        assert!(advise(&n, true, "10 min").is_empty());
    }

    #[test]
    fn too_few_samples_advise_nothing() {
        let mut n = node(&[95.0, 96.0]);
        n.hot_group_share = Some(0.9);
        n.mem_used_pct = vec![Some(95.0), Some(96.0)];
        assert!(advise(&n, true, "10 min").is_empty());
    }

    #[test]
    fn memory_and_cache() {
        let mut n = node(&[10.0, 10.0, 10.0]);
        n.mem_used_pct = vec![Some(91.0), None, Some(91.0), Some(91.0)];
        n.cache_hit_ratio = vec![Some(80.0), Some(82.0), Some(81.0), None];
        let a = advise(&n, false, "10 min");
        let kinds: Vec<_> = a.iter().map(|x| x.resource).collect();
        assert_eq!(kinds, vec![Resource::Memory, Resource::SharedBuffers]);
        assert_eq!(a[0].factor, 1.3);
        assert_eq!(a[1].observed, 81.0);
        assert!(a[1].reason.contains("81.0%"), "{}", a[1].reason);
    }

    #[test]
    fn sizes_are_settings_by_name() {
        let v = serde_json::json!({"shared_buffers": "2GB", "max_connections": 400, "jit": false});
        assert_eq!(
            size_settings(&v).unwrap(),
            vec![
                ("jit".to_string(), "false".to_string()),
                ("max_connections".to_string(), "400".to_string()),
                ("shared_buffers".to_string(), "2GB".to_string()),
            ]
        );
        assert_eq!(size_settings(&serde_json::json!({})).unwrap(), vec![]);
        for bad in [
            serde_json::json!([1]),
            serde_json::json!("2GB"),
            serde_json::json!({"Shared_Buffers": "1GB"}),
            serde_json::json!({"a b": "1"}),
            serde_json::json!({"work_mem": "1MB'\nshared_preload_libraries = 'evil"}),
            serde_json::json!({"work_mem": "a\\b"}),
            serde_json::json!({"work_mem": {"x": 1}}),
            serde_json::json!({"work_mem": null}),
        ] {
            let e = size_settings(&bad).unwrap_err();
            assert!(e.contains("names [a-z_]"), "{bad}: {e}");
        }
        let many: serde_json::Map<String, serde_json::Value> = (0..33)
            .map(|i| (format!("s{i}"), serde_json::json!(1)))
            .collect();
        assert!(size_settings(&serde_json::Value::Object(many)).is_err());
    }

    #[test]
    fn healthy_nodes_and_unknown_nodes_get_nothing() {
        let mut n = node(&[50.0, 55.0, 60.0]);
        n.hot_group_share = Some(1.0);
        n.mem_used_pct = vec![Some(60.0); 5];
        n.cache_hit_ratio = vec![Some(99.0); 5];
        assert!(advise(&n, true, "10 min").is_empty());
        let mut anon = node(&[99.0; 5]);
        anon.node = None;
        anon.hot_group_share = Some(1.0);
        assert!(advise(&anon, true, "10 min").is_empty());
    }
}
