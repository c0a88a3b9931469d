//! The znodes of a ZooKeeper-era consumer group (paths, the offsets
//! encoding) and 0.8's range assignment.

/// `/consumers/<group>`.
pub(super) fn group_dir(group: &str) -> String {
    format!("/consumers/{group}")
}

/// `/consumers/<group>/ids`.
pub(super) fn ids_dir(group: &str) -> String {
    format!("{}/ids", group_dir(group))
}

/// `/consumers/<group>/owners/<topic>`.
pub(super) fn owners_dir(group: &str, topic: &str) -> String {
    format!("{}/owners/{topic}", group_dir(group))
}

/// `/consumers/<group>/offsets/<topic>`.
pub(super) fn offsets_dir(group: &str, topic: &str) -> String {
    format!("{}/offsets/{topic}", group_dir(group))
}

/// The persistent parents, in creation order.
pub(super) fn parent_paths(group: &str, topic: &str) -> Vec<String> {
    let g = group_dir(group);
    vec![
        "/consumers".to_string(),
        g.clone(),
        ids_dir(group),
        format!("{g}/owners"),
        owners_dir(group, topic),
        format!("{g}/offsets"),
        offsets_dir(group, topic),
    ]
}

/// The committed offset an offsets znode holds: decimal text, `None` when
/// empty or unreadable.
pub(super) fn parse_offset(data: &[u8]) -> Option<u64> {
    std::str::from_utf8(data).ok()?.trim().parse().ok()
}

/// The partitions of `0..partitions` that 0.8's range assignor gives to
/// `me` among the members `ids` (sorted here): each gets
/// `partitions / n`, the first `partitions % n` one more. Empty when `me`
/// is not among them.
pub fn range_assignment(ids: &[String], me: &str, partitions: u32) -> Vec<u32> {
    let mut sorted: Vec<&String> = ids.iter().collect();
    sorted.sort();
    sorted.dedup();
    let Some(i) = sorted.iter().position(|id| id.as_str() == me) else {
        return Vec::new();
    };
    let n = sorted.len() as u32;
    let i = i as u32;
    let per = partitions / n;
    let extra = partitions % n;
    let start = per * i + i.min(extra);
    let count = per + u32::from(i < extra);
    (start..start + count).collect()
}
