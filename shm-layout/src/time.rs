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

/// Confines the calling thread (and the threads it starts afterwards) to CPU `cpu`, given as
/// the layout stores CPUs: negative means none configured, and nothing changes (`Ok(false)`).
///
/// # Errors
/// A CPU out of range, or one the process may not use (a cpuset without it).
pub fn pin_to_cpu(cpu: i32) -> nix::Result<bool> {
    let Ok(cpu) = usize::try_from(cpu) else { return Ok(false) };
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No CPU configured changes nothing; a CPU confines the calling thread to it alone.
    #[test]
    fn pinning_confines_the_calling_thread() {
        assert_eq!(pin_to_cpu(-1), Ok(false));
        let set = std::thread::spawn(|| {
            assert_eq!(pin_to_cpu(0), Ok(true));
            nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap()
        })
        .join()
        .unwrap();
        let cpus: Vec<usize> = (0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect();
        assert_eq!(cpus, vec![0]);
        assert!(pin_to_cpu(i32::MAX).is_err(), "a CPU beyond the set's size");
    }
}
