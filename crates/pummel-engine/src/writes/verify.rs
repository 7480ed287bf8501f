//! The `[verify]` phase's side of the engine: the grouped keys as the rows of a feeder, and a
//! read judged where it ends.
//!
//! The verify phase is a run like any other (an open-model scenario at its own rate and pool,
//! over the plan's targets, TLS and signing, with its own figures), whose one request step reads
//! a key: [`feeder`] streams the grouped write log ([`group`](super::group)) as rows whose
//! columns the step's templates read by name (`{{ key }}`, `{{ value }}`), one row per
//! iteration, and the row also carries the key's writes (`_writes`), so that the shard that
//! made the read judges it at once ([`judge_read`]) against exactly that key's writes: no
//! second pass, no join, nothing per key kept beyond the iterations in flight.

use std::path::Path;
use std::sync::Arc;

use pummel_results::writes::{VerifySummary, WritesSummary};

use super::group::{GroupReader, KeyWrites};
use super::judge::{Read, WriteTallies, judge};
use super::{Digest, WriteValue};
use crate::flow::feeder::{Feeder, FeederError, Row, RowSource};
use crate::flow::template::Vars;

/// The feeder's name (its columns are read by their own names).
pub const FEEDER: &str = "verify";
/// Its columns: the key, the value `{{ value }}` shows, and the key's writes (for the judge).
pub const COLUMNS: [&str; 3] = ["key", "value", "_writes"];

/// The grouped keys at `grouped` (holding `keys` keys), one row each, as a feeder.
pub fn feeder(grouped: &Path, keys: u64) -> std::io::Result<Feeder> {
    let reader = GroupReader::open(grouped)?;
    let columns: Arc<[String]> = COLUMNS.iter().map(|c| c.to_string()).collect();
    let source = Rows { reader, columns, path: grouped.to_path_buf() };
    Ok(Feeder::from_source(FEEDER, &COLUMNS, keys, Box::new(source)))
}

/// The rows of the grouped file.
struct Rows {
    reader: GroupReader,
    columns: Arc<[String]>,
    path: std::path::PathBuf,
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows").field("path", &self.path).finish()
    }
}

impl RowSource for Rows {
    fn next_row(&mut self) -> Result<Option<Row>, FeederError> {
        let group = self.reader.next_group().map_err(|source| FeederError::Read { path: self.path.clone(), source })?;
        Ok(group.map(|g| {
            let value = g.value.as_ref().map_or_else(String::new, WriteValue::text);
            Row::new(self.columns.clone(), vec![Some(g.key.clone()), Some(value), Some(encode_writes(&g))])
        }))
    }
}

/// A key's writes as the `_writes` column: the four counts, whether any value matches, then
/// the values' digests in hex, separated by spaces.
fn encode_writes(g: &KeyWrites) -> String {
    let mut text = format!("{} {} {} {} {}", g.counts[0], g.counts[1], g.counts[2], g.counts[3], u8::from(g.any_value));
    for d in &g.digests {
        text.push(' ');
        text.push_str(&hex::encode(d));
    }
    text
}

/// The key's writes from a verify user's variables; `None` when they are not a verify row.
pub fn key_writes(vars: &Vars) -> Option<KeyWrites> {
    let key = vars.get("key")?;
    let writes = vars.get("_writes")?;
    let mut parts = writes.split(' ');
    let mut counts = [0u64; 4];
    for count in &mut counts {
        *count = parts.next()?.parse().ok()?;
    }
    let any_value = parts.next()? == "1";
    let mut digests = Vec::new();
    for part in parts {
        let mut d: Digest = [0; 32];
        hex::decode_to_slice(part, &mut d).ok()?;
        digests.push(d);
    }
    Some(KeyWrites { key, value: None, counts, digests, any_value })
}

/// Judges a read of the key in `vars` into `tallies`.
pub fn judge_read(vars: &Vars, read: Read, tallies: &mut WriteTallies) {
    if let Some(writes) = key_writes(vars) {
        let verdict = judge(&writes, read);
        tallies.judged(&writes, verdict);
    }
}

/// The writes section of the results: the load's outcomes, and the read-back's verdicts when
/// there was one (`verify`: the verify phase's tallies, how it ended, its keys, the settle time
/// and how long it took).
pub fn summary(load: &WriteTallies, verify: Option<(&WriteTallies, &str, u64, f64, f64)>) -> WritesSummary {
    let mut summary = WritesSummary::from_counts(load.outcomes);
    if let Some((tallies, ended, keys, settle_s, duration_s)) = verify {
        summary.verify = Some(VerifySummary {
            ended: ended.to_string(),
            settle_s,
            duration_s,
            keys,
            read: tallies.read,
            verified: tallies.verified,
            lost: tallies.lost,
            recovered: tallies.recovered,
            unexpected: tallies.unexpected,
            unread: keys.saturating_sub(tallies.read),
            first_lost: tallies.first_lost.clone(),
        });
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::template::Globals;
    use crate::writes::group::group;
    use crate::writes::spill::encode;
    use crate::writes::{WriteOutcome, digest};

    #[test]
    fn keys_come_out_as_flat_rows_that_the_judge_reads_back() {
        let dir = std::env::temp_dir().join(format!("pummel-verify-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut bytes = Vec::new();
        encode(&mut bytes, "b", Some(&WriteValue::Text("vb".into())), WriteOutcome::Unknown);
        encode(&mut bytes, "a", Some(&WriteValue::Sha256(digest(b"va"))), WriteOutcome::Acknowledged);
        encode(&mut bytes, "c", None, WriteOutcome::NotSent);
        std::fs::write(dir.join("writes.spill"), &bytes).unwrap();
        let grouped = group(&dir.join("writes.spill"), &dir, 1 << 20).unwrap();
        let feeder = feeder(&grouped.path, grouped.keys).unwrap();
        assert!(feeder.is_flat());
        assert_eq!(feeder.row_count(), 3);
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(0);
        let mut tallies = WriteTallies::default();
        let reads = [Read::Found(Some(digest(b"va"))), Read::Found(Some(digest(b"vb"))), Read::Found(None)];
        for (expected, read) in [("a", reads[0]), ("b", reads[1]), ("c", reads[2])] {
            let row = feeder.next_row(&mut rng).unwrap().expect("a row per key");
            let mut vars = Vars::new(Arc::new(Globals::default()), 0);
            for column in row.columns() {
                vars.set(column, row.get(column).unwrap_or_default().to_string());
            }
            assert_eq!(vars.get("key").as_deref(), Some(expected));
            if expected == "a" {
                assert_eq!(vars.get("value"), Some(hex::encode(digest(b"va"))), "a hashed value shows as hex");
            }
            judge_read(&vars, read, &mut tallies);
        }
        assert!(feeder.next_row(&mut rng).unwrap().is_none());
        assert_eq!((tallies.verified, tallies.recovered, tallies.unexpected, tallies.lost), (1, 1, 1, 0));
        let summary = summary(&tallies, Some((&tallies, "completed", 4, 1.0, 0.5)));
        assert_eq!(summary.verify.as_ref().map(|v| v.unread), Some(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
