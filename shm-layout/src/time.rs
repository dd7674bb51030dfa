use nix::time::{clock_gettime, ClockId};

/// CLOCK_MONOTONIC in ns: the same clock in every process of the machine, so heartbeats
/// written by one process can be aged by another.
pub fn monotonic_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| (t.tv_sec() as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec() as u64))
        .unwrap_or(0)
}

/// A process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22), or `None`
/// when there is no such process. Together with the pid it names a process uniquely.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: parse after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    // `rest` starts at field 3; field 22 is the 20th from here.
    rest.split_whitespace().nth(19)?.parse().ok()
}
