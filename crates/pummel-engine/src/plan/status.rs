//! Which response statuses count as success (`--ok-status`, `ok_status` in plans).

use serde::Serialize;

/// A set of HTTP status codes (e.g. `200-399,404`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
}

impl Default for StatusSet {
    /// 100–399: what `--ok-status` means when it is not given.
    fn default() -> Self {
        StatusSet { ranges: vec![(100, 399)] }
    }
}

impl StatusSet {
    /// True when `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

impl std::str::FromStr for StatusSet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse_code = |part: &str| -> Result<u16, String> {
            part.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=999).contains(c))
                .ok_or_else(|| format!("{part:?} is not an HTTP status code (100-999)"))
        };
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let range = match part.split_once('-') {
                Some((lo, hi)) => (parse_code(lo)?, parse_code(hi)?),
                None => {
                    let code = parse_code(part)?;
                    (code, code)
                }
            };
            if range.0 > range.1 {
                return Err(format!("{part:?} is an empty range"));
            }
            ranges.push(range);
        }
        Ok(StatusSet { ranges })
    }
}

impl std::fmt::Display for StatusSet {
    /// The set as `--ok-status` writes it: `200-299,404`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            if lo == hi { write!(f, "{sep}{lo}")? } else { write!(f, "{sep}{lo}-{hi}")? }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets_parse_and_match() {
        let set: StatusSet = "200-399,404".parse().unwrap();
        assert!(set.contains(200) && set.contains(399) && set.contains(404));
        assert!(!set.contains(400) && !set.contains(500));
        assert!("abc".parse::<StatusSet>().is_err());
        assert!("300-200".parse::<StatusSet>().is_err());
        assert!(StatusSet::default().contains(302));
        assert!(!StatusSet::default().contains(404));
    }
}
