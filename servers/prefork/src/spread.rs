//! How evenly the pool's children shared the connections, for the line printed at exit.

use std::fmt;

/// Connections served per child, over every child the pool ever had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// Children forked over the whole run.
    pub children: usize,
    /// The most alive at once.
    pub peak: usize,
    /// Connections served, all children together.
    pub total: u64,
    /// The fewest, the median and the most connections one child served.
    pub min: u64,
    pub median: u64,
    pub max: u64,
}

impl Spread {
    /// The spread of `served`, one count per child, and the pool's `peak` size.
    pub fn of(served: &[u64], peak: usize) -> Spread {
        let mut sorted = served.to_vec();
        sorted.sort_unstable();
        let at = |i: usize| sorted.get(i).copied().unwrap_or(0);
        Spread {
            children: sorted.len(),
            peak,
            total: sorted.iter().sum(),
            min: at(0),
            median: at(sorted.len() / 2),
            max: at(sorted.len().saturating_sub(1)),
        }
    }
}

impl fmt::Display for Spread {
    /// `connections per child: min 0, median 3, max 17 (41 connections, 12 children, at most
    /// 9 at once)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections per child: min {}, median {}, max {} ({} connections, {} children, \
             at most {} at once)",
            self.min, self.median, self.max, self.total, self.children, self.peak
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_names_the_extremes_and_the_middle() {
        let spread = Spread::of(&[5, 0, 9, 2, 3], 4);
        assert_eq!((spread.min, spread.median, spread.max), (0, 3, 9));
        assert_eq!((spread.total, spread.children, spread.peak), (19, 5, 4));
        assert_eq!(
            spread.to_string(),
            "connections per child: min 0, median 3, max 9 (19 connections, 5 children, at \
             most 4 at once)"
        );
    }

    #[test]
    fn no_children_is_all_zeros() {
        let spread = Spread::of(&[], 0);
        assert_eq!((spread.min, spread.median, spread.max, spread.total), (0, 0, 0, 0));
    }
}
