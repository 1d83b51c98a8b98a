//! The kernel's list format for CPUs and memory nodes ("0-3,7"), as `execCPUAffinity` and
//! `memoryPolicy.nodes` use it.

use anyhow::{bail, Result};

/// Parses `s` into sorted, deduplicated ids, each below `limit`. The error says what is wrong,
/// without the field name: callers add it.
pub fn parse(s: &str, limit: u32) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            bail!("{s:?}: empty element (expected a list like \"0-3,7\")");
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (number(s, a)?, number(s, b)?),
            None => {
                let n = number(s, part)?;
                (n, n)
            }
        };
        if lo > hi {
            bail!("{s:?}: range {part:?} runs backwards");
        }
        if hi >= limit {
            bail!("{s:?}: {hi} is out of range (at most {})", limit - 1);
        }
        ids.extend(lo..=hi);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

fn number(whole: &str, s: &str) -> Result<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{whole:?}: {s:?} is not a number (expected a list like \"0-3,7\")");
    }
    s.parse()
        .map_err(|_| anyhow::anyhow!("{whole:?}: {s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_singles() {
        assert_eq!(parse("0-3,7", 64).unwrap(), [0, 1, 2, 3, 7]);
        assert_eq!(parse("5,1,1-2", 64).unwrap(), [1, 2, 5]);
        assert_eq!(parse(" 2 ", 64).unwrap(), [2]);
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in ["", ",", "1,", "a", "3-1", "1-", "-1", "1-2-3", "64", "0x1"] {
            assert!(parse(bad, 64).is_err(), "{bad:?} accepted");
        }
    }
}
