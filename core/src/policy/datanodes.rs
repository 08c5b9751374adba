//! Whose load a policy reads: the data nodes. A data node holds shards of distributed tables or
//! should (`shouldhaveshards`), the coordinator included: on a single-node Citus the coordinator
//! is the only one, and with `autoscale.coordinator_shards = 'keep'` it stays one next to the
//! workers. Reference tables and citus local tables do not make a node a data node (every node
//! has the former, the coordinator the latter).

use super::{aggregate, Aggregate};

/// One node's row of a sample, as far as choosing whose load counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeRole {
    pub is_coordinator: bool,
    /// Recorded by the sampler; `None` in rows written before data nodes were recorded (or
    /// without Citus).
    pub data_node: Option<bool>,
    pub reachable: bool,
}

/// Is a node a data node? It should have shards, or still holds placements of distributed
/// (hash, range or append) tables.
pub fn is_data_node(should_have_shards: bool, distributed_placements: i64) -> bool {
    should_have_shards || distributed_placements > 0
}

/// For each node of one sample, whether its load counts: the data nodes when the sample knows
/// any; else the workers; else the coordinator (plain PostgreSQL, or a cluster where no node
/// holds shards yet), so there is always something to read.
pub fn counted(nodes: &[NodeRole]) -> Vec<bool> {
    if nodes.iter().any(|n| n.data_node == Some(true)) {
        return nodes.iter().map(|n| n.data_node == Some(true)).collect();
    }
    if nodes.iter().any(|n| !n.is_coordinator) {
        return nodes.iter().map(|n| !n.is_coordinator).collect();
    }
    nodes.iter().map(|n| n.is_coordinator).collect()
}

/// How many nodes of the sample count (reachable or not).
pub fn data_node_count(nodes: &[NodeRole]) -> u32 {
    counted(nodes).iter().filter(|c| **c).count() as u32
}

/// The policy's value at one sample: `values[i]` of node `i` aggregated over the reachable nodes
/// that count. `None` when none of them has a value.
pub fn aggregate_sample(nodes: &[NodeRole], values: &[Option<f64>], agg: Aggregate) -> Option<f64> {
    let picked: Vec<f64> = counted(nodes)
        .into_iter()
        .zip(nodes)
        .zip(values)
        .filter(|((c, n), _)| *c && n.reachable)
        .filter_map(|(_, v)| *v)
        .collect();
    aggregate(&picked, agg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(is_coordinator: bool, data_node: Option<bool>) -> NodeRole {
        NodeRole {
            is_coordinator,
            data_node,
            reachable: true,
        }
    }

    #[test]
    fn data_nodes_are_the_nodes_that_hold_or_should_hold_shards() {
        assert!(is_data_node(true, 0));
        assert!(is_data_node(false, 3), "a node still draining holds shards");
        assert!(!is_data_node(false, 0));
    }

    #[test]
    fn a_single_node_reads_the_coordinator() {
        let nodes = [role(true, Some(true))];
        assert_eq!(
            aggregate_sample(&nodes, &[Some(93.0)], Aggregate::Avg),
            Some(93.0)
        );
        assert_eq!(data_node_count(&nodes), 1);
    }

    #[test]
    fn a_coordinator_that_keeps_its_shards_counts_with_the_workers() {
        let nodes = [
            role(true, Some(true)),
            role(false, Some(true)),
            role(false, Some(true)),
        ];
        let v = [Some(90.0), Some(30.0), Some(30.0)];
        assert_eq!(aggregate_sample(&nodes, &v, Aggregate::Avg), Some(50.0));
        assert_eq!(aggregate_sample(&nodes, &v, Aggregate::Max), Some(90.0));
        assert_eq!(data_node_count(&nodes), 3);
    }

    #[test]
    fn a_coordinator_without_shards_does_not_count() {
        // the usual multi-node cluster, and a coordinator that shed its shards
        let nodes = [
            role(true, Some(false)),
            role(false, Some(true)),
            role(false, Some(true)),
        ];
        let v = [Some(99.0), Some(20.0), Some(40.0)];
        assert_eq!(aggregate_sample(&nodes, &v, Aggregate::Avg), Some(30.0));
        assert_eq!(aggregate_sample(&nodes, &v, Aggregate::Max), Some(40.0));
        assert_eq!(data_node_count(&nodes), 2);
    }

    #[test]
    fn a_worker_that_holds_no_shards_does_not_count() {
        // a new worker before the rebalance, or one drained for a scale-in
        let nodes = [role(true, Some(true)), role(false, Some(false))];
        assert_eq!(
            aggregate_sample(&nodes, &[Some(80.0), Some(2.0)], Aggregate::Avg),
            Some(80.0)
        );
        assert_eq!(data_node_count(&nodes), 1);
    }

    #[test]
    fn unreachable_data_nodes_count_as_nodes_but_give_no_value() {
        let mut nodes = [role(true, Some(true)), role(false, Some(true))];
        nodes[1].reachable = false;
        assert_eq!(
            aggregate_sample(&nodes, &[Some(70.0), Some(10.0)], Aggregate::Avg),
            Some(70.0)
        );
        assert_eq!(data_node_count(&nodes), 2);
        nodes[0].reachable = false;
        assert_eq!(
            aggregate_sample(&nodes, &[Some(70.0), Some(10.0)], Aggregate::Avg),
            None
        );
    }

    #[test]
    fn rows_without_data_node_fall_back_to_workers_then_the_coordinator() {
        // rows recorded before data nodes were: the workers, as before
        let nodes = [role(true, None), role(false, None), role(false, None)];
        let v = [Some(99.0), Some(10.0), Some(20.0)];
        assert_eq!(aggregate_sample(&nodes, &v, Aggregate::Avg), Some(15.0));
        // plain PostgreSQL, or Citus with no node holding shards: the coordinator stands in
        assert_eq!(
            aggregate_sample(&[role(true, None)], &[Some(42.0)], Aggregate::Max),
            Some(42.0)
        );
        assert_eq!(
            aggregate_sample(&[role(true, Some(false))], &[Some(42.0)], Aggregate::Max),
            Some(42.0)
        );
        assert_eq!(data_node_count(&[role(true, None)]), 1);
    }
}
