//! Circles in a directed graph: its strongly connected components of more than one node,
//! found with Tarjan's algorithm. Within such a component every node reaches every other,
//! so each is one circle to report, however many cycles run through it; a shortest of
//! those cycles shows where to cut it.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// Nodes that reach each other, directly or through one another.
#[derive(Debug, PartialEq)]
pub(super) struct Circle {
    /// Every node of the component, sorted.
    pub(super) members: Vec<usize>,
    /// A shortest cycle among them, in edge order, from its smallest possible start: each
    /// node has an edge to the next, and the last to the first.
    pub(super) cycle: Vec<usize>,
}

/// The circles among `edges`, sorted by their first member. A node's edge to itself is no
/// circle.
pub(super) fn circles(edges: impl IntoIterator<Item = (usize, usize)>) -> Vec<Circle> {
    let mut successors: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (from, to) in edges {
        successors.entry(from).or_default().push(to);
    }
    let mut search = Tarjan {
        successors: &successors,
        order: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for &node in successors.keys() {
        if !search.order.contains_key(&node) {
            search.visit(node);
        }
    }
    let mut found = search.found;
    found.sort();
    found
        .into_iter()
        .map(|members| Circle {
            cycle: shortest_cycle(&successors, &members),
            members,
        })
        .collect()
}

/// A shortest cycle within `members`, a strongly connected component: a breadth-first
/// search from each member for the way back to it, keeping the first shortest found.
fn shortest_cycle(successors: &BTreeMap<usize, Vec<usize>>, members: &[usize]) -> Vec<usize> {
    let mut shortest: Vec<usize> = Vec::new();
    for &start in members {
        // Each node reached, and the node it was reached from.
        let mut came_from: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        'search: while let Some(node) = queue.pop_front() {
            for &next in successors.get(&node).into_iter().flatten() {
                if next == start {
                    let mut cycle = vec![node];
                    while let Some(&previous) = cycle.last().and_then(|at| came_from.get(at)) {
                        cycle.push(previous);
                    }
                    cycle.reverse();
                    if shortest.is_empty() || cycle.len() < shortest.len() {
                        shortest = cycle;
                    }
                    break 'search;
                }
                if members.contains(&next) && next != start && !came_from.contains_key(&next) {
                    came_from.insert(next, node);
                    queue.push_back(next);
                }
            }
        }
    }
    shortest
}

/// One run of Tarjan's algorithm. It recurses once per node on a path, and a crate's
/// module graph is at most a few hundred nodes deep.
struct Tarjan<'g> {
    successors: &'g BTreeMap<usize, Vec<usize>>,
    /// The order in which each node was first reached.
    order: HashMap<usize, usize>,
    /// For each visited node, the earliest-reached node still on the stack that it reaches.
    low: HashMap<usize, usize>,
    /// The nodes reached whose component is not complete yet.
    stack: Vec<usize>,
    found: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, node: usize) {
        let order = self.order.len();
        self.order.insert(node, order);
        self.stack.push(node);
        let mut low = order;
        let successors = self.successors;
        for &next in successors.get(&node).into_iter().flatten() {
            let reach = match self.order.get(&next) {
                None => {
                    self.visit(next);
                    self.low[&next]
                }
                Some(&reached) if self.stack.contains(&next) => reached,
                // Already in a finished component, which cannot lead back here.
                Some(_) => continue,
            };
            low = low.min(reach);
        }
        self.low.insert(node, low);
        if low == order {
            let start = self
                .stack
                .iter()
                .rposition(|&member| member == node)
                .unwrap_or_default();
            let mut component = self.stack.split_off(start);
            if component.len() > 1 {
                component.sort_unstable();
                self.found.push(component);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Circle, circles};

    #[test]
    fn a_chain_has_no_circle() {
        assert!(circles([(1, 2), (2, 3), (1, 3), (4, 4)]).is_empty());
    }

    #[test]
    fn a_circle_of_three_is_one_component() {
        assert_eq!(
            circles([(3, 1), (1, 2), (2, 3), (3, 4)]),
            [Circle {
                members: vec![1, 2, 3],
                cycle: vec![1, 2, 3]
            }]
        );
    }

    #[test]
    fn separate_circles_are_reported_apart() {
        let edges = [(1, 2), (2, 1), (2, 5), (5, 6), (6, 7), (7, 5), (0, 1)];
        let members: Vec<Vec<usize>> = circles(edges)
            .into_iter()
            .map(|circle| circle.members)
            .collect();
        assert_eq!(members, [vec![1, 2], vec![5, 6, 7]]);
    }

    #[test]
    fn the_cycle_shown_is_a_shortest_one() {
        // 0 -> 1 -> 2 -> 3 -> 0 and 2 -> 4 -> 2: the second is shorter.
        let edges = [(0, 1), (1, 2), (2, 3), (3, 0), (2, 4), (4, 2)];
        let [circle] = circles(edges).try_into().expect("one circle");
        assert_eq!(circle.members, [0, 1, 2, 3, 4]);
        assert_eq!(circle.cycle, [2, 4]);
    }
}
